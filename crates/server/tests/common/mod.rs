//! Test support: a real server on a real port with a fresh data directory, and a client that
//! signs requests with SDK-HMAC-SHA256 the way the Huawei SDK does.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;
use time::OffsetDateTime;
use tmirror_server::{ServeConfig, Server};
use tmirror_sign::{huawei, Request};

/// A running server; stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The metrics listener, when the configuration asks for one.
    pub metrics_addr: Option<SocketAddr>,
    pub data_dir: tempfile::TempDir,
    pub creds: Creds,
    /// The server's service layer, to look into.
    pub service: tmirror_server::service::Service,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Clone, Debug)]
pub struct Creds {
    pub access_key: String,
    pub secret_key: String,
    pub project_id: String,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut ServeConfig)) -> TestServer {
        let data_dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(data_dir, tune).await
    }

    /// Starts a server on an existing data directory (to test restarts).
    pub async fn start_in(
        data_dir: tempfile::TempDir,
        tune: impl FnOnce(&mut ServeConfig),
    ) -> TestServer {
        let mut config = ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.path().to_path_buf(),
            ..Default::default()
        };
        tune(&mut config);
        let server = Server::bind(&config).await.expect("server binds");
        let addr = server.local_addr();
        let service = server.service();
        let metrics_addr = server.metrics_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(async {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
        });
        let file: Value = serde_json::from_slice(
            &std::fs::read(data_dir.path().join("admin-credentials.json"))
                .expect("credentials file"),
        )
        .unwrap();
        let creds = Creds {
            access_key: file["access_key"].as_str().unwrap().into(),
            secret_key: file["secret_key"].as_str().unwrap().into(),
            project_id: file["project_id"].as_str().unwrap().into(),
        };
        TestServer {
            addr,
            metrics_addr,
            data_dir,
            creds,
            service,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server gracefully and hands back its data directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.data_dir, dir)
    }

    pub fn client(&self) -> Api {
        Api::new(self.addr, self.creds.clone())
    }

    pub fn data_path(&self) -> PathBuf {
        self.data_dir.path().to_path_buf()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A response: status, headers' request id, and the JSON body (Null when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub request_id: Option<String>,
    pub body: Value,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
}

impl Reply {
    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn ok(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// Asserts an error status and code (v3 `error_code` or v1 `code`).
    #[track_caller]
    pub fn err(self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        let got = self
            .body
            .get("error_code")
            .or_else(|| self.body.get("code"));
        assert_eq!(
            got.and_then(Value::as_str),
            Some(code),
            "unexpected code; body: {}",
            self.body
        );
        let msg = self
            .body
            .get("error_msg")
            .or_else(|| self.body.get("message"));
        assert!(
            msg.and_then(Value::as_str).is_some_and(|m| !m.is_empty()),
            "no message: {}",
            self.body
        );
        assert!(
            self.request_id.is_some(),
            "every response carries X-Request-Id"
        );
        self.body
    }
}

/// A signing client.
#[derive(Clone)]
pub struct Api {
    pub addr: SocketAddr,
    pub creds: Creds,
    http: reqwest::Client,
    /// Shift of the X-Sdk-Date from now (to test clock skew).
    pub skew: time::Duration,
    /// Bytes sent instead of the signed body (to test tampering).
    pub tamper: Option<Vec<u8>>,
}

impl Api {
    pub fn new(addr: SocketAddr, creds: Creds) -> Api {
        Api {
            addr,
            creds,
            http: reqwest::Client::new(),
            skew: time::Duration::ZERO,
            tamper: None,
        }
    }

    /// The same client, connecting from another local address (any of 127.0.0.0/8), as another
    /// client machine would.
    pub fn connecting_from(mut self, ip: std::net::IpAddr) -> Api {
        self.http = reqwest::Client::builder()
            .local_address(ip)
            .build()
            .unwrap();
        self
    }

    pub fn v3(&self, rest: &str) -> String {
        format!("/v3/{}/vpc/{rest}", self.creds.project_id)
    }

    pub fn v1(&self, rest: &str) -> String {
        format!("/v1/{}/{rest}", self.creds.project_id)
    }

    /// Sends a signed request. `path` may carry a query string.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        self.call_raw(method, path, &bytes).await
    }

    /// A request signed as the Huawei SDK signs it, ready to send with `body` (or the
    /// tampered body, when set).
    fn signed(&self, method: &str, path_and_query: &str, body: &[u8]) -> reqwest::RequestBuilder {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let query = huawei::canonical_query(query);
        let date = huawei::format_sdk_date(OffsetDateTime::now_utc() + self.skew);
        let host = self.addr.to_string();
        let headers = vec![
            ("Content-Type", "application/json".to_string()),
            ("Host", host.clone()),
            ("X-Project-Id", self.creds.project_id.clone()),
            ("X-Sdk-Date", date.clone()),
        ];
        let req = Request {
            method,
            path,
            query: &query,
            headers: &headers,
            body,
        };
        let auth = huawei::sign(
            &req,
            &self.creds.access_key,
            &self.creds.secret_key,
            &date,
            &["content-type", "host", "x-project-id", "x-sdk-date"],
        )
        .unwrap();
        let url = if query.is_empty() {
            format!("http://{host}{path}")
        } else {
            format!("http://{host}{path}?{query}")
        };
        let mut rb = self
            .http
            .request(method.parse().unwrap(), url)
            .header("Authorization", auth);
        for (k, v) in &headers {
            if *k != "Host" {
                rb = rb.header(*k, v);
            }
        }
        rb.body(self.tamper.clone().unwrap_or_else(|| body.to_vec()))
    }

    pub async fn call_raw(&self, method: &str, path_and_query: &str, body: &[u8]) -> Reply {
        let resp = self
            .signed(method, path_and_query, body)
            .send()
            .await
            .expect("request sent");
        let status = resp.status().as_u16();
        let request_id = resp
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = resp.bytes().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&text).unwrap_or(Value::Null)
        };
        if let (Some(rid), Some(b)) = (&request_id, body.get("request_id")) {
            assert_eq!(
                b.as_str(),
                Some(rid.as_str()),
                "body and header request ids agree"
            );
        }
        Reply {
            status,
            request_id,
            body,
            retry_after,
        }
    }

    /// Like [`Api::call_raw`], but `None` when the server cannot be reached or the connection
    /// breaks (for crash tests); otherwise status and body.
    pub async fn try_call_raw(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Option<(u16, Value)> {
        let resp = self.signed(method, path, body).send().await.ok()?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.ok()?;
        Some((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None).await
    }

    // Admin API helpers (the caller must be the operator, or the project's admin).

    /// A new project (through the admin API); its id.
    pub async fn admin_project(&self, name: &str) -> String {
        let body = serde_json::json!({"name": name});
        self.call("POST", "/admin/v1/projects", Some(&body))
            .await
            .ok(201)["project"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A new credential of `project` with `role`, as a client on the same server.
    pub async fn admin_credential(&self, project: &str, role: &str) -> Api {
        let body = serde_json::json!({"role": role});
        let c = self
            .call(
                "POST",
                &format!("/admin/v1/projects/{project}/credentials"),
                Some(&body),
            )
            .await
            .ok(201)["credential"]
            .clone();
        Api::new(
            self.addr,
            Creds {
                access_key: c["access_key"].as_str().unwrap().into(),
                secret_key: c["secret_key"].as_str().unwrap().into(),
                project_id: c["project_id"].as_str().unwrap().into(),
            },
        )
    }

    /// Enrols `host` (the caller must be the operator); its credential, as an agent's
    /// `--credential-file` holds it: `{"host_id", "token", "endpoint"}`.
    pub async fn enrol_host(&self, host: &str) -> Value {
        let body = serde_json::json!({"host_id": host});
        self.call("POST", "/admin/v1/hosts", Some(&body))
            .await
            .ok(201)["credential"]
            .clone()
    }

    /// [`Api::enrol_host`]'s token.
    pub async fn host_token(&self, host: &str) -> String {
        self.enrol_host(host).await["token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    /// A new project with a credential of `role` in it.
    pub async fn tenant(&self, name: &str, role: &str) -> Api {
        let project = self.admin_project(name).await;
        self.admin_credential(&project, role).await
    }

    // Resource helpers: create with sensible defaults, return the object.

    /// A port in the project's own network (`net-` and the project id's first 8 digits): a
    /// network belongs to the first project that uses it.
    pub async fn port(&self, ip: &str) -> Value {
        let network = format!("net-{}", &self.creds.project_id[..8]);
        let body = serde_json::json!({"port": {"network_id": network, "name": "p", "fixed_ips": [{"ip_address": ip}]}});
        self.call("POST", &self.v1("ports"), Some(&body))
            .await
            .ok(201)["port"]
            .clone()
    }

    pub async fn filter(&self, name: &str) -> Value {
        let body = serde_json::json!({"traffic_mirror_filter": {"name": name}});
        self.call("POST", &self.v3("traffic-mirror-filters"), Some(&body))
            .await
            .ok(201)["traffic_mirror_filter"]
            .clone()
    }

    pub async fn rule(&self, fields: Value) -> Reply {
        let body = serde_json::json!({"traffic_mirror_filter_rule": fields});
        self.call("POST", &self.v3("traffic-mirror-filter-rules"), Some(&body))
            .await
    }

    pub async fn session(&self, fields: Value) -> Reply {
        let body = serde_json::json!({"traffic_mirror_session": fields});
        self.call("POST", &self.v3("traffic-mirror-sessions"), Some(&body))
            .await
    }
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

/// Several servers on one fresh PostgreSQL database (`TMIRROR_TEST_DATABASE_URL`), or `None`
/// (with a message past the output capture) when that variable is not set. The database is
/// dropped with the returned guard, after the servers.
pub async fn pg_servers(
    test: &str,
    n: usize,
) -> Option<(Vec<TestServer>, tmirror_store::testdb::TestDatabase)> {
    pg_servers_with(test, n, |_| {}).await
}

/// [`pg_servers`] with each server's configuration changed by `tune`.
pub async fn pg_servers_with(
    test: &str,
    n: usize,
    tune: impl Fn(&mut ServeConfig) + Clone,
) -> Option<(Vec<TestServer>, tmirror_store::testdb::TestDatabase)> {
    let Some(db) = tmirror_store::testdb::TestDatabase::create().await else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: set {} to run it on PostgreSQL (scripts/pg-cluster.sh run cargo test)",
            tmirror_store::testdb::ENV
        );
        return None;
    };
    // Started together, as an operator's servers may be: one admin credential between them,
    // and one master key, as the operator gives them.
    let key = tmirror_store::MasterKey::generate();
    let starts = (0..n).map(|_| {
        let (url, tune, key) = (db.url().to_owned(), tune.clone(), key.clone());
        TestServer::start_with(move |c| {
            tune(c);
            c.database_url = Some(url);
            c.master_key = Some(key);
        })
    });
    let servers = futures::future::join_all(starts).await;
    for s in &servers[1..] {
        assert_eq!(
            s.creds.access_key, servers[0].creds.access_key,
            "servers on one database share the admin credential"
        );
    }
    Some((servers, db))
}
