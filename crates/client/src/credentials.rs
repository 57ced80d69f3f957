//! The credential a client signs with, and the `admin-credentials.json` file `tmirror serve`
//! writes on first start.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// An access key, its secret, and the project the key belongs to (the `{project_id}` of every
/// path and the `X-Project-Id` header).
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct Credentials {
    /// Access key (AK), sent in `Authorization`.
    pub access_key: String,
    /// Secret key (SK), only ever used as the HMAC key.
    pub secret_key: String,
    /// 32 lower-case hex digits.
    pub project_id: String,
}

// Hand-written so that a `{:?}` in a log line or a panic message never prints the secret.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("project_id", &self.project_id)
            .finish()
    }
}

/// The contents of a credentials file: the credential and, if recorded, the server's endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialsFile {
    /// The credential.
    pub credentials: Credentials,
    /// `endpoint` from the file (`http://ADDR` of the server that wrote it), if present.
    pub endpoint: Option<String>,
}

/// Why a credentials file could not be used; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The file could not be read.
    #[error("cannot read credentials file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not the expected JSON object.
    #[error("credentials file {} is not valid: {source} (expected {{\"access_key\", \"secret_key\", \"project_id\", \"endpoint\"}})", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

impl CredentialsError {
    /// Whether the file does not exist (so a caller can suggest how to create it).
    pub fn is_not_found(&self) -> bool {
        matches!(self, CredentialsError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

#[derive(Deserialize)]
struct FileBody {
    #[serde(flatten)]
    credentials: Credentials,
    #[serde(default)]
    endpoint: Option<String>,
}

impl Credentials {
    /// Reads an `admin-credentials.json`-style file:
    /// `{"access_key", "secret_key", "project_id", "endpoint"}` (`endpoint` optional).
    pub fn load(path: impl AsRef<Path>) -> Result<CredentialsFile, CredentialsError> {
        let path = path.as_ref();
        let text = std::fs::read(path).map_err(|source| CredentialsError::Io {
            path: path.to_owned(),
            source,
        })?;
        let body: FileBody =
            serde_json::from_slice(&text).map_err(|source| CredentialsError::Parse {
                path: path.to_owned(),
                source,
            })?;
        Ok(CredentialsFile {
            credentials: body.credentials,
            endpoint: body.endpoint.filter(|e| !e.trim().is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_secret() {
        let c = Credentials {
            access_key: "AK".into(),
            secret_key: "very-secret".into(),
            project_id: "p".into(),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("AK"));
    }

    #[test]
    fn load_reads_the_admin_file_and_names_the_file_on_error() {
        let dir = std::env::temp_dir().join(format!("tmirror-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("admin-credentials.json");
        std::fs::write(
            &path,
            r#"{"access_key": "AK", "secret_key": "SK", "project_id": "0123456789abcdef0123456789abcdef", "endpoint": "http://127.0.0.1:9696"}"#,
        )
        .unwrap();
        let file = Credentials::load(&path).unwrap();
        assert_eq!(file.credentials.access_key, "AK");
        assert_eq!(file.endpoint.as_deref(), Some("http://127.0.0.1:9696"));

        std::fs::write(&path, r#"{"access_key": "AK"}"#).unwrap();
        let err = Credentials::load(&path).unwrap_err();
        assert!(err.to_string().contains("admin-credentials.json"), "{err}");

        let missing = Credentials::load(dir.join("nope.json")).unwrap_err();
        assert!(missing.is_not_found());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
