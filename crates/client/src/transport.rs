//! How the clients reach a server: plain `http://` (loopback, or a network the operator
//! trusts) or `https://`, verifying the server's certificate against the system's roots or a
//! CA file (`--ca-file`, e.g. a self-signed server's `tls-cert.pem`). Verification cannot be
//! turned off.

use std::path::PathBuf;
use std::time::Duration;

/// The trust settings shared by the signed client, the admin client and the agent client.
#[derive(Clone, Debug, Default)]
pub struct Transport {
    /// Certificate authorities (PEM, one or more certificates) trusted besides the system's.
    pub ca_file: Option<PathBuf>,
}

impl Transport {
    /// Trusts the certificates of `ca_file` as well as the system's roots.
    pub fn with_ca_file(ca_file: impl Into<PathBuf>) -> Self {
        Transport {
            ca_file: Some(ca_file.into()),
        }
    }

    /// An HTTP client with these trust settings; `timeout` bounds each whole request, if set.
    pub(crate) fn http(
        &self,
        connect_timeout: Duration,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Client, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .use_rustls_tls()
            .https_only(false);
        if let Some(t) = timeout {
            builder = builder.timeout(t);
        }
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("{} holds no usable PEM certificate: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("{} holds no PEM certificate", path.display()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder.build().map_err(|e| e.to_string())
    }
}

/// Whether `scheme` is one the clients speak.
pub(crate) fn supported_scheme(scheme: &str) -> bool {
    matches!(scheme, "http" | "https")
}
