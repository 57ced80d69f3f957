//! Configuration of `tmirror serve`. The CLI fills it from flags and `TMIRROR_*` variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::service::Limits;
use crate::throttle::ThrottleConfig;

/// Everything `tmirror serve` needs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `None`: SQLite in the data directory.
    pub database_url: Option<String>,
    pub region: String,
    pub limits: Limits,
    /// How often the server forgets tombstones every agent is done with.
    pub tombstone_sweep: Duration,
    /// How often the agents' sightings (last seen, applied generation, counters) kept in
    /// memory are written down: at most this late on another server.
    pub agent_flush: Duration,
    /// The audit log: a file, or `-` for standard error; `None`: `audit.log` in the data
    /// directory.
    pub audit_log: Option<PathBuf>,
    /// How the listener is secured.
    pub tls: TlsMode,
    /// Listening on a non-loopback address without TLS is refused unless this is set.
    pub insecure_http: bool,
    /// Caps and time-outs of the connections.
    pub connections: ConnectionLimits,
    /// Where to serve Prometheus metrics (plain HTTP, the operator's: keep it on loopback or
    /// a management network); `None`: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// Request buckets per credential and per client address.
    pub throttle: ThrottleConfig,
    /// The master key that encrypts credentials' secrets (`TMIRROR_MASTER_KEY`). `None`: the
    /// key in `master_key_file`, else `master.key` in the data directory (created at first
    /// start).
    pub master_key: Option<tmirror_store::MasterKey>,
    /// A file holding the master key (base64).
    pub master_key_file: Option<PathBuf>,
    /// Files of further master keys that decrypt but never encrypt (during a rotation).
    pub accept_master_key_files: Vec<PathBuf>,
    /// Where ports bound to no host are captured (every server of a deployment must agree).
    pub unbound_ports: UnboundPorts,
}

/// Where a port bound to no host (no `binding:host_id`) is captured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnboundPorts {
    /// By whichever connected agent reports the port's interface (`tap` + the first 11
    /// characters of its id, unless the operator named one). A host's agent names its
    /// interfaces itself, so a host token can claim an unbound port's interface.
    #[default]
    ByInterface,
    /// Nowhere, until the operator binds the port to its host: what a host's agent reports
    /// decides nothing, and a host token reaches only the ports bound to its host.
    Nowhere,
}

/// How the server's listener is secured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP (allowed on loopback, or with `insecure_http`).
    #[default]
    Off,
    /// A certificate chain and its private key, PEM files.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate kept in the data directory (`tls-cert.pem`, `tls-key.pem`),
    /// made at the first start; clients trust it with `--ca-file DATA_DIR/tls-cert.pem`.
    SelfSigned,
}

/// Caps and time-outs that keep a flood of connections or slow clients from starving the
/// server (see docs/security.md for why each default).
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Connections open at once, all clients together; more are closed on accept.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_per_address: usize,
    /// Time a connection gets to send a request's headers, also while idle between requests
    /// (the keep-alive time-out).
    pub header_read_timeout: Duration,
    /// Time a request gets to send its body.
    pub body_read_timeout: Duration,
    /// Time a client gets to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Bytes of request bodies being read at once, all requests together.
    pub body_budget_bytes: usize,
    /// How long a request waits for its share of the body budget before it is answered 503
    /// (which the SDKs retry).
    pub body_budget_wait: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 8192,
            max_per_address: 512,
            header_read_timeout: Duration::from_secs(20),
            body_read_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            body_budget_bytes: 64 * 1024 * 1024,
            body_budget_wait: Duration::from_secs(5),
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: "127.0.0.1:9696".parse().expect("valid default address"),
            data_dir: PathBuf::from("./tmirror-data"),
            database_url: None,
            region: "local-1".into(),
            limits: Limits::default(),
            tombstone_sweep: Duration::from_secs(10),
            agent_flush: Duration::from_secs(1),
            audit_log: None,
            tls: TlsMode::Off,
            insecure_http: false,
            connections: ConnectionLimits::default(),
            metrics_listen: None,
            throttle: ThrottleConfig::default(),
            master_key: None,
            master_key_file: None,
            accept_master_key_files: Vec::new(),
            unbound_ports: UnboundPorts::default(),
        }
    }
}

impl ServeConfig {
    /// The database to open: the configured URL, or `tmirror.db` in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite:{}", self.data_dir.join("tmirror.db").display()),
        }
    }

    /// Whether clients reach the server over TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls != TlsMode::Off
    }

    /// Refuses plain HTTP on an address other hosts can reach, unless the operator said so.
    pub fn check_transport(&self) -> anyhow::Result<()> {
        if self.uses_tls() || self.listen.ip().is_loopback() || self.insecure_http {
            return Ok(());
        }
        anyhow::bail!(
            "refusing to serve plain HTTP on {}: signatures protect requests, but bodies, \
             desired states and agent tokens would cross the network in clear text. Give a \
             certificate with --tls-cert FILE --tls-key FILE (PEM; e.g. from your CA, or \
             `certbot certonly` for a public name), or --tls-self-signed to make one in the \
             data directory (clients then pass --ca-file DATA_DIR/tls-cert.pem), or say \
             --insecure-http if a TLS proxy or a private network protects this hop",
            self.listen
        )
    }

    /// Where audit lines go.
    pub fn audit_log_path(&self) -> PathBuf {
        self.audit_log
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit.log"))
    }

    /// The database URL with any password replaced, for messages.
    pub fn redacted_database_url(&self) -> String {
        let url = self.database_url();
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &url[scheme + 3..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                    None => url,
                }
            }
            _ => url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        let c = ServeConfig {
            database_url: Some("postgres://tm:secret@127.0.0.1:5432/tm".into()),
            ..Default::default()
        };
        assert_eq!(
            c.redacted_database_url(),
            "postgres://tm:***@127.0.0.1:5432/tm"
        );
        let d = ServeConfig::default();
        assert_eq!(d.database_url(), "sqlite:./tmirror-data/tmirror.db");
    }
}
