//! Test support for the Alibaba face: a real server on a loopback port with a fresh data
//! directory, and clients that sign like the Alibaba SDKs (ACS3-HMAC-SHA256 and HMAC-SHA1) and
//! like the Huawei SDK (for the ports the sessions need). Included by the `aliyun_*` tests.

#![allow(dead_code)]

use std::net::SocketAddr;

use serde_json::Value;
use time::OffsetDateTime;
use tmirror_server::{ServeConfig, Server};
use tmirror_sign::{aliyun, huawei, Request};

/// A server and a credential to call it with. The server runs while the `Srv` that started it
/// lives; [`Srv::with_key`] and [`Srv::tenant`] make more clients of it, which do not stop it.
pub struct Srv {
    pub addr: SocketAddr,
    pub dir: std::sync::Arc<tempfile::TempDir>,
    pub ak: String,
    pub sk: String,
    pub project: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    http: reqwest::Client,
}

impl Drop for Srv {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// One answer: status, body and the `X-Request-Id` header.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub request_id: String,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["Code"].as_str().unwrap_or("")
    }

    /// Asserts success and returns the body.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "expected success, got {:?}", self.body);
        &self.body
    }

    /// Asserts an error with this status and code.
    #[track_caller]
    pub fn err(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "unexpected answer {:?}",
            self.body
        );
        for field in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
            assert!(
                self.body[field].as_str().is_some_and(|s| !s.is_empty()),
                "error body lacks {field}: {:?}",
                self.body
            );
        }
        assert_eq!(self.body["RequestId"].as_str().unwrap(), self.request_id);
    }
}

/// How to sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// ACS3 with the parameters in the query.
    Acs3,
    /// ACS3 with the parameters in a form body.
    Acs3Form,
    /// HMAC-SHA1 with the parameters in the query.
    Sha1,
}

/// Knobs for the negative tests.
#[derive(Clone, Debug, Default)]
pub struct Tweak {
    pub nonce: Option<String>,
    pub time: Option<OffsetDateTime>,
    pub secret: Option<String>,
    pub access_key: Option<String>,
    /// A parameter added after signing.
    pub tamper: Option<(String, String)>,
    /// A header sent but left out of `SignedHeaders` (ACS3).
    pub unsigned: Option<String>,
    /// `x-acs-version` (ACS3).
    pub version: Option<String>,
    /// `x-acs-date` exactly as given (ACS3).
    pub raw_date: Option<String>,
    /// `x-acs-content-sha256` of another body (ACS3).
    pub wrong_body_hash: bool,
    /// A header sent besides the signed parameters (HMAC-SHA1, which signs no header).
    pub header: Option<(String, String)>,
}

pub fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn encode(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", aliyun::pct(k), aliyun::pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Srv {
    pub async fn start() -> Srv {
        Self::start_in(tempfile::tempdir().expect("temp dir")).await
    }

    /// Starts a server with a configuration changed by `tune` and opens the traffic mirror
    /// service.
    pub async fn opened_with(tune: impl FnOnce(&mut ServeConfig)) -> Srv {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().to_path_buf();
        let s = Self::start_tuned(dir, data_dir, tune).await;
        s.call("OpenTrafficMirrorService", &[]).await.ok();
        s
    }

    /// Starts a server whose database also holds the reference's test credential
    /// (`testAKID` / `testSecret`, §2.3), so that its signed example requests verify.
    pub async fn with_test_credential() -> Srv {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("tmirror.db").display());
        let store = tmirror_store::open(&url).await.unwrap();
        let project = tmirror_model::Project {
            id: tmirror_model::ProjectId::new(),
            name: "reference".into(),
            created_at: 0,
            quotas: Default::default(),
        };
        let mut tx = store.write().await.unwrap();
        tx.put_project(&project).await.unwrap();
        tx.put_credential(&tmirror_store::Credential {
            access_key: "testAKID".into(),
            secret_key: "testSecret".into(),
            project_id: project.id,
            role: tmirror_model::Role::Member,
            enabled: true,
            created_at: 0,
            last_used_at: None,
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        store.close().await;
        Self::start_in(dir).await
    }

    /// Sends raw headers and body to `/?query`, with `host` as the Host header.
    pub async fn raw(&self, query: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut rb = self.http.post(format!("http://{}/?{query}", self.addr));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let response = rb.body(body.to_owned()).send().await.unwrap();
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.json().await.unwrap();
        Answer {
            status,
            body,
            request_id,
            retry_after,
        }
    }

    async fn start_in(dir: tempfile::TempDir) -> Srv {
        let data_dir = dir.path().to_path_buf();
        Self::start_on(dir, data_dir).await
    }

    /// Starts a server with a configuration changed by `tune`, without opening the service.
    pub async fn start_with(tune: impl FnOnce(&mut ServeConfig)) -> Srv {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().to_path_buf();
        Self::start_tuned(dir, data_dir, tune).await
    }

    /// A second server on this one's database (as several servers will share one).
    pub async fn sibling(&self) -> Srv {
        Self::start_on(tempfile::tempdir().unwrap(), self.dir.path().to_path_buf()).await
    }

    async fn start_on(dir: tempfile::TempDir, data_dir: std::path::PathBuf) -> Srv {
        Self::start_tuned(dir, data_dir, |_| {}).await
    }

    async fn start_tuned(
        dir: tempfile::TempDir,
        data_dir: std::path::PathBuf,
        tune: impl FnOnce(&mut ServeConfig),
    ) -> Srv {
        let mut config = ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.clone(),
            ..Default::default()
        };
        tune(&mut config);
        let server = Server::bind(&config).await.expect("server binds");
        let addr = server.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = server
                .serve(async {
                    let _ = stopped.await;
                })
                .await;
        });
        let file: Value = serde_json::from_slice(
            &std::fs::read(data_dir.join("admin-credentials.json")).expect("credentials"),
        )
        .unwrap();
        Srv {
            addr,
            ak: file["access_key"].as_str().unwrap().into(),
            sk: file["secret_key"].as_str().unwrap().into(),
            project: file["project_id"].as_str().unwrap().into(),
            dir: std::sync::Arc::new(dir),
            stop: Some(stop),
            http: reqwest::Client::new(),
        }
    }

    /// Another client of this server, signing with the credential `ak`/`sk` of `project`.
    pub fn with_key(&self, ak: &str, sk: &str, project: &str) -> Srv {
        Srv {
            addr: self.addr,
            dir: self.dir.clone(),
            ak: ak.to_owned(),
            sk: sk.to_owned(),
            project: project.to_owned(),
            stop: None,
            http: self.http.clone(),
        }
    }

    /// A client of the server at `addr` (started some other way, e.g. by `common`), signing
    /// with the credential `ak`/`sk` of `project`.
    pub fn client_at(addr: SocketAddr, ak: &str, sk: &str, project: &str) -> Srv {
        Srv {
            addr,
            dir: std::sync::Arc::new(tempfile::tempdir().expect("temp dir")),
            ak: ak.to_owned(),
            sk: sk.to_owned(),
            project: project.to_owned(),
            stop: None,
            http: reqwest::Client::new(),
        }
    }

    /// A new project, made through the admin API (this client must be the operator's); its id.
    pub async fn admin_project(&self, name: &str) -> String {
        let (status, body) = self
            .huawei(
                "POST",
                "/admin/v1/projects",
                Some(serde_json::json!({ "name": name })),
            )
            .await;
        assert_eq!(status, 201, "project create: {body:?}");
        body["project"]["id"].as_str().unwrap().to_owned()
    }

    /// A client with a new credential of `project` and `role`, made through the admin API (by
    /// the operator, or by the project's admin).
    pub async fn admin_credential(&self, project: &str, role: &str) -> Srv {
        let (status, body) = self
            .huawei(
                "POST",
                &format!("/admin/v1/projects/{project}/credentials"),
                Some(serde_json::json!({ "role": role })),
            )
            .await;
        assert_eq!(status, 201, "credential create: {body:?}");
        let c = &body["credential"];
        self.with_key(
            c["access_key"].as_str().unwrap(),
            c["secret_key"].as_str().unwrap(),
            c["project_id"].as_str().unwrap(),
        )
    }

    /// A client of a new project with a credential of `role` in it.
    pub async fn tenant(&self, name: &str, role: &str) -> Srv {
        let project = self.admin_project(name).await;
        self.admin_credential(&project, role).await
    }

    /// Starts a server and opens the traffic mirror service.
    pub async fn opened() -> Srv {
        let s = Srv::start().await;
        s.call("OpenTrafficMirrorService", &[]).await.ok();
        s
    }

    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> Answer {
        self.send(Scheme::Acs3, action, p(params), Tweak::default())
            .await
    }

    /// A call with `RegionId` added.
    pub async fn rcall(&self, action: &str, params: &[(&str, &str)]) -> Answer {
        let mut all = p(params);
        all.push(("RegionId".into(), "cn-hangzhou".into()));
        self.send(Scheme::Acs3, action, all, Tweak::default()).await
    }

    pub async fn send(
        &self,
        scheme: Scheme,
        action: &str,
        mut params: Vec<(String, String)>,
        tweak: Tweak,
    ) -> Answer {
        let now = tweak.time.unwrap_or_else(OffsetDateTime::now_utc);
        let nonce = tweak.nonce.clone().unwrap_or_else(nonce);
        let secret = tweak.secret.clone().unwrap_or_else(|| self.sk.clone());
        let ak = tweak.access_key.clone().unwrap_or_else(|| self.ak.clone());
        let host = self.addr.to_string();
        let url = format!("http://{host}/");
        let response = match scheme {
            Scheme::Acs3 | Scheme::Acs3Form => {
                let form = scheme == Scheme::Acs3Form;
                let (query, body) = if form {
                    (String::new(), encode(&params))
                } else {
                    (encode(&params), String::new())
                };
                let mut headers: Vec<(String, String)> = vec![
                    ("host".into(), host.clone()),
                    ("x-acs-action".into(), action.into()),
                    (
                        "x-acs-version".into(),
                        tweak.version.clone().unwrap_or_else(|| "2016-04-28".into()),
                    ),
                    (
                        "x-acs-date".into(),
                        tweak
                            .raw_date
                            .clone()
                            .unwrap_or_else(|| aliyun::format_timestamp(now)),
                    ),
                    ("x-acs-signature-nonce".into(), nonce),
                    ("accept".into(), "application/json".into()),
                    (
                        "x-acs-content-sha256".into(),
                        aliyun::content_sha256(if tweak.wrong_body_hash {
                            b"other"
                        } else {
                            body.as_bytes()
                        }),
                    ),
                ];
                if form {
                    headers.push((
                        "content-type".into(),
                        "application/x-www-form-urlencoded".into(),
                    ));
                }
                let names: Vec<String> = headers
                    .iter()
                    .map(|(k, _)| k.clone())
                    .filter(|k| Some(k) != tweak.unsigned.as_ref())
                    .collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let req = Request {
                    method: "POST",
                    path: "/",
                    query: &query,
                    headers: &headers,
                    body: body.as_bytes(),
                };
                // A wrong body hash is only detectable by the server if the signature still
                // matches, so sign with the right one and send the wrong one.
                let auth = if tweak.wrong_body_hash {
                    let mut right = headers.clone();
                    right[6].1 = aliyun::content_sha256(body.as_bytes());
                    let req = Request {
                        headers: &right,
                        ..req
                    };
                    aliyun::sign_acs3(&req, &ak, &secret, &names).unwrap()
                } else {
                    aliyun::sign_acs3(&req, &ak, &secret, &names).unwrap()
                };
                let mut query = query;
                if let Some((k, v)) = &tweak.tamper {
                    if !query.is_empty() {
                        query.push('&');
                    }
                    query.push_str(&format!("{}={}", aliyun::pct(k), aliyun::pct(v)));
                }
                let mut rb = self
                    .http
                    .post(if query.is_empty() {
                        url
                    } else {
                        format!("{url}?{query}")
                    })
                    .header("authorization", auth);
                for (k, v) in &headers {
                    if k != "host" {
                        rb = rb.header(k.as_str(), v.as_str());
                    }
                }
                rb.body(body).send().await.expect("request sent")
            }
            Scheme::Sha1 => {
                for (k, v) in [
                    ("Action", action.to_owned()),
                    ("Format", "json".into()),
                    ("Version", "2016-04-28".into()),
                    ("Timestamp", aliyun::format_timestamp(now)),
                    ("SignatureNonce", nonce),
                    ("SignatureMethod", "HMAC-SHA1".into()),
                    ("SignatureVersion", "1.0".into()),
                    ("AccessKeyId", ak),
                ] {
                    params.push((k.into(), v));
                }
                let sig = aliyun::sign_hmac_sha1("POST", &params, &secret);
                params.push(("Signature".into(), sig));
                if let Some((k, v)) = &tweak.tamper {
                    params.push((k.clone(), v.clone()));
                }
                let mut rb = self.http.post(format!("{url}?{}", encode(&params)));
                if let Some((k, v)) = &tweak.header {
                    rb = rb.header(k.as_str(), v.as_str());
                }
                rb.send().await.expect("request sent")
            }
        };
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("the body is not JSON: {text:?}"));
        Answer {
            status,
            body,
            request_id,
            retry_after,
        }
    }

    /// A Huawei-signed JSON request (the ports API and cross-face checks).
    pub async fn huawei(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let host = self.addr.to_string();
        let date = huawei::format_sdk_date(OffsetDateTime::now_utc());
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers = vec![
            ("Host", host.clone()),
            ("Content-Type", "application/json".to_owned()),
            ("X-Sdk-Date", date.clone()),
        ];
        let req = Request {
            method,
            path,
            query: "",
            headers: &headers,
            body: body.as_bytes(),
        };
        let auth = huawei::sign(
            &req,
            &self.ak,
            &self.sk,
            &date,
            &["content-type", "host", "x-sdk-date"],
        )
        .unwrap();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = self
            .http
            .request(method, format!("http://{host}{path}"))
            .header("content-type", "application/json")
            .header("x-sdk-date", date)
            .header("authorization", auth)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A port through the Huawei v1 API, in the project's own network (`net-` and the project
    /// id's first 8 digits: a network belongs to the first project that uses it); returns its
    /// Alibaba id (`eni-...`).
    pub async fn port(&self, ip: &str) -> String {
        let network = format!("net-{}", &self.project[..8]);
        let (status, body) = self
            .huawei(
                "POST",
                &format!("/v1/{}/ports", self.project),
                Some(serde_json::json!({"port": {"network_id": network, "fixed_ips": [{"subnet_id": "sub-1", "ip_address": ip}]}})),
            )
            .await;
        assert_eq!(status, 201, "port create: {body:?}");
        let id: uuid::Uuid = body["port"]["id"].as_str().unwrap().parse().unwrap();
        format!("eni-{}", id.simple())
    }

    /// A filter through the Alibaba face; returns its id.
    pub async fn filter(&self) -> String {
        let a = self
            .rcall(
                "CreateTrafficMirrorFilter",
                &[("TrafficMirrorFilterName", "f")],
            )
            .await;
        a.ok()["TrafficMirrorFilterId"].as_str().unwrap().to_owned()
    }

    /// A session with one source and a target; returns (session, source, target, filter).
    pub async fn session(&self, priority: &str) -> (String, String, String, String) {
        let n: u32 = priority.parse().unwrap();
        let source = self.port(&format!("10.1.{}.1", n % 250)).await;
        let target = self.port(&format!("10.2.{}.1", n % 250)).await;
        let filter = self.filter().await;
        let a = self
            .rcall(
                "CreateTrafficMirrorSession",
                &[
                    ("TrafficMirrorFilterId", &filter),
                    ("TrafficMirrorSourceIds.1", &source),
                    ("TrafficMirrorTargetId", &target),
                    ("TrafficMirrorTargetType", "NetworkInterface"),
                    ("Priority", priority),
                ],
            )
            .await;
        let id = a.ok()["TrafficMirrorSessionId"]
            .as_str()
            .unwrap()
            .to_owned();
        (id, source, target, filter)
    }

    /// The sessions ListTrafficMirrorSessions shows for these parameters.
    pub async fn sessions(&self, params: &[(&str, &str)]) -> Value {
        self.rcall("ListTrafficMirrorSessions", params)
            .await
            .ok()
            .clone()
    }
}
