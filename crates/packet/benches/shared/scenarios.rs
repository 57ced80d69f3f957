//! The workloads the benchmark (`benches/engine.rs`) and the best-of-many timing
//! (`examples/min_timing.rs`) both measure, so that their figures are of the same thing.

use tmirror_model::Direction::{self, Egress, Ingress};
use tmirror_model::Ethertype::IPv4;
use tmirror_model::Protocol::Tcp;
use tmirror_model::RuleAction::{self, Accept, Reject};
use tmirror_packet::*;

use crate::common::{rule, session, FrameSpec, L4};

/// `n` rules per direction; rule `n` (the last) matches 10.1.2.3:40000 → 10.9.8.7:443 (and
/// its reverse for egress), the others differ in CIDR or port.
pub(crate) fn rules(n: u32, last: RuleAction) -> Vec<RuleSpec> {
    let mut v = Vec::new();
    for dir in [Ingress, Egress] {
        for i in 1..=n {
            let r = if i == n {
                rule(
                    dir,
                    i * 10,
                    last,
                    IPv4,
                    Tcp,
                    Some("10.0.0.0/8"),
                    Some("10.0.0.0/8"),
                    None,
                    Some(if dir == Ingress {
                        (443, 443)
                    } else {
                        (40000, 40000)
                    }),
                )
            } else {
                let src = format!("172.{}.{}.0/24", 16 + i % 16, i);
                let dst = format!("192.168.{}.0/24", i % 256);
                rule(
                    dir,
                    i * 10,
                    if i % 3 == 0 { Reject } else { Accept },
                    IPv4,
                    Tcp,
                    Some(&src),
                    Some(&dst),
                    Some((1000 + i as u16 * 7, 1003 + i as u16 * 7)),
                    Some((2000 + i as u16, 2000 + i as u16)),
                )
            };
            v.push(r);
        }
    }
    v
}

/// Three sessions: the first two filters' last rule matches and rejects, the third's accepts.
pub(crate) fn three_sessions(n: u32, packet_length: u16) -> Vec<SessionSpec<u128>> {
    vec![
        session(1, 1, 101, packet_length, &rules(n, Reject)),
        session(2, 2, 102, packet_length, &rules(n, Reject)),
        session(3, 3, 103, packet_length, &rules(n, Accept)),
    ]
}

pub(crate) fn frame(len: usize) -> Vec<u8> {
    let f = FrameSpec::new("10.1.2.3", "10.9.8.7", L4::Tcp(40000, 443))
        .payload(len - 54)
        .build();
    assert_eq!(f.len(), len);
    f
}

pub(crate) fn outer() -> OuterTemplate {
    OuterIpv4::new(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        [192, 0, 2, 1].into(),
        [192, 0, 2, 2].into(),
    )
    .template()
}

/// IPv6 outer headers: always with the UDP checksum (a pass over the copy) and a flow label.
/// (Not measured by `examples/min_timing.rs`.)
#[allow(dead_code)]
pub(crate) fn outer6() -> OuterTemplate {
    OuterIpv6::new(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        "fd00::1".parse().unwrap(),
        "fd00::2".parse().unwrap(),
    )
    .template()
}

pub(crate) fn plan(sessions: Vec<SessionSpec<u128>>, evaluation: Evaluation) -> MirrorPlan<u128> {
    MirrorPlan::new(
        sessions,
        PlanConfig {
            evaluation,
            ..PlanConfig::default()
        },
    )
}

/// decide + truncate + encapsulate into a complete outer frame.
#[inline(always)]
pub(crate) fn full_path(
    plan: &MirrorPlan<u128>,
    outer: &OuterTemplate,
    frame: &[u8],
    dir: Direction,
    counters: &mut Counters,
    out: &mut [u8],
) -> usize {
    match plan.decide_counted(frame, dir, counters) {
        Verdict::Mirror(m) => m.encapsulate_frame(outer, frame, out).unwrap(),
        _ => 0,
    }
}
