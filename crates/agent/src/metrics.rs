//! `/metrics` (Prometheus text format) and `/healthz` of the agent.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::counters::{InterfaceCounters, Registry, SessionCounters};

type SessionValue = fn(&SessionCounters) -> u64;
type InterfaceValue = fn(&InterfaceCounters) -> u64;

fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Renders every counter in the Prometheus text exposition format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    let backend = registry.backend();
    if !backend.is_empty() {
        family(
            &mut out,
            "tmirror_agent_capture_backend",
            "The capture back-end in use (ebpf: selection in the kernel; af_packet: the fallback).",
            "gauge",
        );
        let _ = writeln!(
            out,
            "tmirror_agent_capture_backend{{backend=\"{backend}\"}} 1"
        );
    }
    let sessions = registry.sessions();
    let interfaces = registry.interfaces();
    let per_session: [(&str, &str, SessionValue); 2] = [
        (
            "tmirror_session_mirrored_packets_total",
            "Copies of the session's packets sent to its target.",
            |c| c.packets.load(Relaxed),
        ),
        (
            "tmirror_session_mirrored_bytes_total",
            "Bytes of inner frames sent to the session's target.",
            |c| c.bytes.load(Relaxed),
        ),
    ];
    for (name, help, value) in per_session {
        family(&mut out, name, help, "counter");
        for (id, c) in &sessions {
            let _ = writeln!(out, "{name}{{session_id=\"{id}\"}} {}", value(c));
        }
    }
    let per_interface: [(&str, &str, InterfaceValue); 5] = [
        (
            "tmirror_interface_captured_packets_total",
            "Frames read from the interface's capture ring.",
            |c| c.captured.load(Relaxed),
        ),
        (
            "tmirror_interface_mirrored_packets_total",
            "Copies sent for frames of the interface.",
            |c| c.mirrored.load(Relaxed),
        ),
        (
            "tmirror_interface_not_mirrored_packets_total",
            "Frames no session selected.",
            |c| c.not_mirrored.load(Relaxed),
        ),
        (
            "tmirror_interface_ring_drops_total",
            "Frames the kernel dropped because the capture ring was full.",
            |c| c.ring_drops.load(Relaxed),
        ),
        (
            "tmirror_interface_send_drops_total",
            "Selected copies dropped because they could not be sent.",
            |c| c.send_drops.load(Relaxed),
        ),
    ];
    for (name, help, value) in per_interface {
        family(&mut out, name, help, "counter");
        for (iface, c) in &interfaces {
            let _ = writeln!(out, "{name}{{interface=\"{iface}\"}} {}", value(c));
        }
    }
    let _ = writeln!(
        out,
        "# HELP tmirror_interface_capturing Whether the interface is being captured (1) or awaited (0).\n# TYPE tmirror_interface_capturing gauge"
    );
    for (iface, c) in &interfaces {
        let up = u8::from(c.state() == "capturing");
        let _ = writeln!(
            out,
            "tmirror_interface_capturing{{interface=\"{iface}\"}} {up}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP tmirror_agent_applied_generation Generation of the desired state in effect.\n# TYPE tmirror_agent_applied_generation gauge\ntmirror_agent_applied_generation {}",
        registry.generation.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP tmirror_agent_connected Whether the last exchange with a control-plane server succeeded.\n# TYPE tmirror_agent_connected gauge\ntmirror_agent_connected {}",
        u8::from(registry.connected.load(Relaxed))
    );
    out
}

async fn metrics(State(registry): State<Arc<Registry>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
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

    #[test]
    fn renders_every_family_once_with_its_samples() {
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
        for line in [
            "tmirror_session_mirrored_packets_total{session_id=\"0f4a1d52-3b0e-4f47-9a43-2a43bde4c7a1\"} 3",
            "tmirror_session_mirrored_bytes_total{session_id=\"0f4a1d52-3b0e-4f47-9a43-2a43bde4c7a1\"} 300",
            "tmirror_interface_captured_packets_total{interface=\"tap1\"} 5",
            "tmirror_interface_ring_drops_total{interface=\"tap1\"} 1",
            "tmirror_interface_send_drops_total{interface=\"tap1\"} 0",
            "tmirror_interface_capturing{interface=\"tap1\"} 1",
            "tmirror_agent_applied_generation 7",
            "tmirror_agent_connected 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Each family is declared exactly once, before its samples.
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let mut names: Vec<&str> = types.iter().map(|l| l.split(' ').nth(2).unwrap()).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "a family declared twice");
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let family = l.split(['{', ' ']).next().unwrap();
            assert!(
                names.contains(&family),
                "sample {l:?} of an undeclared family"
            );
        }
    }
}
