//! `tmirror agent` as a library call: metrics endpoint, data plane and synchronisation.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use crate::counters::Registry;
use crate::dataplane::{MirrorConfig, Mirrors};
use crate::metrics;
use crate::sync::{SyncConfig, Syncer};

/// Everything `tmirror agent` is configured with.
#[derive(Clone)]
pub struct AgentOptions {
    pub servers: Vec<String>,
    /// The host's token; it acts only as `host_id`.
    pub token: String,
    pub host_id: String,
    pub state_dir: PathBuf,
    pub metrics_listen: Option<SocketAddr>,
    pub mirror: MirrorConfig,
    pub poll_wait: Duration,
    /// Whom to trust for https:// servers.
    pub transport: tmirror_client::Transport,
}

// Hand-written so that a `{:?}` never prints the token.
impl std::fmt::Debug for AgentOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentOptions")
            .field("servers", &self.servers)
            .field("token", &"<redacted>")
            .field("host_id", &self.host_id)
            .field("state_dir", &self.state_dir)
            .field("metrics_listen", &self.metrics_listen)
            .field("mirror", &self.mirror)
            .field("poll_wait", &self.poll_wait)
            .field("transport", &self.transport)
            .finish()
    }
}

/// Runs the agent until `shutdown` resolves; then stops every pipeline.
pub async fn run(
    options: AgentOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let registry = Arc::new(Registry::default());
    let _metrics = match options.metrics_listen {
        Some(addr) => {
            let (local, task) = metrics::serve(addr, registry.clone())
                .await
                .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
            info!(%local, "metrics at http://{local}/metrics");
            Some(AbortOnDrop(task))
        }
        None => None,
    };
    let mirrors = Mirrors::new(options.mirror, registry)?;
    let syncer = Syncer::new(
        SyncConfig {
            servers: options.servers,
            token: options.token,
            host_id: options.host_id.clone(),
            state_dir: options.state_dir,
            poll_wait: options.poll_wait,
            max_backoff: Duration::from_secs(5),
            follow_older_after: crate::sync::FOLLOW_OLDER_AFTER,
            transport: options.transport,
        },
        mirrors,
    )?;
    info!(host_id = %options.host_id, "agent started");
    let mirrors = syncer.run(shutdown).await;
    info!(interfaces = ?mirrors.running(), "stopping");
    drop(mirrors);
    Ok(())
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
