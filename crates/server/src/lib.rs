//! tmirror's control plane: `tmirror serve`.
//!
//! Layers, outermost first: [`app`] (the router of every face, health, error rendering with
//! the request id), [`auth`] (the clouds' request signatures), [`faces`] (each cloud's wire
//! format over one model), [`service`] (business rules), and the store (`tmirror-store`).
//! Nothing skips a layer. [`http`] is the leaf they share: request ids, the error type, the
//! body limit.

#![forbid(unsafe_code)]

pub mod app;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod console;
pub mod faces;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod secrets;
pub mod service;
pub mod throttle;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing::info;

pub use config::{ServeConfig, UnboundPorts};
pub use secrets::{open_store, rotate_master_key};

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    pub service: service::Service,
    pub credentials: Arc<auth::CredentialCache>,
    pub region: String,
    /// How clients reach this server: `http` or `https` (for the endpoints the admin API
    /// hands out).
    pub scheme: &'static str,
    /// Bytes of request bodies being read at once.
    pub bodies: http::BodyBudget,
    /// Request metrics, for `/metrics`.
    pub metrics: metrics::Metrics,
    /// The audit trail.
    pub audit: Arc<audit::Audit>,
    /// The request buckets.
    pub throttle: Arc<throttle::Throttle>,
    /// Who is signed in to the web console.
    pub sign_ins: Arc<console::signin::SignIns>,
}

/// A control plane bound to its listener, ready to serve.
pub struct Server {
    listener: TcpListener,
    router: axum::Router,
    store: Arc<dyn tmirror_store::Store>,
    service: service::Service,
    tombstone_sweep: std::time::Duration,
    tls: Option<tokio_rustls::TlsAcceptor>,
    connections: config::ConnectionLimits,
    /// The metrics listener and what it reads, when `--metrics-listen` is given.
    metrics: Option<(TcpListener, AppState)>,
}

impl Server {
    /// Opens the store, runs first-start set-up and binds the listener.
    pub async fn bind(config: &ServeConfig) -> anyhow::Result<Server> {
        config.check_transport()?;
        let store = secrets::open_store(config).await?;
        let tls = tls::acceptor(&config.tls, &config.data_dir, config.listen)?;
        listener::raise_open_files_limit();
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        bootstrap::ensure_admin(
            store.as_ref(),
            &config.data_dir,
            &format!("{scheme}://{addr}"),
        )
        .await?;
        bootstrap::remove_old_agent_token(&config.data_dir);
        let service = service::Service::new(store.clone(), config.limits, config.agent_flush)
            .with_unbound_ports(config.unbound_ports);
        let state = AppState {
            service: service.clone(),
            credentials: auth::CredentialCache::start(store.clone()).await?,
            region: config.region.clone(),
            scheme,
            metrics: metrics::Metrics::default(),
            bodies: http::BodyBudget::new(&config.connections),
            audit: Arc::new(audit::Audit::new(audit::AuditSink::open(
                &config.audit_log_path(),
            )?)),
            throttle: Arc::new(throttle::Throttle::new(config.throttle)),
            sign_ins: Arc::default(),
        };
        info!(backend = store.backend(), "store ready");
        let metrics = match config.metrics_listen {
            Some(addr) => Some((metrics::bind(addr).await?, state.clone())),
            None => None,
        };
        Ok(Server {
            listener,
            metrics,
            router: app::router(state),
            store,
            service,
            tombstone_sweep: config.tombstone_sweep,
            tls,
            connections: config.connections,
        })
    }

    /// The service layer (tests look into it).
    pub fn service(&self) -> service::Service {
        self.service.clone()
    }

    /// The address the metrics listener listens on, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        info!(addr = %self.local_addr(), tls = self.tls.is_some(), "tmirror control plane listening");
        let sweeper = tokio::spawn(sweep_tombstones(self.service.clone(), self.tombstone_sweep));
        // One server at a time checks load-balancer members (service::health): each competes
        // for the lease under a name of its own.
        let checker = tokio::spawn(service::health::run(
            self.service.clone(),
            format!("{}:{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            std::sync::Arc::new(service::health::SocketProber),
        ));
        let metrics = self.metrics.map(|(listener, state)| {
            info!(addr = ?listener.local_addr().ok(), "metrics listening");
            tokio::spawn(metrics::serve(listener, state, self.connections))
        });
        let served = listener::serve(
            self.listener,
            self.router,
            self.tls,
            self.connections,
            shutdown,
            std::time::Duration::from_secs(30),
        )
        .await;
        sweeper.abort();
        checker.abort();
        if let Some(m) = metrics {
            m.abort();
        }
        if let Err(e) = self.service.flush_agents().await {
            tracing::warn!(error = %e, "cannot write the agents' last sightings down");
        }
        served?;
        self.store.close().await;
        info!("tmirror control plane stopped");
        Ok(())
    }
}

/// Sets a file's or directory's permission bits.
fn set_mode(path: &std::path::Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).with_context(|| {
        format!(
            "cannot set the permissions of {} to {mode:o}",
            path.display()
        )
    })
}

/// Sets a file's permission bits if it is there. SQLite removes a `-wal` or `-shm` file when
/// the last connection to its database closes, which can happen between a look and the
/// change (a closing pool's connection to the nonces' file made a server's start fail so).
fn set_mode_if_present(path: &std::path::Path, mode: u32) -> anyhow::Result<()> {
    match set_mode(path, mode) {
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// The files of an SQLite database URL (`sqlite:PATH[?options]`): the database, its WAL and
/// its shared-memory file, which SQLite creates with the database file's mode, and the same
/// three of the nonces' file beside it. None for other back-ends.
fn sqlite_files(url: &str) -> Vec<std::path::PathBuf> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Vec::new();
    };
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or(path);
    let nonces = tmirror_store::sqlite::nonce_file(path);
    [path, nonces.as_str()]
        .iter()
        .flat_map(|file| {
            ["", "-wal", "-shm"]
                .iter()
                .map(move |suffix| std::path::PathBuf::from(format!("{file}{suffix}")))
        })
        .collect()
}

/// Forgets, every `every`, the tombstones whose deletion the agents applied, a page per pass.
async fn sweep_tombstones(service: service::Service, every: std::time::Duration) {
    let mut cursor = String::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match service.sweep_tombstones(&cursor).await {
            Ok(next) => cursor = next,
            Err(e) => tracing::warn!(error = %e, "tombstone clean-up failed; trying again later"),
        }
    }
}

/// Runs the control plane until SIGINT or SIGTERM.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let server = Server::bind(&config).await?;
    server.serve(shutdown_signal()).await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => info!("SIGINT received, shutting down"),
        _ = term => info!("SIGTERM received, shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_missing_file_is_no_error_when_setting_modes_if_present() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db-shm");
        super::set_mode_if_present(&file, 0o600).unwrap();
        std::fs::write(&file, b"").unwrap();
        super::set_mode_if_present(&file, 0o600).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Other failures still count: a file under a plain file cannot be reached.
        assert!(super::set_mode_if_present(&file.join("x"), 0o600).is_err());
    }
}
