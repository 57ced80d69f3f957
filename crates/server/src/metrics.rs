//! The control plane's Prometheus metrics (OpenMetrics text, `prometheus-client`), served on a
//! listener of their own (`tmirror serve --metrics-listen`): they name every tenant's sessions
//! and every host, so they are the operator's, kept off the API port.
//!
//! Requests are counted as they are answered (face, action, status; latency histogram by face
//! and action). What the agents report — connection, lag, per-session copies — and the
//! sessions counted by state are read from the store when Prometheus scrapes, so they are as
//! fresh as the scrape and cost nothing between scrapes.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::service::agents::connected;
use crate::service::states::Lifecycle;
use crate::service::Service;
use tmirror_model::SessionId;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    face: &'static str,
    action: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    face: &'static str,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    host_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    /// The Alibaba face's lifecycle state: `Created`, or `Creating`/`Modifying` while a
    /// connected agent has not applied the session's last change.
    state: &'static str,
    enabled: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabels {
    session_id: String,
}

/// The request metrics, shared by every request.
#[derive(Clone)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            // 1 ms to about 65 s: API calls, and agent long-polls at the top.
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 17))
            }),
        }
    }
}

impl Metrics {
    /// Counts one answered request. `action` is a route template or an Alibaba action, never
    /// a raw path, so the label values stay few.
    pub fn observe(&self, face: &'static str, action: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                face,
                action: action.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                face,
                action: action.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The exposition: the request metrics and, read now, what the agents reported.
    pub async fn render(&self, service: &Service) -> anyhow::Result<String> {
        let mut registry = Registry::with_prefix("tmirror");
        registry.register(
            "requests",
            "API requests answered, by face, action and status",
            self.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer API requests (agent long-polls included), by face and action",
            self.latency.clone(),
        );

        let revision = service.revisions().borrow().to_owned();
        let agents = service.agents().await?;
        let now = tmirror_model::Timestamp::now().0;
        let connected_count = Gauge::<i64>::default();
        let lag = Family::<HostLabels, Gauge>::default();
        for a in &agents {
            if connected(a.last_seen, now) {
                connected_count.inc();
            }
            lag.get_or_create(&HostLabels {
                host_id: a.host_id.clone(),
            })
            .set(revision.saturating_sub(a.applied_generation) as i64);
        }
        // The sessions some agent reports copies of: only theirs need their hosts.
        let reported: HashSet<SessionId> = agents
            .iter()
            .filter_map(|a| a.report["sessions"].as_object())
            .flat_map(|sessions| sessions.keys())
            .filter_map(|id| id.parse().ok())
            .collect();
        let census = service
            .session_census(&reported)
            .await
            .map_err(|e| anyhow::anyhow!("cannot count the sessions: {e}"))?;
        // A session's copies are summed over the hosts that capture it only: a host's report
        // names sessions as it likes, and must not add to another tenant's figures (nor add
        // series for sessions that do not exist).
        let reports: HashMap<&str, &serde_json::Value> = agents
            .iter()
            .map(|a| (a.host_id.as_str(), &a.report["sessions"]))
            .collect();
        let copies = Family::<SessionLabels, Counter>::default();
        let bytes = Family::<SessionLabels, Counter>::default();
        for (session, hosts) in &census.hosts {
            let id = session.to_string();
            for host in hosts {
                let Some(c) = reports.get(host.as_str()).map(|r| &r[&id]) else {
                    continue;
                };
                if !c.is_object() {
                    continue;
                }
                let labels = SessionLabels {
                    session_id: id.clone(),
                };
                copies
                    .get_or_create(&labels)
                    .inc_by(c["packets"].as_u64().unwrap_or(0));
                bytes
                    .get_or_create(&labels)
                    .inc_by(c["bytes"].as_u64().unwrap_or(0));
            }
        }
        let agents_known = Gauge::<i64>::default();
        agents_known.set(agents.len() as i64);
        let revision_gauge = Gauge::<i64>::default();
        revision_gauge.set(revision as i64);
        registry.register(
            "agents",
            "Agents the control plane has heard of",
            agents_known,
        );
        registry.register(
            "agents_connected",
            "Agents seen within the connection window",
            connected_count,
        );
        registry.register("revision", "The store's current revision", revision_gauge);
        registry.register(
            "agent_lag_revisions",
            "Revisions the host's applied desired state is behind the current one",
            lag,
        );
        registry.register(
            "session_copies",
            "Copies sent for the session, summed over the last reports of the hosts that capture it",
            copies,
        );
        registry.register(
            "session_copied_bytes",
            "Bytes of inner frames copied for the session, summed over the last reports of the hosts that capture it",
            bytes,
        );
        let by_state = Family::<StateLabels, Gauge>::default();
        // Every combination is exposed, zeros included, so a state that empties shows 0
        // rather than vanishing (Prometheus would keep showing its last value).
        for state in [
            Lifecycle::Created,
            Lifecycle::Creating,
            Lifecycle::Modifying,
        ] {
            for enabled in [true, false] {
                by_state.get_or_create(&state_labels(state, enabled)).set(0);
            }
        }
        for ((state, enabled), n) in census.counts {
            by_state
                .get_or_create(&state_labels(state, enabled))
                .set(n as i64);
        }
        registry.register(
            "sessions",
            "Sessions of every project, by lifecycle state and whether they are enabled",
            by_state,
        );
        let mut text = String::new();
        encode(&mut text, &registry)?;
        Ok(text)
    }
}

fn state_labels(state: Lifecycle, enabled: bool) -> StateLabels {
    StateLabels {
        state: state.as_str(),
        enabled: if enabled { "true" } else { "false" },
    }
}

async fn exposition(State(state): State<crate::AppState>) -> Response {
    match state.metrics.render(&state.service).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the agents");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// Serves `/metrics` (and `/healthz`) on `listener`, with the API's connection caps and
/// time-outs, until the task is aborted.
pub async fn serve(
    listener: TcpListener,
    state: crate::AppState,
    limits: crate::config::ConnectionLimits,
) {
    let app = Router::new()
        .route("/metrics", get(exposition))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state);
    let forever = std::future::pending::<()>();
    if let Err(e) =
        crate::listener::serve(listener, app, None, limits, forever, Duration::ZERO).await
    {
        tracing::warn!(error = %e, "metrics listener stopped");
    }
}

/// Binds the metrics listener.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr}"))
}
