//! Typed, signed HTTP client for tmirror's Huawei face: the 17 VPC v3 traffic-mirroring
//! operations, the 5 v1 port operations, and the ELB v3 calls that stand up a load balancer
//! as a mirror target.
//!
//! Every request is signed with SDK-HMAC-SHA256 exactly as the Huawei Python SDK signs it
//! (signed headers `content-type;host;x-project-id;x-sdk-date`, the query sent in canonical
//! order), so the server cannot tell this client from the SDK.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tmirror_client::{Client, Credentials, FilterCreate, ListOptions};
//!
//! let file = Credentials::load("tmirror-data/admin-credentials.json")?;
//! let client = Client::new(file.endpoint.as_deref().unwrap_or("http://127.0.0.1:9696"),
//!                          file.credentials)?;
//! let filter = client
//!     .filter_create(&FilterCreate { name: "web".into(), description: None })
//!     .await?;
//! let page = client.filter_list(&ListOptions::new().filter("name", "web")).await?;
//! assert_eq!(page.items[0].id, filter.id);
//! # Ok(()) }
//! ```
//!
//! Errors: [`ClientError::Api`] carries the status, `error_code`, `error_msg` and the
//! `X-Request-Id` of an error answer; transport failures are a separate variant.

#![forbid(unsafe_code)]

mod admin;
mod agent;
mod credentials;
mod elb;
mod error;
mod transport;
mod types;

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tmirror_sign::huawei;

pub use admin::{
    AdminClient, BoundPort, Credential, CredentialFile, Delivery, EipPool, EipPoolPut, Host,
    HostAgent, HostCredential, HostDelivery, InterfaceStatus, Network, NetworkCreate,
    NewCredential, PortBinding, Project, ProjectCreate, ProjectUpdate, ProjectUsage, Quotas, Role,
};
pub use agent::{AgentClient, AgentCredential, AgentCredentialError};
pub use credentials::{Credentials, CredentialsError, CredentialsFile};
pub use elb::{
    IdRef, LbMember, LbUpdate, LoadBalancer, MemberUpdate, Monitor, MonitorCreate, MonitorUpdate,
    Pool,
};
pub use error::{ApiError, ClientError};
pub use transport::Transport;
pub use types::*;

/// Headers signed on every request: the set the Python SDK signs with `BasicCredentials`
/// (less `user-agent`, which carries nothing worth protecting), lower case and sorted.
const SIGNED_HEADERS: [&str; 4] = ["content-type", "host", "x-project-id", "x-sdk-date"];

/// Page size the server uses when `limit` is absent; the ports list has no `next_marker`, so
/// following it needs to know when a page was short.
const SERVER_DEFAULT_LIMIT: u32 = 2000;

/// A client for one endpoint and one credential. Cheap to clone (the connection pool is
/// shared).
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    /// The endpoint as given, for error messages.
    endpoint: String,
    /// Parsed endpoint; paths are appended to its path (which may be a prefix).
    base: Url,
    /// `Host` value, sent explicitly so that what is signed is what is sent.
    host: String,
    credentials: Credentials,
}

// Envelopes: v3 bodies have one root key named after the resource.
#[derive(Serialize)]
struct SessionBody<'a, T> {
    traffic_mirror_session: &'a T,
}
#[derive(Serialize)]
struct FilterBody<'a, T> {
    traffic_mirror_filter: &'a T,
}
#[derive(Serialize)]
struct RuleBody<'a, T> {
    traffic_mirror_filter_rule: &'a T,
}
#[derive(Serialize)]
struct PortBody<'a, T> {
    port: &'a T,
}
#[derive(Serialize)]
struct Sources<'a> {
    traffic_mirror_sources: &'a [String],
}

#[derive(Deserialize)]
struct EipReply {
    publicip: Eip,
}
#[derive(Deserialize)]
struct EipList {
    publicips: Vec<Eip>,
}
#[derive(Deserialize)]
struct SessionReply {
    traffic_mirror_session: Session,
}
#[derive(Deserialize)]
struct FilterReply {
    traffic_mirror_filter: Filter,
}
#[derive(Deserialize)]
struct RuleReply {
    traffic_mirror_filter_rule: Rule,
}
#[derive(Deserialize)]
struct PortReply {
    port: Port,
}

#[derive(Deserialize)]
struct SessionList {
    traffic_mirror_sessions: Vec<Session>,
    page_info: Option<PageInfo>,
    request_id: Option<String>,
}
#[derive(Deserialize)]
struct FilterList {
    traffic_mirror_filters: Vec<Filter>,
    page_info: Option<PageInfo>,
    request_id: Option<String>,
}
#[derive(Deserialize)]
struct RuleList {
    traffic_mirror_filter_rules: Vec<Rule>,
    page_info: Option<PageInfo>,
    request_id: Option<String>,
}
#[derive(Deserialize)]
struct PortList {
    ports: Vec<Port>,
}

/// The parts of an error body the SDK looks at, in its order of preference.
#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<String>,
    error_msg: Option<String>,
    code: Option<String>,
    message: Option<String>,
}

/// RFC 3986 unreserved characters, which stay literal in a path segment: the server routes on
/// the raw path, so `traffic-mirror-sessions` must not become `traffic%2Dmirror%2Dsessions`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment or query item (query items are re-encoded into the
/// signature's canonical form afterwards).
fn encode(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

impl Client {
    /// A client for `endpoint` (`http://host:port` or `https://host:port`, optionally with a
    /// path prefix), signing with `credentials`; https verifies the server against the
    /// system's roots.
    pub fn new(endpoint: &str, credentials: Credentials) -> Result<Client, ClientError> {
        Self::with_transport(endpoint, credentials, &Transport::default())
    }

    /// [`Client::new`] with the trust settings of `transport` (e.g. a CA file).
    pub fn with_transport(
        endpoint: &str,
        credentials: Credentials,
        transport: &Transport,
    ) -> Result<Client, ClientError> {
        let bad = |reason: &str| ClientError::Endpoint {
            endpoint: endpoint.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = endpoint.trim();
        // A bare host:port is tmirror's default transport on loopback: http.
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("http://{trimmed}")
        };
        let mut base = Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
        if !transport::supported_scheme(base.scheme()) {
            return Err(bad("the endpoint is http:// or https://"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(bad("an endpoint has no query or fragment"));
        }
        let host = match (base.host_str(), base.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(bad("no host")),
        };
        let prefix = base.path().trim_end_matches('/').to_owned();
        base.set_path(&prefix);
        let http = transport
            .http(Duration::from_secs(10), Some(Duration::from_secs(60)))
            .map_err(|e| bad(&e))?;
        Ok(Client {
            http,
            endpoint: trimmed.to_owned(),
            base,
            host,
            credentials,
        })
    }

    /// The endpoint as given to [`Client::new`].
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The project every request is made in.
    pub fn project_id(&self) -> &str {
        &self.credentials.project_id
    }

    /// Builds the URL: `segments` are encoded one by one (so an id cannot add path levels),
    /// the query goes out in canonical form, as the SDK sends it.
    fn url(&self, segments: &[&str], query: &[(String, String)]) -> Result<Url, ClientError> {
        let mut url = self.base.clone();
        let mut path = url.path().trim_end_matches('/').to_owned();
        for s in segments {
            // URL parsers resolve `.` and `..` (even encoded), so such an id would silently
            // address another resource; an empty one would address the collection.
            if s.is_empty() || *s == "." || *s == ".." {
                return Err(ClientError::InvalidArgument(format!(
                    "{s:?} is not a usable id"
                )));
            }
            path.push('/');
            path.push_str(&encode(s));
        }
        url.set_path(&path);
        let raw: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let canonical = huawei::canonical_query(&raw.join("&"));
        url.set_query((!canonical.is_empty()).then_some(canonical.as_str()));
        Ok(url)
    }

    /// Signs and sends one request; answers the status, the `X-Request-Id` and the body of a
    /// success, or the error.
    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Option<String>, Vec<u8>), ClientError> {
        let url = self.url(segments, query)?;
        let body = body.unwrap_or_default();
        let date = huawei::format_sdk_date(OffsetDateTime::now_utc());
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("host", self.host.clone()),
            ("x-project-id", self.credentials.project_id.clone()),
            ("x-sdk-date", date.clone()),
        ];
        // Sign the path and query of the final URL, after the URL parser had its say.
        let signed = tmirror_sign::Request {
            method: method.as_str(),
            path: url.path(),
            query: url.query().unwrap_or(""),
            headers: &headers,
            body: &body,
        };
        let authorization = huawei::sign(
            &signed,
            &self.credentials.access_key,
            &self.credentials.secret_key,
            &date,
            &SIGNED_HEADERS,
        )?;

        let mut map = HeaderMap::new();
        for (name, value) in headers.iter().chain([&("authorization", authorization)]) {
            // Only the project id and the access key come from outside; a newline in either
            // must not become a header injection.
            let value = HeaderValue::from_str(value).map_err(|_| {
                ClientError::InvalidArgument(format!(
                    "the {name} header value is not valid header text"
                ))
            })?;
            map.insert(*name, value);
        }
        map.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("tmirror-client/", env!("CARGO_PKG_VERSION"))),
        );

        let transport = |source| ClientError::Transport {
            endpoint: self.endpoint.clone(),
            source,
        };
        let response = self
            .http
            .request(method, url)
            .headers(map)
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.map_err(transport)?.to_vec();
        if status.is_success() {
            Ok((status, request_id, bytes))
        } else {
            Err(ClientError::Api(api_error(status, request_id, &bytes)))
        }
    }

    /// A call that answers a JSON body.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let (status, request_id, bytes) = self.send(method, segments, query, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            status: status.as_u16(),
            message: e.to_string(),
            request_id,
        })
    }

    /// A call that answers no body (deletes: 204).
    async fn call_empty(&self, segments: &[&str]) -> Result<(), ClientError> {
        self.send(Method::DELETE, segments, &[], None).await?;
        Ok(())
    }

    fn json<T: Serialize>(body: &T) -> Option<Vec<u8>> {
        // Serialising these plain structs cannot fail (string keys, no maps with other keys).
        Some(serde_json::to_vec(body).expect("request bodies serialise"))
    }

    fn v3<'a>(&'a self, collection: &'a str) -> [&'a str; 4] {
        ["v3", &self.credentials.project_id, "vpc", collection]
    }

    fn v3_item<'a>(&'a self, collection: &'a str, id: &'a str) -> [&'a str; 5] {
        ["v3", &self.credentials.project_id, "vpc", collection, id]
    }

    // -----------------------------------------------------------------------------------------
    // Elastic IPs (Huawei EIP v1)

    /// `POST /v1/{project_id}/publicips` (200).
    pub async fn eip_create(&self, e: &EipCreate) -> Result<Eip, ClientError> {
        let mut publicip = serde_json::json!({ "type": e.pool });
        if let Some(a) = &e.ip_address {
            publicip["ip_address"] = a.clone().into();
            publicip["ip_version"] = if a.contains(':') { 6 } else { 4 }.into();
        }
        if let Some(p) = &e.port_id {
            publicip["port_id"] = p.clone().into();
        }
        if let Some(n) = &e.name {
            publicip["alias"] = n.clone().into();
        }
        let body = serde_json::json!({
            "publicip": publicip,
            "bandwidth": {"name": e.name.clone().unwrap_or_else(|| "tmirror".into()),
                          "size": e.bandwidth_size, "share_type": "PER",
                          "charge_mode": "traffic"},
        });
        let r: EipReply = self
            .call(
                Method::POST,
                &["v1", &self.credentials.project_id, "publicips"],
                &[],
                Self::json(&body),
            )
            .await?;
        Ok(r.publicip)
    }

    /// `GET /v1/{project_id}/publicips/{id}`.
    pub async fn eip_show(&self, id: &str) -> Result<Eip, ClientError> {
        let r: EipReply = self
            .call(
                Method::GET,
                &["v1", &self.credentials.project_id, "publicips", id],
                &[],
                None,
            )
            .await?;
        Ok(r.publicip)
    }

    /// `GET /v1/{project_id}/publicips`: every elastic IP of the project, in allocation order,
    /// page after page (`limit` and `marker`; the v1 API has no `page_info`).
    pub async fn eip_list_all(&self) -> Result<Vec<Eip>, ClientError> {
        let mut all: Vec<Eip> = Vec::new();
        loop {
            let mut query = vec![("limit".to_owned(), SERVER_DEFAULT_LIMIT.to_string())];
            if let Some(last) = all.last() {
                query.push(("marker".to_owned(), last.id.clone()));
            }
            let r: EipList = self
                .call(
                    Method::GET,
                    &["v1", &self.credentials.project_id, "publicips"],
                    &query,
                    None,
                )
                .await?;
            let full = r.publicips.len() as u64 >= u64::from(SERVER_DEFAULT_LIMIT);
            all.extend(r.publicips);
            if !full {
                return Ok(all);
            }
        }
    }

    /// `PUT /v1/{project_id}/publicips/{id}` with `port_id`: associates the elastic IP with
    /// `port`, or dissociates it with `None`.
    pub async fn eip_associate(&self, id: &str, port: Option<&str>) -> Result<Eip, ClientError> {
        let body = serde_json::json!({"publicip": {"port_id": port}});
        let r: EipReply = self
            .call(
                Method::PUT,
                &["v1", &self.credentials.project_id, "publicips", id],
                &[],
                Self::json(&body),
            )
            .await?;
        Ok(r.publicip)
    }

    /// `DELETE /v1/{project_id}/publicips/{id}` (204).
    pub async fn eip_delete(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty(&["v1", &self.credentials.project_id, "publicips", id])
            .await
    }

    // -----------------------------------------------------------------------------------------
    // Sessions

    /// `POST /v3/{project_id}/vpc/traffic-mirror-sessions` (201).
    pub async fn session_create(&self, s: &SessionCreate) -> Result<Session, ClientError> {
        let body = Self::json(&SessionBody {
            traffic_mirror_session: s,
        });
        let r: SessionReply = self
            .call(Method::POST, &self.v3(SESSIONS), &[], body)
            .await?;
        Ok(r.traffic_mirror_session)
    }

    /// `GET /v3/{project_id}/vpc/traffic-mirror-sessions/{id}`.
    pub async fn session_show(&self, id: &str) -> Result<Session, ClientError> {
        let r: SessionReply = self
            .call(Method::GET, &self.v3_item(SESSIONS, id), &[], None)
            .await?;
        Ok(r.traffic_mirror_session)
    }

    /// `GET /v3/{project_id}/vpc/traffic-mirror-sessions`: one page.
    pub async fn session_list(&self, opts: &ListOptions) -> Result<Page<Session>, ClientError> {
        let r: SessionList = self
            .call(Method::GET, &self.v3(SESSIONS), &opts.query(), None)
            .await?;
        Ok(Page {
            items: r.traffic_mirror_sessions,
            page_info: r.page_info,
            request_id: r.request_id,
        })
    }

    /// Every session matching `opts`, following `next_marker` from `opts.marker` on.
    pub async fn session_list_all(&self, opts: &ListOptions) -> Result<Vec<Session>, ClientError> {
        {
            let mut opts = opts.clone();
            let mut all = Vec::new();
            loop {
                let page = self.session_list(&opts).await?;
                if !advance(&mut opts, page, &mut all) {
                    return Ok(all);
                }
            }
        }
    }

    /// `PUT /v3/{project_id}/vpc/traffic-mirror-sessions/{id}`.
    pub async fn session_update(
        &self,
        id: &str,
        u: &SessionUpdate,
    ) -> Result<Session, ClientError> {
        let body = Self::json(&SessionBody {
            traffic_mirror_session: u,
        });
        let r: SessionReply = self
            .call(Method::PUT, &self.v3_item(SESSIONS, id), &[], body)
            .await?;
        Ok(r.traffic_mirror_session)
    }

    /// `DELETE /v3/{project_id}/vpc/traffic-mirror-sessions/{id}` (204).
    pub async fn session_delete(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty(&self.v3_item(SESSIONS, id)).await
    }

    /// `PUT .../traffic-mirror-sessions/{id}/add-sources`: appends ports, in order.
    pub async fn session_add_sources(
        &self,
        id: &str,
        sources: &[String],
    ) -> Result<Session, ClientError> {
        self.change_sources(id, "add-sources", sources).await
    }

    /// `PUT .../traffic-mirror-sessions/{id}/remove-sources`; may leave zero sources.
    pub async fn session_remove_sources(
        &self,
        id: &str,
        sources: &[String],
    ) -> Result<Session, ClientError> {
        self.change_sources(id, "remove-sources", sources).await
    }

    async fn change_sources(
        &self,
        id: &str,
        action: &str,
        sources: &[String],
    ) -> Result<Session, ClientError> {
        let body = Self::json(&SessionBody {
            traffic_mirror_session: &Sources {
                traffic_mirror_sources: sources,
            },
        });
        let pid = &self.credentials.project_id;
        let path = ["v3", pid, "vpc", SESSIONS, id, action];
        let r: SessionReply = self.call(Method::PUT, &path, &[], body).await?;
        Ok(r.traffic_mirror_session)
    }

    // -----------------------------------------------------------------------------------------
    // Filters

    /// `POST /v3/{project_id}/vpc/traffic-mirror-filters` (201).
    pub async fn filter_create(&self, f: &FilterCreate) -> Result<Filter, ClientError> {
        let body = Self::json(&FilterBody {
            traffic_mirror_filter: f,
        });
        let r: FilterReply = self
            .call(Method::POST, &self.v3(FILTERS), &[], body)
            .await?;
        Ok(r.traffic_mirror_filter)
    }

    /// `GET /v3/{project_id}/vpc/traffic-mirror-filters/{id}`, rules embedded.
    pub async fn filter_show(&self, id: &str) -> Result<Filter, ClientError> {
        let r: FilterReply = self
            .call(Method::GET, &self.v3_item(FILTERS, id), &[], None)
            .await?;
        Ok(r.traffic_mirror_filter)
    }

    /// `GET /v3/{project_id}/vpc/traffic-mirror-filters`: one page.
    pub async fn filter_list(&self, opts: &ListOptions) -> Result<Page<Filter>, ClientError> {
        let r: FilterList = self
            .call(Method::GET, &self.v3(FILTERS), &opts.query(), None)
            .await?;
        Ok(Page {
            items: r.traffic_mirror_filters,
            page_info: r.page_info,
            request_id: r.request_id,
        })
    }

    /// Every filter matching `opts`, following `next_marker`.
    pub async fn filter_list_all(&self, opts: &ListOptions) -> Result<Vec<Filter>, ClientError> {
        {
            let mut opts = opts.clone();
            let mut all = Vec::new();
            loop {
                let page = self.filter_list(&opts).await?;
                if !advance(&mut opts, page, &mut all) {
                    return Ok(all);
                }
            }
        }
    }

    /// `PUT /v3/{project_id}/vpc/traffic-mirror-filters/{id}`.
    pub async fn filter_update(&self, id: &str, u: &FilterUpdate) -> Result<Filter, ClientError> {
        let body = Self::json(&FilterBody {
            traffic_mirror_filter: u,
        });
        let r: FilterReply = self
            .call(Method::PUT, &self.v3_item(FILTERS, id), &[], body)
            .await?;
        Ok(r.traffic_mirror_filter)
    }

    /// `DELETE /v3/{project_id}/vpc/traffic-mirror-filters/{id}` (204); deletes its rules too.
    pub async fn filter_delete(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty(&self.v3_item(FILTERS, id)).await
    }

    // -----------------------------------------------------------------------------------------
    // Filter rules

    /// `POST /v3/{project_id}/vpc/traffic-mirror-filter-rules` (201).
    pub async fn rule_create(&self, r: &RuleCreate) -> Result<Rule, ClientError> {
        let body = Self::json(&RuleBody {
            traffic_mirror_filter_rule: r,
        });
        let r: RuleReply = self.call(Method::POST, &self.v3(RULES), &[], body).await?;
        Ok(r.traffic_mirror_filter_rule)
    }

    /// `GET /v3/{project_id}/vpc/traffic-mirror-filter-rules/{id}`.
    pub async fn rule_show(&self, id: &str) -> Result<Rule, ClientError> {
        let r: RuleReply = self
            .call(Method::GET, &self.v3_item(RULES, id), &[], None)
            .await?;
        Ok(r.traffic_mirror_filter_rule)
    }

    /// `GET /v3/{project_id}/vpc/traffic-mirror-filter-rules`: one page.
    pub async fn rule_list(&self, opts: &ListOptions) -> Result<Page<Rule>, ClientError> {
        let r: RuleList = self
            .call(Method::GET, &self.v3(RULES), &opts.query(), None)
            .await?;
        Ok(Page {
            items: r.traffic_mirror_filter_rules,
            page_info: r.page_info,
            request_id: r.request_id,
        })
    }

    /// Every rule matching `opts`, following `next_marker`.
    pub async fn rule_list_all(&self, opts: &ListOptions) -> Result<Vec<Rule>, ClientError> {
        {
            let mut opts = opts.clone();
            let mut all = Vec::new();
            loop {
                let page = self.rule_list(&opts).await?;
                if !advance(&mut opts, page, &mut all) {
                    return Ok(all);
                }
            }
        }
    }

    /// `PUT /v3/{project_id}/vpc/traffic-mirror-filter-rules/{id}`.
    pub async fn rule_update(&self, id: &str, u: &RuleUpdate) -> Result<Rule, ClientError> {
        let body = Self::json(&RuleBody {
            traffic_mirror_filter_rule: u,
        });
        let r: RuleReply = self
            .call(Method::PUT, &self.v3_item(RULES, id), &[], body)
            .await?;
        Ok(r.traffic_mirror_filter_rule)
    }

    /// `DELETE /v3/{project_id}/vpc/traffic-mirror-filter-rules/{id}` (204).
    pub async fn rule_delete(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty(&self.v3_item(RULES, id)).await
    }

    // -----------------------------------------------------------------------------------------
    // Ports (v1)

    fn ports(&self) -> [&str; 3] {
        ["v1", &self.credentials.project_id, "ports"]
    }

    fn port_path<'a>(&'a self, id: &'a str) -> [&'a str; 4] {
        ["v1", &self.credentials.project_id, "ports", id]
    }

    /// `POST /v1/{project_id}/ports` (201).
    pub async fn port_create(&self, p: &PortCreate) -> Result<Port, ClientError> {
        let body = Self::json(&PortBody { port: p });
        let r: PortReply = self.call(Method::POST, &self.ports(), &[], body).await?;
        Ok(r.port)
    }

    /// `GET /v1/{project_id}/ports/{id}`.
    pub async fn port_show(&self, id: &str) -> Result<Port, ClientError> {
        let r: PortReply = self
            .call(Method::GET, &self.port_path(id), &[], None)
            .await?;
        Ok(r.port)
    }

    /// `GET /v1/{project_id}/ports`: one page (no `page_info`: the v1 API has none).
    pub async fn port_list(&self, opts: &ListOptions) -> Result<Page<Port>, ClientError> {
        let r: PortList = self
            .call(Method::GET, &self.ports(), &opts.query(), None)
            .await?;
        Ok(Page {
            items: r.ports,
            page_info: None,
            request_id: None,
        })
    }

    /// Every port matching `opts`. Without `next_marker`, a page shorter than the page size
    /// is the last one.
    pub async fn port_list_all(&self, opts: &ListOptions) -> Result<Vec<Port>, ClientError> {
        let limit = opts
            .limit
            .filter(|l| *l > 0)
            .unwrap_or(SERVER_DEFAULT_LIMIT);
        let mut opts = opts.clone();
        let mut all = Vec::new();
        loop {
            let page = self.port_list(&opts).await?;
            let n = page.items.len();
            let last = page.items.last().map(|p| p.id.clone());
            all.extend(page.items);
            match last {
                Some(id) if n as u64 >= u64::from(limit) => opts.marker = Some(id),
                _ => return Ok(all),
            }
        }
    }

    /// `PUT /v1/{project_id}/ports/{id}`.
    pub async fn port_update(&self, id: &str, u: &PortUpdate) -> Result<Port, ClientError> {
        let body = Self::json(&PortBody { port: u });
        let r: PortReply = self
            .call(Method::PUT, &self.port_path(id), &[], body)
            .await?;
        Ok(r.port)
    }

    /// `DELETE /v1/{project_id}/ports/{id}` (204).
    pub async fn port_delete(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty(&self.port_path(id)).await
    }
}

const SESSIONS: &str = "traffic-mirror-sessions";
const FILTERS: &str = "traffic-mirror-filters";
const RULES: &str = "traffic-mirror-filter-rules";

/// Moves `page` into `all` and points `opts` at the next page; false when there is none.
fn advance<T>(opts: &mut ListOptions, page: Page<T>, all: &mut Vec<T>) -> bool {
    let next = page.page_info.and_then(|p| p.next_marker);
    all.extend(page.items);
    match next {
        // A server that repeated a marker would make us loop forever; stop instead.
        Some(m) if Some(&m) != opts.marker.as_ref() => {
            opts.marker = Some(m);
            true
        }
        _ => false,
    }
}

/// Reads an error body the way the SDK does: `error_code`/`error_msg`, else `code`/`message`,
/// else the status and the raw text.
fn api_error(status: StatusCode, request_id: Option<String>, body: &[u8]) -> ApiError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (code, msg) = match parsed {
        Some(ErrorBody {
            error_code: Some(c),
            error_msg,
            ..
        }) => (Some(c), error_msg),
        Some(ErrorBody {
            code: Some(c),
            message,
            ..
        }) => (Some(c), message),
        _ => (None, None),
    };
    let raw = String::from_utf8_lossy(body).trim().to_owned();
    ApiError {
        status: status.as_u16(),
        error_code: code.unwrap_or_else(|| status.as_u16().to_string()),
        error_msg: msg.unwrap_or_else(|| {
            if raw.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("no error message")
                    .to_owned()
            } else {
                raw
            }
        }),
        request_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(endpoint: &str) -> Client {
        Client::new(
            endpoint,
            Credentials {
                access_key: "AK".into(),
                secret_key: "SK".into(),
                project_id: "0123456789abcdef0123456789abcdef".into(),
            },
        )
        .unwrap()
    }

    #[test]
    fn endpoint_forms() {
        let c = client("http://127.0.0.1:9696/");
        assert_eq!(c.host, "127.0.0.1:9696");
        let c = client("127.0.0.1:9696");
        assert_eq!(c.host, "127.0.0.1:9696");
        let c = client("http://example.test/prefix/");
        let url = c.url(&["v1", "p", "ports"], &[]).unwrap();
        assert_eq!(url.as_str(), "http://example.test/prefix/v1/p/ports");
        let err = Client::new(
            "ftp://example.test",
            Credentials {
                access_key: "a".into(),
                secret_key: "s".into(),
                project_id: "p".into(),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("http:// or https://"), "{err}");
    }

    #[test]
    fn query_goes_out_canonical_and_ids_stay_one_segment() {
        let c = client("http://127.0.0.1:9696");
        let opts = ListOptions::new()
            .filter("name", "a b/é")
            .filter("id", "x")
            .filter("id", "a")
            .limit(2);
        let url = c.url(&c.v3(SESSIONS), &opts.query()).unwrap();
        assert_eq!(url.query(), Some("id=a&id=x&limit=2&name=a%20b%2F%C3%A9"));
        let url = c.url(&c.v3_item(SESSIONS, "../x"), &[]).unwrap();
        assert!(
            url.path().ends_with("/traffic-mirror-sessions/..%2Fx"),
            "{}",
            url.path()
        );
        assert!(matches!(
            c.url(&c.v3_item(SESSIONS, ".."), &[]),
            Err(ClientError::InvalidArgument(_))
        ));
    }

    #[test]
    fn error_bodies_v3_v1_and_raw() {
        let e = api_error(
            StatusCode::CONFLICT,
            Some("r".into()),
            br#"{"request_id":"r","error_code":"VPC.1710","error_msg":"taken"}"#,
        );
        assert_eq!(
            (e.error_code.as_str(), e.error_msg.as_str()),
            ("VPC.1710", "taken")
        );
        let e = api_error(
            StatusCode::NOT_FOUND,
            None,
            br#"{"code":"VPC.1704","message":"no port"}"#,
        );
        assert_eq!(
            (e.error_code.as_str(), e.error_msg.as_str()),
            ("VPC.1704", "no port")
        );
        let e = api_error(StatusCode::BAD_GATEWAY, None, b"upstream down");
        assert_eq!(
            (e.error_code.as_str(), e.error_msg.as_str()),
            ("502", "upstream down")
        );
    }

    #[test]
    fn update_bodies_carry_only_what_changes() {
        let u = SessionUpdate {
            enabled: Some(false),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&SessionBody {
                traffic_mirror_session: &u
            })
            .unwrap(),
            r#"{"traffic_mirror_session":{"enabled":false}}"#
        );
        let p = PortUpdate {
            host_id: Some("h1".into()),
            binding_profile: Some(BindingProfileOption {
                interface_name: Some("veth0".into()),
                capture_side: Some(CaptureSide::Guest),
            }),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"binding:host_id":"h1","binding:profile":{"interface_name":"veth0","capture_side":"guest"}}"#
        );
    }
}
