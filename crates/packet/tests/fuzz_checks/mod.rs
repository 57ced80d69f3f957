//! The checks of the fuzz targets, shared by `fuzz/fuzz_targets/*.rs` (through `#[path]`) and
//! `tests/fuzz_regression.rs`, so a replayed input is held to exactly what the fuzzer checked.

#![allow(dead_code)]

use std::sync::OnceLock;

use tmirror_model::{
    Direction, Ethertype, PacketLength, PortRange, Protocol, RuleAction, RuleMatch, RulePriority,
    SessionId, SessionPriority, Vni,
};
use tmirror_packet::*;

fn r(
    dir: Direction,
    prio: u32,
    action: RuleAction,
    eth: Ethertype,
    proto: Protocol,
    src: Option<&str>,
    dport: Option<(u16, u16)>,
) -> RuleSpec {
    RuleSpec {
        direction: dir,
        priority: RulePriority::new(prio.into()).unwrap(),
        action,
        matches: RuleMatch {
            ethertype: eth,
            protocol: proto,
            source_cidr: src.map(|s| s.parse().unwrap()),
            destination_cidr: None,
            source_port_range: None,
            destination_port_range: dport.map(|(a, b)| PortRange::new(a, b).unwrap()),
        },
    }
}

fn sessions() -> Vec<SessionSpec<u32>> {
    use Direction::*;
    use Ethertype::*;
    use Protocol::*;
    use RuleAction::*;
    let f1 = CompiledFilter::new(&[
        r(
            Ingress,
            1,
            Reject,
            IPv4,
            Tcp,
            Some("10.0.0.0/8"),
            Some((22, 22)),
        ),
        r(Ingress, 2, Accept, IPv4, Tcp, None, Some((1, 1024))),
        r(Egress, 1, Accept, IPv6, Udp, Some("2001:db8::/32"), None),
    ]);
    let f2 = CompiledFilter::new(&[
        r(Ingress, 1, Accept, IPv4, All, None, None),
        r(Ingress, 2, Accept, IPv6, Icmpv6, None, None),
        r(Egress, 1, Reject, IPv4, Icmp, None, None),
        r(Egress, 2, Accept, IPv4, All, Some("0.0.0.0/0"), None),
        r(Egress, 3, Accept, IPv6, All, None, None),
    ]);
    [(1, f1, 96), (2, f2, 8500)]
        .into_iter()
        .map(|(n, filter, len)| SessionSpec {
            id: SessionId(Default::default()),
            priority: SessionPriority::new(n).unwrap(),
            vni: Vni::new(n * 1000).unwrap(),
            packet_length: PacketLength::new(len).unwrap(),
            filter,
            target: n as u32,
        })
        .collect()
}

struct Plans {
    linear: MirrorPlan<u32>,
    bitset: MirrorPlan<u32>,
    outer: OuterTemplate,
}

static PLANS: OnceLock<Plans> = OnceLock::new();

/// Parsing and the whole per-packet path on arbitrary bytes: no panic, both evaluators agree,
/// and whatever is mirrored decapsulates back to the truncated frame.
pub fn parse_frame(data: &[u8]) {
    let plans = PLANS.get_or_init(|| {
        let cfg = |evaluation| PlanConfig {
            evaluation,
            underlay_mtu: 9000,
        };
        let mut outer =
            OuterIpv4::new([2; 6], [4; 6], [192, 0, 2, 1].into(), [192, 0, 2, 2].into());
        outer.udp_checksum = true;
        Plans {
            linear: MirrorPlan::new(sessions(), cfg(Evaluation::Linear)),
            bitset: MirrorPlan::new(sessions(), cfg(Evaluation::Bitset)),
            outer: outer.template(),
        }
    });
    let _ = parse(data);
    let mut buf = [0u8; 10_000];
    for dir in Direction::ALL {
        let a = plans.linear.decide(data, dir);
        let b = plans.bitset.decide(data, dir);
        let key = |v: &Verdict<'_, u32>| match v {
            Verdict::Mirror(m) => (0, m.session.target, m.copy_len, m.flow_hash),
            Verdict::NotMirrored => (1, 0, 0, 0),
            Verdict::NotIp => (2, 0, 0, 0),
            Verdict::Malformed => (3, 0, 0, 0),
        };
        assert_eq!(key(&a), key(&b));
        if let Verdict::Mirror(m) = a {
            assert!(m.copy_len <= data.len());
            let n = m.encapsulate_frame(&plans.outer, data, &mut buf).unwrap();
            let d = decapsulate_frame(&buf[..n], VXLAN_PORT).unwrap();
            assert_eq!(d.inner, &data[..m.copy_len]);
            assert_eq!(d.vni, m.session.vni);
            let n = m.encapsulate_payload(data, &mut buf).unwrap();
            assert_eq!(
                decapsulate_payload(&buf[..n]).unwrap().inner,
                &data[..m.copy_len]
            );
        }
    }
}

/// VXLAN decapsulation of arbitrary frames and UDP payloads: no panic, and what is returned
/// lies inside the input and re-encapsulates to the same payload.
pub fn decap(data: &[u8]) {
    let mut buf = [0u8; 70_000];
    for port in [
        VXLAN_PORT,
        u16::from_be_bytes([data.first().copied().unwrap_or(0), 0xb5]),
    ] {
        if let Ok(d) = decapsulate_frame(data, port) {
            let start = d.inner.as_ptr() as usize - data.as_ptr() as usize;
            assert!(start >= 14 + 20 + 8 + 8);
            assert!(start + d.inner.len() <= data.len());
            assert!(!d.inner.is_empty());
        }
    }
    if let Ok(d) = decapsulate_payload(data) {
        assert_eq!(d.inner, &data[8..]);
        let n = encapsulate_payload(d.vni, d.inner, &mut buf).unwrap();
        let again = decapsulate_payload(&buf[..n]).unwrap();
        assert_eq!(again, d);
    }
}
