//! The agent API client (`/agent/v1`, see `docs/agent-protocol.md`): what `tmirror agent` uses
//! to register, long-poll its desired state and report what it applied, and the host
//! credential file it authenticates with.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tmirror_model::agent::{AgentHello, AgentReport, AgentView, DesiredState};

use crate::{ApiError, ClientError};

/// One host's credential: what `POST /admin/v1/hosts` answers as `credential` (and `tmirror
/// admin host create NAME --output json` prints), kept by the agent in a file of its own.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCredential {
    /// The host the token was issued to: the only one it may act as.
    pub host_id: String,
    /// The bearer token.
    pub token: String,
    /// The server that issued it (`http://host:port`), as it saw itself addressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

// Hand-written so that a `{:?}` never prints the token.
impl fmt::Debug for AgentCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentCredential")
            .field("host_id", &self.host_id)
            .field("token", &"<redacted>")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// Why a host credential file could not be used; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum AgentCredentialError {
    /// The file could not be read (missing, unreadable).
    #[error("cannot read the host credential file {}: {source} (the operator enrols the host with POST /admin/v1/hosts or `tmirror admin host create HOST`, and saves its credential there with mode 0600)", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Group or others may read or write the file.
    #[error("the host credential file {} has mode {mode:o}: group and others must have no access to a secret (chmod 600 {})", path.display(), path.display())]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a credential.
    #[error("the host credential file {} is not valid: {reason} (expected {{\"host_id\", \"token\", \"endpoint\"}}, as POST /admin/v1/hosts answers it)", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl AgentCredential {
    /// Reads a host credential file: `{"host_id", "token", "endpoint"}`, or the whole answer
    /// of `POST /admin/v1/hosts` (whose `credential` is that). The file must be the owner's
    /// alone (no permission bits for group or others), like an SSH private key.
    pub fn load(path: impl AsRef<Path>) -> Result<AgentCredential, AgentCredentialError> {
        use std::os::unix::fs::PermissionsExt;
        let path = path.as_ref();
        let io = |source| AgentCredentialError::Io {
            path: path.to_owned(),
            source,
        };
        let invalid = |reason: String| AgentCredentialError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AgentCredentialError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        let body = match value.get("credential") {
            Some(inner) if inner.is_object() => inner.clone(),
            _ => value,
        };
        let mut c: AgentCredential =
            serde_json::from_value(body).map_err(|e| invalid(e.to_string()))?;
        c.host_id = c.host_id.trim().to_owned();
        c.token = c.token.trim().to_owned();
        c.endpoint = c
            .endpoint
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty());
        if c.host_id.is_empty() {
            return Err(invalid("host_id is empty".into()));
        }
        if c.token.is_empty() {
            return Err(invalid("token is empty".into()));
        }
        Ok(c)
    }
}

/// A client of one control-plane server's agent API.
#[derive(Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl AgentClient {
    /// `endpoint` is the server (`http://host:port`); `token` the host's token (its
    /// [`AgentCredential`]).
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

    /// What the server knows of `host` (this client's own host), or `None` before its first
    /// registration.
    pub async fn host(&self, host: &str) -> Result<Option<AgentView>, ClientError> {
        let req = self.http.get(format!("{}/hosts/{host}", self.base));
        match self.send::<AgentView>(req, Duration::from_secs(10)).await {
            Ok(v) => Ok(v),
            Err(ClientError::Api(e)) if e.status == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn load_reads_a_private_credential_and_names_the_file_on_every_error() {
        let dir = std::env::temp_dir().join(format!("tmirror-agent-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good =
            r#"{"host_id": "hv1", "token": "secret-token", "endpoint": "http://127.0.0.1:9696"}"#;
        let path = write(&dir, "hv1.json", good, 0o600);
        let c = AgentCredential::load(&path).unwrap();
        assert_eq!(c.host_id, "hv1");
        assert_eq!(c.token, "secret-token");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9696"));
        assert!(!format!("{c:?}").contains("secret-token"));
        // The admin API's whole answer works too.
        let whole = format!(r#"{{"host": {{"host_id": "hv1"}}, "credential": {good}}}"#);
        let path = write(&dir, "answer.json", &whole, 0o400);
        assert_eq!(AgentCredential::load(&path).unwrap(), c);

        let cases = [
            ("open.json", good, 0o644, "chmod 600"),
            ("group.json", good, 0o640, "mode 640"),
            ("bad.json", "hv1 secret", 0o600, "not valid"),
            (
                "notoken.json",
                r#"{"host_id": "hv1", "token": " "}"#,
                0o600,
                "token is empty",
            ),
            ("nohost.json", r#"{"token": "t"}"#, 0o600, "host_id"),
        ];
        for (name, text, mode, says) in cases {
            let path = write(&dir, name, text, mode);
            let err = AgentCredential::load(&path).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(says), "{name}: {err}");
        }
        let err = AgentCredential::load(dir.join("missing.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missing.json") && err.contains("enrols"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
