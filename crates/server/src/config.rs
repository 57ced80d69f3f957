//! Configuration of `tmirror serve`. The CLI fills it from flags and `TMIRROR_*` variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::service::Limits;

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
    /// The audit log: a file, or `-` for standard error; `None`: `audit.log` in the data
    /// directory.
    pub audit_log: Option<PathBuf>,
    /// The master key that encrypts credentials' secrets (`TMIRROR_MASTER_KEY`). `None`: the
    /// key in `master_key_file`, else `master.key` in the data directory (created at first
    /// start).
    pub master_key: Option<tmirror_store::MasterKey>,
    /// A file holding the master key (base64).
    pub master_key_file: Option<PathBuf>,
    /// Files of further master keys that decrypt but never encrypt (during a rotation).
    pub accept_master_key_files: Vec<PathBuf>,
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
            audit_log: None,
            master_key: None,
            master_key_file: None,
            accept_master_key_files: Vec::new(),
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
