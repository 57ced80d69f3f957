//! Following the control plane: register, long-poll the desired state, apply what changed,
//! save it, report the applied generation and the counters. Several servers may be given;
//! when one does not answer, the next is tried. Until one answers, the saved state is applied.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tmirror_client::AgentClient;
use tmirror_client::ClientError;
use tmirror_model::agent::{AgentHello, AgentReport, DesiredState};
use tracing::{error, info, warn};

use crate::state;

/// How long servers may answer with an older document than the one in effect before the
/// agent follows it ([`SyncConfig::follow_older_after`]): far longer than a server's view
/// lags another's (well within a second), short enough that a control plane restored from a
/// backup is followed within a minute.
pub const FOLLOW_OLDER_AFTER: Duration = Duration::from_secs(30);

/// What applies desired states on the host.
pub trait Dataplane: Send {
    /// Makes `state` the one in effect. Must be idempotent: pipelines of interfaces whose plan
    /// did not change are left alone.
    fn apply(&mut self, state: &DesiredState) -> Result<(), String>;
    /// Counters to report (per session and per interface).
    fn counters(&self) -> serde_json::Value;
    /// Interfaces present on the host.
    fn interfaces(&self) -> Vec<String>;
    /// Told after every exchange with the control plane whether a server answered.
    fn connected(&mut self, _answered: bool) {}
}

/// How the agent reaches the control plane.
#[derive(Clone)]
pub struct SyncConfig {
    /// Control-plane servers (`http://host:port`), tried in order.
    pub servers: Vec<String>,
    /// The host's token (from its credential file); the servers accept it only for `host_id`.
    pub token: String,
    /// The name ports are bound to (`binding:host_id`): the host the credential was issued to.
    pub host_id: String,
    /// Where the last applied state is kept.
    pub state_dir: PathBuf,
    /// How long a poll may wait for a change.
    pub poll_wait: Duration,
    /// Longest pause between attempts when no server answers.
    pub max_backoff: Duration,
    /// How long servers may keep answering with a document older than the one in effect
    /// (a lower generation, other contents) before the agent follows it: a server whose view
    /// lags catches up within a second, a control plane restored from a backup never does.
    pub follow_older_after: Duration,
    /// Whom to trust for https:// servers (the system's roots, and a CA file if given).
    pub transport: tmirror_client::Transport,
}

// Hand-written so that a `{:?}` never prints the token.
impl std::fmt::Debug for SyncConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncConfig")
            .field("servers", &self.servers)
            .field("token", &"<redacted>")
            .field("host_id", &self.host_id)
            .field("state_dir", &self.state_dir)
            .field("poll_wait", &self.poll_wait)
            .field("max_backoff", &self.max_backoff)
            .field("follow_older_after", &self.follow_older_after)
            .field("transport", &self.transport)
            .finish()
    }
}

/// What an answer that refuses this host's credential means, for the operator.
fn refusal(e: &ClientError) -> Option<&'static str> {
    match e {
        ClientError::Api(a) if a.status == 401 => Some(
            "the server refused this host's credential: the host was disabled or deleted, or \
             its credential rotated (install the new one)",
        ),
        ClientError::Api(a) if a.status == 403 => Some(
            "the server refused this host id for this credential: the credential belongs to \
             another host",
        ),
        _ => None,
    }
}

/// The synchronisation loop.
pub struct Syncer<D> {
    config: SyncConfig,
    clients: Vec<AgentClient>,
    dataplane: D,
    applied: Option<DesiredState>,
    /// The data plane failed to apply a document: it may have applied part of it, so the
    /// next document is applied whatever its hash (even that of the state in effect).
    apply_failed: bool,
}

impl<D: Dataplane> Syncer<D> {
    /// Checks the configuration; nothing is contacted yet.
    pub fn new(config: SyncConfig, dataplane: D) -> Result<Self, String> {
        if config.servers.is_empty() {
            return Err("give at least one --server".into());
        }
        let clients = config
            .servers
            .iter()
            .map(|s| {
                AgentClient::with_transport(s, &config.token, &config.transport)
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Syncer {
            config,
            clients,
            dataplane,
            applied: None,
            apply_failed: false,
        })
    }

    /// The state in effect.
    pub fn applied(&self) -> Option<&DesiredState> {
        self.applied.as_ref()
    }

    /// Makes `doc` the state in effect; false when the data plane could not apply it (the
    /// old state stays in effect).
    fn apply(&mut self, doc: DesiredState, save: bool) -> bool {
        let changed = self.apply_failed
            || self
                .applied
                .as_ref()
                .map(|a| a.content_hash != doc.content_hash)
                .unwrap_or(true);
        if changed {
            if let Err(e) = self.dataplane.apply(&doc) {
                // Keep the old state as the one reported; the next poll, after a pause,
                // brings the document again.
                warn!(generation = doc.generation, error = %e, "could not apply the desired state");
                self.apply_failed = true;
                return false;
            }
            self.apply_failed = false;
            info!(
                generation = doc.generation,
                interfaces = doc.interfaces.len(),
                "applied desired state"
            );
        }
        if save && changed {
            if let Err(e) = state::save(&self.config.state_dir, &doc) {
                warn!(error = %e, "could not save the desired state; mirroring goes on");
            }
        }
        self.applied = Some(doc);
        true
    }

    /// Takes a document a server answered with: applies it when it is newer than the one in
    /// effect; holds an older one with other contents back, for `follow_older_after` at
    /// most (`older_since`: since when servers have answered so). True when the agent is
    /// settled: the next poll may wait for a change. False when it should pause first, for
    /// the server answers at once while the agent's state differs from its own.
    fn take(&mut self, doc: DesiredState, older_since: &mut Option<Instant>) -> bool {
        // After a failed apply the data plane may hold part of a document: any whole one the
        // server has is better, whatever its generation or hash.
        let applied = match &self.applied {
            Some(a) if !self.apply_failed && doc.generation <= a.generation => a,
            _ => {
                *older_since = None;
                return self.apply(doc, true);
            }
        };
        if doc.content_hash == applied.content_hash {
            *older_since = None;
            return true;
        }
        // An older document with other contents: a server whose view lags another's, for a
        // moment; or a control plane that went back to an older revision (restored from a
        // backup), whose documents will never be newer than the one in effect.
        let (doc_generation, applied_generation) = (doc.generation, applied.generation);
        let Some(since) = *older_since else {
            warn!(
                generation = doc_generation,
                applied = applied_generation,
                "the server sent an older desired state than the one in effect; keeping ours \
                 while its view catches up, and following it if it still does so after {:?}",
                self.config.follow_older_after
            );
            *older_since = Some(Instant::now());
            return false;
        };
        if since.elapsed() < self.config.follow_older_after {
            return false;
        }
        warn!(
            generation = doc_generation,
            applied = applied_generation,
            "the control plane went back to an older revision (restored from a backup?): \
             following it"
        );
        // Followed once applied: should the data plane fail, the next answer tries again
        // (after a pause) rather than wait out the delay anew.
        let applied = self.apply(doc, true);
        if applied {
            *older_since = None;
        }
        applied
    }

    /// Runs until `stop` resolves: applies the saved state first, then follows the servers.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) -> D {
        if let Some(saved) = state::load(&self.config.state_dir, &self.config.host_id) {
            info!(
                generation = saved.generation,
                "resuming from the saved state"
            );
            self.apply(saved, false);
        }
        tokio::pin!(stop);
        let mut server = 0;
        let mut backoff = Duration::from_millis(200);
        let mut registered = false;
        let mut older_since = None;
        loop {
            let client = self.clients[server].clone();
            let outcome = if registered {
                Ok(())
            } else {
                let hello = AgentHello {
                    version: env!("CARGO_PKG_VERSION").into(),
                    interfaces: self.dataplane.interfaces(),
                };
                tokio::select! {
                    _ = &mut stop => return self.dataplane,
                    r = client.register(&self.config.host_id, &hello) => r.map(drop),
                }
            };
            let outcome = match outcome {
                Ok(()) => {
                    if !registered {
                        // Registered: connected, even while the long-poll waits.
                        self.dataplane.connected(true);
                    }
                    // After a failed apply, none: the server answers at once, also with the
                    // state in effect (what the data plane holds is not known).
                    let known = match &self.applied {
                        Some(a) if !self.apply_failed => a.content_hash.clone(),
                        _ => String::new(),
                    };
                    tokio::select! {
                        _ = &mut stop => return self.dataplane,
                        r = client.desired_state(&self.config.host_id, &known, self.config.poll_wait) => r,
                    }
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(doc) => {
                    registered = true;
                    self.dataplane.connected(true);
                    let settled = self.take(doc, &mut older_since);
                    let report = AgentReport {
                        applied_generation: self
                            .applied
                            .as_ref()
                            .map(|a| a.generation)
                            .unwrap_or(0),
                        interfaces: self.dataplane.interfaces(),
                        counters: self.dataplane.counters(),
                    };
                    if let Err(e) = client.report(&self.config.host_id, &report).await {
                        warn!(server = client.endpoint(), error = %e, "status report failed");
                    }
                    if settled {
                        backoff = Duration::from_millis(200);
                    } else {
                        // Not settled: the server would answer the next poll at once. Pause,
                        // and ask the next server, whose view may be newer.
                        if self.clients.len() > 1 {
                            registered = false;
                            server = (server + 1) % self.clients.len();
                        }
                        if pause(&mut backoff, self.config.max_backoff, &mut stop).await {
                            return self.dataplane;
                        }
                    }
                }
                Err(e) => {
                    self.dataplane.connected(false);
                    match refusal(&e) {
                        Some(why) => {
                            error!(server = client.endpoint(), error = %e, "{why}; mirroring goes on with the state in effect")
                        }
                        None => {
                            warn!(server = client.endpoint(), error = %e, "control plane unreachable; mirroring goes on with the state in effect")
                        }
                    }
                    registered = false;
                    server = (server + 1) % self.clients.len();
                    if pause(&mut backoff, self.config.max_backoff, &mut stop).await {
                        return self.dataplane;
                    }
                }
            }
        }
    }
}

/// Waits `backoff`, then doubles it (up to `max`); true when `stop` resolved meanwhile.
async fn pause(
    backoff: &mut Duration,
    max: Duration,
    stop: &mut Pin<&mut impl Future<Output = ()>>,
) -> bool {
    let stopped = tokio::select! {
        _ = stop.as_mut() => true,
        _ = tokio::time::sleep(*backoff) => false,
    };
    *backoff = (*backoff * 2).min(max);
    stopped
}
