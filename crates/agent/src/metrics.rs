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

use tmirror_model::SessionId;

use crate::counters::{InterfaceCounters, Registry, SessionCounters};
use crate::target::Balance;

type SessionValue = fn(&SessionCounters) -> u64;
type InterfaceValue = fn(&InterfaceCounters) -> u64;
type InterfaceGauge = fn(&InterfaceCounters) -> i64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabels {
    session_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MemberLabels {
    session_id: String,
    member: String,
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
    balance(&mut out, &sessions);
    let per_interface: [(&str, &str, InterfaceValue); 5] = [
        (
            "interface_captured_packets",
            "Frames examined: read from the interface's capture ring (af-packet), or judged by \
             the kernel program in the directions that have accept rules (ebpf)",
            |c| c.captured.load(Relaxed),
        ),
        (
            "interface_mirrored_packets",
            "Copies sent for frames of the interface",
            |c| c.mirrored.load(Relaxed),
        ),
        (
            "interface_not_mirrored_packets",
            "Frames examined that no session selected",
            |c| c.not_mirrored.load(Relaxed),
        ),
        (
            "interface_ring_drops",
            "Frames the kernel dropped because the capture ring was full",
            |c| c.ring_drops.load(Relaxed),
        ),
        (
            "interface_send_drops",
            "Selected copies dropped because they could not be sent (socket buffer full, no route, next hop unresolved)",
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
    let per_interface_gauge: [(&str, &str, InterfaceGauge); 2] = [
        (
            "interface_capturing",
            "Whether the interface is being captured (1) or awaited (0)",
            |c| i64::from(c.state() == "capturing"),
        ),
        (
            "interface_kernel_hooks",
            "TCX hooks the kernel program is attached to on the interface: those whose \
             direction has accept rules (0 with af-packet)",
            |c| c.kernel_hooks.load(Relaxed) as i64,
        ),
    ];
    for (name, help, value) in per_interface_gauge {
        let family = Family::<InterfaceLabels, Gauge>::default();
        for (iface, c) in &interfaces {
            family.get_or_create(&label(iface)).set(value(c));
        }
        out.register(name, help, family);
    }
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

/// The load-balanced sessions: copies per member, copies with no member to go to, healthy
/// members, failing open; and, over all of them, how many fail open or have no member (the
/// figures to alert on).
fn balance(
    out: &mut prometheus_client::registry::Registry,
    sessions: &[(SessionId, Arc<SessionCounters>)],
) {
    let per_member = Family::<MemberLabels, Counter>::default();
    let drops = Family::<SessionLabels, Counter>::default();
    let healthy = Family::<SessionLabels, Gauge>::default();
    let failing_open = Family::<SessionLabels, Gauge>::default();
    let (mut open_total, mut nowhere_total) = (0, 0);
    for (id, c) in sessions {
        let (h, open) = match c.balance() {
            Balance::Port => continue,
            Balance::Healthy { healthy, .. } => (healthy, false),
            Balance::FailOpen { .. } => (0, true),
            Balance::NoMember => (0, false),
        };
        open_total += i64::from(open);
        nowhere_total += i64::from(c.balance() == Balance::NoMember);
        let label = SessionLabels {
            session_id: id.to_string(),
        };
        for (member, sent) in c.members() {
            per_member
                .get_or_create(&MemberLabels {
                    session_id: label.session_id.clone(),
                    member: member.to_string(),
                })
                .inc_by(sent);
        }
        drops
            .get_or_create(&label)
            .inc_by(c.no_member_drops.load(Relaxed));
        healthy.get_or_create(&label).set(h as i64);
        failing_open.get_or_create(&label).set(i64::from(open));
    }
    out.register(
        "session_member_mirrored_packets",
        "Copies of a load-balanced session sent to each member",
        per_member,
    );
    out.register(
        "session_no_member_drops",
        "Copies of a load-balanced session dropped because its load balancer has no member",
        drops,
    );
    out.register(
        "session_healthy_members",
        "Members of a load-balanced session's target that the health checks find healthy",
        healthy,
    );
    out.register(
        "session_failing_open",
        "Whether a load-balanced session fails open (1: no member healthy, flows spread over all)",
        failing_open,
    );
    let open = Gauge::<i64>::default();
    open.set(open_total);
    out.register(
        "agent_sessions_failing_open",
        "Load-balanced sessions with no healthy member, failing open over all members",
        open,
    );
    let nowhere = Gauge::<i64>::default();
    nowhere.set(nowhere_total);
    out.register(
        "agent_sessions_without_member",
        "Load-balanced sessions whose load balancer has no member: they mirror nothing",
        nowhere,
    );
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

    #[test]
    fn load_balanced_sessions_show_members_fail_open_and_no_member() {
        let registry = Registry::default();
        let ids = [
            "11111111-3b0e-4f47-9a43-2a43bde4c7a1",
            "22222222-3b0e-4f47-9a43-2a43bde4c7a1",
            "33333333-3b0e-4f47-9a43-2a43bde4c7a1",
            "44444444-3b0e-4f47-9a43-2a43bde4c7a1",
        ];
        let c: Vec<_> = ids
            .iter()
            .map(|i| registry.session(SessionId::from_str(i).unwrap()))
            .collect();
        let (a, b) = (
            "192.168.77.2:4789".parse().unwrap(),
            "192.168.77.3:4789".parse().unwrap(),
        );
        c[0].member(a).fetch_add(4, Relaxed);
        c[0].member(b).fetch_add(6, Relaxed);
        c[0].set_balance(
            Balance::Healthy {
                healthy: 2,
                members: 2,
            },
            &[a, b],
        );
        c[1].set_balance(Balance::FailOpen { members: 2 }, &[a, b]);
        c[2].no_member_drops.fetch_add(9, Relaxed);
        c[2].set_balance(Balance::NoMember, &[]);
        // c[3] targets a port: none of the load-balancer families.
        let text = render(&registry);
        let scrape = Scrape::of(&text);
        let [one, two, three, four] = ids;
        let member = |s, m| [("session_id", s), ("member", m)];
        for (name, labels, value) in [
            (
                "tmirror_session_member_mirrored_packets_total",
                &member(one, "192.168.77.2:4789")[..],
                4.0,
            ),
            (
                "tmirror_session_member_mirrored_packets_total",
                &member(one, "192.168.77.3:4789"),
                6.0,
            ),
            (
                "tmirror_session_healthy_members",
                &[("session_id", one)],
                2.0,
            ),
            ("tmirror_session_failing_open", &[("session_id", one)], 0.0),
            ("tmirror_session_failing_open", &[("session_id", two)], 1.0),
            (
                "tmirror_session_healthy_members",
                &[("session_id", two)],
                0.0,
            ),
            (
                "tmirror_session_no_member_drops_total",
                &[("session_id", three)],
                9.0,
            ),
            ("tmirror_agent_sessions_failing_open", &[], 1.0),
            ("tmirror_agent_sessions_without_member", &[], 1.0),
        ] {
            assert_eq!(
                scrape.value(name, labels),
                Some(value),
                "{name}{labels:?} in\n{text}"
            );
        }
        let lb_families = [
            "tmirror_session_member_mirrored_packets_total",
            "tmirror_session_no_member_drops_total",
            "tmirror_session_healthy_members",
            "tmirror_session_failing_open",
        ];
        assert!(
            lb_families
                .iter()
                .all(|f| scrape.samples(f).iter().all(|s| s
                    .labels
                    .get("session_id")
                    .map(String::as_str)
                    != Some(four))),
            "a port target is not load-balanced:\n{text}"
        );
        // A member removed from the session stops being exported.
        c[0].set_balance(
            Balance::Healthy {
                healthy: 1,
                members: 1,
            },
            &[a],
        );
        let after = Scrape::of(&render(&registry));
        assert_eq!(
            after
                .samples("tmirror_session_member_mirrored_packets_total")
                .len(),
            1
        );
    }
}
