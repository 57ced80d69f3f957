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

/// Reads rules and sessions from the fuzzer's bytes (so coverage guides the rule shapes too),
/// then checks on the remaining bytes, taken as a frame, that the linear and bit-set plans and a
/// walk over each session's `CompiledFilter::evaluate` all give the same decision.
///
/// Layout: byte 0 = number of rules (mod 97); each rule 14 bytes; the rest is the frame.
pub fn plan(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n) % 97;
    let Some((rule_bytes, frame)) = rest.split_at_checked(n * 14) else {
        return;
    };
    let mut per_session: [Vec<RuleSpec>; 3] = Default::default();
    for c in rule_bytes.chunks_exact(14) {
        let v6 = c[0] & 1 != 0;
        let direction = if c[0] & 2 != 0 {
            Direction::Egress
        } else {
            Direction::Ingress
        };
        let action = if c[0] & 4 != 0 {
            RuleAction::Reject
        } else {
            RuleAction::Accept
        };
        let protocol = [
            Protocol::Tcp,
            Protocol::Udp,
            Protocol::Icmp,
            Protocol::Icmpv6,
            Protocol::All,
        ][usize::from(c[0] >> 3) % 5];
        let session = usize::from(c[0] >> 6) % 3;
        let priority = RulePriority::new(i64::from(c[1] % 16) + 1).unwrap();
        let cidr = |addr: &[u8], prefix: u8| -> Option<ipnet::IpNet> {
            if prefix & 0x80 != 0 {
                return None;
            }
            let a: std::net::IpAddr = if v6 {
                let mut b = [0u8; 16];
                b[0] = 0x20;
                b[1] = 0x01;
                b[12..16].copy_from_slice(addr);
                std::net::Ipv6Addr::from(b).into()
            } else {
                std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).into()
            };
            let max = if v6 { 128 } else { 32 };
            ipnet::IpNet::new(a, prefix % (max + 1)).ok()
        };
        let range = |lo: u8, w: u8| -> Option<PortRange> {
            if lo == 0 {
                return None;
            }
            let lo = u16::from(lo) * 257;
            PortRange::new(lo, lo.saturating_add(u16::from(w) * 16)).ok()
        };
        per_session[session].push(RuleSpec {
            direction,
            priority,
            action,
            matches: RuleMatch {
                ethertype: if v6 { Ethertype::IPv6 } else { Ethertype::IPv4 },
                protocol,
                source_cidr: cidr(&c[2..6], c[6]),
                destination_cidr: cidr(&c[7..11], c[11]),
                source_port_range: range(c[12] & 0xf0, c[12] & 0x0f),
                destination_port_range: range(c[13], c[13] >> 4),
            },
        });
    }
    let specs: Vec<SessionSpec<u32>> = per_session
        .iter()
        .enumerate()
        .map(|(i, rules)| SessionSpec {
            id: SessionId(Default::default()),
            priority: SessionPriority::new(i as i64 + 1).unwrap(),
            vni: Vni::new(i as i64).unwrap(),
            packet_length: PacketLength::new(96).unwrap(),
            filter: CompiledFilter::new(rules),
            target: i as u32,
        })
        .collect();
    let cfg = |evaluation| PlanConfig {
        evaluation,
        ..PlanConfig::default()
    };
    let linear = MirrorPlan::new(specs.clone(), cfg(Evaluation::Linear));
    let bitset = MirrorPlan::new(specs.clone(), cfg(Evaluation::Bitset));
    let packet = parse(frame).ok();
    for dir in Direction::ALL {
        let a = linear.decide(frame, dir).mirror().map(|m| m.session.target);
        let b = bitset.decide(frame, dir).mirror().map(|m| m.session.target);
        assert_eq!(a, b, "linear vs bit sets");
        let walk = packet.and_then(|p| {
            specs
                .iter()
                .find(|s| s.filter.evaluate(&p, dir) == Some(RuleAction::Accept))
                .map(|s| s.target)
        });
        assert_eq!(a, walk, "plan vs filter walk");
    }
}
