//! The property-test generators of sessions, rules and frames, shared by the engine's
//! differential test and the agent's kernel-versus-engine test (which includes this file).

#![allow(dead_code)]

use std::net::IpAddr;

use ipnet::IpNet;
use proptest::prelude::*;
use tmirror_model::{
    Direction, Ethertype, PacketLength, PortRange, Protocol, RuleAction, RuleMatch, RulePriority,
    SessionId, SessionPriority, Vni,
};
use tmirror_packet::*;

use crate::common::{FrameSpec, L4};

/// A session as the generator describes it.
#[derive(Clone, Debug)]
pub struct RefSession {
    pub id: u128,
    pub priority: u16,
    pub vni: u32,
    pub packet_length: u16,
    pub rules: Vec<RuleSpec>,
}

pub const V4: [&str; 6] = [
    "10.0.0.1",
    "10.0.0.2",
    "10.0.1.1",
    "10.0.1.200",
    "192.168.7.9",
    "0.0.0.0",
];
pub const V6: [&str; 6] = [
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8:0:1::1",
    "2001:db8:1::9",
    "fe80::1",
    "::",
];
pub const PORTS: [u16; 8] = [0, 1, 22, 80, 443, 1000, 40000, 65535];

pub fn addr(v6: bool) -> impl Strategy<Value = IpAddr> {
    (0..6usize).prop_map(move |i| if v6 { V6[i] } else { V4[i] }.parse().unwrap())
}

pub fn cidr(v6: bool) -> impl Strategy<Value = Option<IpNet>> {
    let prefixes: &'static [u8] = if v6 {
        &[0, 16, 32, 48, 64, 127, 128]
    } else {
        &[0, 8, 16, 24, 31, 32]
    };
    prop_oneof![
        5 => Just(None),
        4 => (addr(v6), prop::sample::select(prefixes))
            .prop_map(|(a, p)| Some(IpNet::new(a, p).unwrap())),
        // occasionally a CIDR of the other family (the engine must never match it)
        1 => (addr(!v6), Just(0u8)).prop_map(|(a, p)| Some(IpNet::new(a, p).unwrap())),
    ]
}

pub fn port_range() -> impl Strategy<Value = Option<PortRange>> {
    prop_oneof![
        4 => Just(None),
        3 => (prop::sample::select(&PORTS[1..]), prop::sample::select(&PORTS[1..]))
            .prop_map(|(a, b)| Some(PortRange::new(a.min(b), a.max(b)).unwrap())),
        1 => (1u16..=65535, 0u16..200).prop_map(|(a, w)| Some(PortRange::new(a, a.saturating_add(w)).unwrap())),
    ]
}

pub fn protocol() -> impl Strategy<Value = Protocol> {
    prop::sample::select(
        &[
            Protocol::Tcp,
            Protocol::Udp,
            Protocol::Icmp,
            Protocol::Icmpv6,
            Protocol::All,
        ][..],
    )
}

pub fn direction() -> impl Strategy<Value = Direction> {
    prop::sample::select(&Direction::ALL[..])
}

pub fn rule() -> impl Strategy<Value = RuleSpec> {
    (
        any::<bool>(),
        direction(),
        1u32..12,
        any::<bool>(),
        protocol(),
    )
        .prop_flat_map(|(v6, direction, prio, accept, protocol)| {
            (cidr(v6), cidr(v6), port_range(), port_range()).prop_map(
                move |(source_cidr, destination_cidr, sp, dp)| RuleSpec {
                    direction,
                    priority: RulePriority::new(i64::from(prio)).unwrap(),
                    action: if accept {
                        RuleAction::Accept
                    } else {
                        RuleAction::Reject
                    },
                    matches: RuleMatch {
                        ethertype: if v6 { Ethertype::IPv6 } else { Ethertype::IPv4 },
                        protocol,
                        source_cidr,
                        destination_cidr,
                        source_port_range: sp,
                        destination_port_range: dp,
                    },
                },
            )
        })
}

pub fn sessions() -> impl Strategy<Value = Vec<RefSession>> {
    sessions_with(0..5, 0..12)
}

pub fn sessions_with(
    count: std::ops::Range<usize>,
    rules: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<RefSession>> {
    prop::collection::vec(
        (
            1u16..6,
            prop_oneof![Just(0u32), Just(16_777_215u32), 0u32..16_777_216],
            prop_oneof![Just(1u16), Just(96u16), 1u16..=8500],
            prop::collection::vec(rule(), rules),
        ),
        count,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (priority, vni, packet_length, rules))| RefSession {
                id: i as u128 + 1,
                priority,
                vni,
                packet_length,
                rules,
            })
            .collect()
    })
}

pub fn l4(v6: bool) -> impl Strategy<Value = L4> {
    let icmp = if v6 { L4::Icmpv6 } else { L4::Icmp };
    let p = || prop::sample::select(&PORTS[..]);
    prop_oneof![
        3 => (p(), p()).prop_map(|(a, b)| L4::Tcp(a, b)),
        3 => (p(), p()).prop_map(|(a, b)| L4::Udp(a, b)),
        1 => Just(icmp),
        1 => Just(if v6 { L4::Icmp } else { L4::Icmpv6 }),
        1 => Just(L4::Other(47)),
    ]
}

pub fn frame() -> impl Strategy<Value = FrameSpec> {
    any::<bool>().prop_flat_map(|v6| {
        (
            addr(v6),
            addr(v6),
            l4(v6),
            0usize..1600,
            prop::collection::vec(
                (
                    prop::sample::select(&[0x8100u16, 0x88A8, 0x9100][..]),
                    0u16..4096,
                ),
                0..4,
            ),
            prop_oneof![4 => Just(0u16), 1 => 1u16..8000],
            any::<bool>(),
            (0usize..=10).prop_map(|n| n * 4),
            prop::collection::vec(
                prop::sample::select(&[(0u8, 8usize), (60, 16), (43, 24), (51, 12)][..]),
                0..4,
            ),
            prop_oneof![3 => Just(0usize), 1 => 1usize..30],
        )
            .prop_map(
                move |(src, dst, l4, payload, vlans, frag, mf, opts, ext, padding)| FrameSpec {
                    vlans,
                    src,
                    dst,
                    l4,
                    payload,
                    ipv4_options: if v6 { 0 } else { opts },
                    frag_offset: frag,
                    more_fragments: mf,
                    ipv6_ext: if v6 { ext } else { vec![] },
                    padding,
                },
            )
    })
}

pub fn to_spec(s: &RefSession) -> SessionSpec<u128> {
    SessionSpec {
        id: SessionId(uuid::Uuid::from_u128(s.id)),
        priority: SessionPriority::new(i64::from(s.priority)).unwrap(),
        vni: Vni::new(i64::from(s.vni)).unwrap(),
        packet_length: PacketLength::new(i64::from(s.packet_length)).unwrap(),
        filter: CompiledFilter::new(&s.rules),
        target: s.id,
    }
}
