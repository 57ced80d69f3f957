//! The agent API client (`/agent/v1`, see `docs/agent-protocol.md`): what `tmirror agent` uses
//! to register, long-poll its desired state and report what it applied.

use std::time::Duration;

use tmirror_model::agent::{AgentHello, AgentReport, AgentView, DesiredState};

use crate::{ApiError, ClientError};

/// A client of one control-plane server's agent API.
#[derive(Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl AgentClient {
    /// `endpoint` is the server (`http://host:port`); `token` the contents of its `agent-token`.
    pub fn new(endpoint: &str, token: &str) -> Result<AgentClient, ClientError> {
        let base = endpoint.trim().trim_end_matches('/');
        if !base.starts_with("http://") {
            return Err(ClientError::Endpoint {
                endpoint: endpoint.to_owned(),
                reason: "the agent API is plain http://host:port".into(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ClientError::Endpoint {
                endpoint: endpoint.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(AgentClient {
            http,
            base: format!("{base}/agent/v1"),
            token: token.trim().to_owned(),
        })
    }

    /// The server this client talks to.
    pub fn endpoint(&self) -> &str {
        self.base.trim_end_matches("/agent/v1")
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<Option<T>, ClientError> {
        let transport = |source| ClientError::Transport {
            endpoint: self.endpoint().to_owned(),
            source,
        };
        let resp = req
            .bearer_auth(&self.token)
            .timeout(timeout)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        let request_id = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().await.map_err(transport)?;
        if status >= 400 {
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            return Err(ClientError::Api(ApiError {
                status,
                error_code: body["code"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| status.to_string()),
                error_msg: body["message"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned()),
                request_id,
            }));
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ClientError::Decode {
                status,
                message: e.to_string(),
                request_id,
            })
    }

    /// Registers `host` with the interfaces it has.
    pub async fn register(&self, host: &str, hello: &AgentHello) -> Result<(), ClientError> {
        let req = self
            .http
            .post(format!("{}/hosts/{host}/register", self.base))
            .json(hello);
        self.send::<serde_json::Value>(req, Duration::from_secs(10))
            .await
            .map(|_| ())
    }

    /// The host's desired state: at once if it differs from `known`, otherwise after `wait`.
    pub async fn desired_state(
        &self,
        host: &str,
        known: &str,
        wait: Duration,
    ) -> Result<DesiredState, ClientError> {
        let req = self
            .http
            .get(format!("{}/hosts/{host}/desired-state", self.base))
            .query(&[
                ("known", known.to_owned()),
                ("wait", wait.as_secs().to_string()),
            ]);
        self.send(req, wait + Duration::from_secs(10))
            .await?
            .ok_or_else(|| ClientError::Decode {
                status: 200,
                message: "empty desired state".into(),
                request_id: None,
            })
    }

    /// Reports what the host applied.
    pub async fn report(&self, host: &str, report: &AgentReport) -> Result<(), ClientError> {
        let req = self
            .http
            .post(format!("{}/hosts/{host}/status", self.base))
            .json(report);
        self.send::<serde_json::Value>(req, Duration::from_secs(10))
            .await
            .map(|_| ())
    }

    /// What the server knows of every agent.
    pub async fn agents(&self) -> Result<Vec<AgentView>, ClientError> {
        #[derive(serde::Deserialize)]
        struct List {
            agents: Vec<AgentView>,
        }
        let req = self.http.get(format!("{}/hosts", self.base));
        Ok(self
            .send::<List>(req, Duration::from_secs(10))
            .await?
            .map(|l| l.agents)
            .unwrap_or_default())
    }
}
