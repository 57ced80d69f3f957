//! `/metrics` (OpenMetrics text, `prometheus-client`) and `/healthz` of the agent.
//!
//! The counters live in [`Registry`] (atomics the pipelines add to); an exposition is built
//! from them at each scrape, so nothing is kept twice and deleted sessions and interfaces
//! stop being exported as soon as the registry forgets them.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::counters::{InterfaceCounters, Registry, SessionCounters};

type SessionValue = fn(&SessionCounters) -> u64;
type InterfaceValue = fn(&InterfaceCounters) -> u64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabels {
    session_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InterfaceLabels {
    interface: String,
}

/// Renders every counter as OpenMetrics text. The names are those of the hand-written
/// exposition this replaced (counters end in `_total`), so dashboards keep working.
pub fn render(registry: &Registry) -> String {
    let mut out = prometheus_client::registry::Registry::with_prefix("tmirror");
    let backend = registry.backend();
    if !backend.is_empty() {
        let family = Family::<BackendLabels, Gauge>::default();
        family
            .get_or_create(&BackendLabels {
                backend: backend.to_owned(),
            })
            .set(1);
        out.register(
            "agent_capture_backend",
            "The capture back-end in use (ebpf: selection in the kernel; af-packet: the fallback)",
            family,
        );
    }
    let sessions = registry.sessions();
    let interfaces = registry.interfaces();
    let per_session: [(&str, &str, SessionValue); 2] = [
        (
            "session_mirrored_packets",
            "Copies of the session's packets sent to its target",
            |c| c.packets.load(Relaxed),
        ),
        (
            "session_mirrored_bytes",
            "Bytes of inner frames sent to the session's target",
            |c| c.bytes.load(Relaxed),
        ),
    ];
    for (name, help, value) in per_session {
        let family = Family::<SessionLabels, Counter>::default();
        for (id, c) in &sessions {
            family
                .get_or_create(&SessionLabels {
                    session_id: id.to_string(),
                })
                .inc_by(value(c));
        }
        out.register(name, help, family);
    }
    let per_interface: [(&str, &str, InterfaceValue); 5] = [
        (
            "interface_captured_packets",
            "Frames read from the interface's capture ring",
            |c| c.captured.load(Relaxed),
        ),
        (
            "interface_mirrored_packets",
            "Copies sent for frames of the interface",
            |c| c.mirrored.load(Relaxed),
        ),
        (
            "interface_not_mirrored_packets",
            "Frames no session selected",
            |c| c.not_mirrored.load(Relaxed),
        ),
        (
            "interface_ring_drops",
            "Frames the kernel dropped because the capture ring was full",
            |c| c.ring_drops.load(Relaxed),
        ),
        (
            "interface_send_drops",
            "Selected copies dropped because they could not be sent",
            |c| c.send_drops.load(Relaxed),
        ),
    ];
    let label = |name: &String| InterfaceLabels {
        interface: name.clone(),
    };
    for (name, help, value) in per_interface {
        let family = Family::<InterfaceLabels, Counter>::default();
        for (iface, c) in &interfaces {
            family.get_or_create(&label(iface)).inc_by(value(c));
        }
        out.register(name, help, family);
    }
    let capturing = Family::<InterfaceLabels, Gauge>::default();
    for (iface, c) in &interfaces {
        capturing
            .get_or_create(&label(iface))
            .set(i64::from(c.state() == "capturing"));
    }
    out.register(
        "interface_capturing",
        "Whether the interface is being captured (1) or awaited (0)",
        capturing,
    );
    let generation = Gauge::<i64>::default();
    generation.set(registry.generation.load(Relaxed) as i64);
    out.register(
        "agent_applied_generation",
        "Generation of the desired state in effect",
        generation,
    );
    let connected = Gauge::<i64>::default();
    connected.set(i64::from(registry.connected.load(Relaxed)));
    out.register(
        "agent_connected",
        "Whether the last exchange with a control-plane server succeeded",
        connected,
    );
    let mut text = String::new();
    encode(&mut text, &out).expect("writing to a String cannot fail");
    text
}

async fn metrics(State(registry): State<Arc<Registry>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(&registry),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Binds `addr` and serves the endpoints until the task is dropped.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(registry);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use tmirror_model::SessionId;
    use tmirror_scrape::Scrape;

    #[test]
    fn renders_a_valid_exposition_with_every_sample() {
        let registry = Registry::default();
        let id = SessionId::from_str("0f4a1d52-3b0e-4f47-9a43-2a43bde4c7a1").unwrap();
        let s = registry.session(id);
        s.packets.fetch_add(3, Relaxed);
        s.bytes.fetch_add(300, Relaxed);
        let i = registry.interface("tap1");
        i.captured.fetch_add(5, Relaxed);
        i.ring_drops.fetch_add(1, Relaxed);
        i.set_state("capturing");
        registry.generation.store(7, Relaxed);
        let text = render(&registry);
        // A strict OpenMetrics parse: each family declared once, before its samples, `# EOF`.
        let scrape = Scrape::of(&text);
        let session = [("session_id", "0f4a1d52-3b0e-4f47-9a43-2a43bde4c7a1")];
        let tap1 = [("interface", "tap1")];
        for (name, labels, value) in [
            ("tmirror_session_mirrored_packets_total", &session[..], 3.0),
            ("tmirror_session_mirrored_bytes_total", &session, 300.0),
            ("tmirror_interface_captured_packets_total", &tap1, 5.0),
            ("tmirror_interface_ring_drops_total", &tap1, 1.0),
            ("tmirror_interface_send_drops_total", &tap1, 0.0),
            ("tmirror_interface_capturing", &tap1, 1.0),
            ("tmirror_agent_applied_generation", &[], 7.0),
            ("tmirror_agent_connected", &[], 0.0),
        ] {
            assert_eq!(
                scrape.value(name, labels),
                Some(value),
                "{name}{labels:?} in\n{text}"
            );
        }
    }
}
