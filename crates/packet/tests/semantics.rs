//! Unit tests of every rule field and edge named in issue 4, run against both evaluation
//! strategies.

mod common;

use common::{csum, rule, session, FrameSpec, L4};
use tmirror_model::Direction::{Egress, Ingress};
use tmirror_model::Ethertype::{IPv4, IPv6};
use tmirror_model::Protocol::{All, Icmp, Icmpv6, Tcp, Udp};
use tmirror_model::RuleAction::{Accept, Reject};
use tmirror_model::{Direction, Vni};
use tmirror_packet::*;

/// The target of the session that mirrors `frame`, checking that every strategy agrees.
fn decide(sessions: &[SessionSpec<u128>], frame: &[u8], dir: Direction) -> Option<u128> {
    let mut answers = Vec::new();
    for strategy in [Evaluation::Linear, Evaluation::Bitset, Evaluation::Auto] {
        let plan = MirrorPlan::new(
            sessions.to_vec(),
            PlanConfig {
                evaluation: strategy,
                ..PlanConfig::default()
            },
        );
        answers.push(plan.decide(frame, dir).mirror().map(|m| m.session.target));
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "strategies disagree: {answers:?}"
    );
    answers[0]
}

/// One session with these rules: is the frame mirrored?
fn mirrored(rules: &[RuleSpec], frame: &[u8], dir: Direction) -> bool {
    decide(&[session(1, 1, 7, 1500, rules)], frame, dir).is_some()
}

fn tcp4(sp: u16, dp: u16) -> Vec<u8> {
    FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Tcp(sp, dp)).build()
}

fn accept_all_v4() -> RuleSpec {
    rule(Ingress, 1, Accept, IPv4, All, None, None, None, None)
}

// ---------------------------------------------------------------- parsing

#[test]
fn parses_tcp_udp_icmp_v4() {
    let p = parse(&tcp4(1234, 80)).unwrap();
    assert_eq!(p.version, IpVersion::V4);
    assert_eq!(p.protocol, 6);
    assert_eq!(p.ports, Some((1234, 80)));
    assert_eq!(p.src_ip().to_string(), "10.0.0.1");
    assert_eq!(p.dst_ip().to_string(), "10.0.0.2");
    let u = parse(&FrameSpec::new("1.2.3.4", "5.6.7.8", L4::Udp(53, 5353)).build()).unwrap();
    assert_eq!((u.protocol, u.ports), (17, Some((53, 5353))));
    let i = parse(&FrameSpec::new("1.2.3.4", "5.6.7.8", L4::Icmp).build()).unwrap();
    assert_eq!((i.protocol, i.ports), (1, None));
    let o = parse(&FrameSpec::new("1.2.3.4", "5.6.7.8", L4::Other(47)).build()).unwrap();
    assert_eq!((o.protocol, o.ports), (47, None));
}

#[test]
fn parses_ipv4_options_and_padding() {
    let mut f = FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Tcp(1, 2));
    f.ipv4_options = 40;
    f.padding = 10;
    let p = parse(&f.build()).unwrap();
    assert_eq!(p.ports, Some((1, 2)));
}

#[test]
fn parses_vlan_and_qinq() {
    let one = FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Udp(7, 8)).vlan(0x8100, 5);
    assert_eq!(parse(&one.build()).unwrap().ports, Some((7, 8)));
    let two = one.clone().vlan(0x8100, 6);
    let qinq = FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Udp(7, 8))
        .vlan(0x88A8, 100)
        .vlan(0x8100, 5);
    assert_eq!(parse(&two.build()).unwrap().ports, Some((7, 8)));
    assert_eq!(parse(&qinq.build()).unwrap().ports, Some((7, 8)));
    let old = FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Udp(7, 8)).vlan(0x9100, 1);
    assert!(parse(&old.build()).is_ok());
    let three = qinq.vlan(0x8100, 7);
    assert_eq!(parse(&three.build()), Err(ParseError::NotIp));
    // A VLAN-tagged frame is classified like the untagged one.
    let rules = [rule(
        Ingress,
        1,
        Accept,
        IPv4,
        Udp,
        None,
        None,
        None,
        Some((8, 8)),
    )];
    assert!(mirrored(&rules, &two.build(), Ingress));
}

#[test]
fn non_ip_is_not_ip() {
    let mut arp = vec![0xffu8; 12];
    arp.extend([0x08, 0x06]);
    arp.extend([0u8; 28]);
    assert_eq!(parse(&arp), Err(ParseError::NotIp));
    let mut lldp = vec![0u8; 12];
    lldp.extend([0x88, 0xcc, 0, 0]);
    assert_eq!(parse(&lldp), Err(ParseError::NotIp));
    let plan = MirrorPlan::new(
        vec![session(1, 1, 1, 96, &[accept_all_v4()])],
        PlanConfig::default(),
    );
    assert_eq!(plan.decide(&arp, Ingress), Verdict::NotIp);
}

#[test]
fn malformed_is_malformed() {
    let good = tcp4(1, 2);
    // every strict prefix of a frame without padding is malformed (or too short for Ethernet)
    for n in 0..good.len() {
        assert_eq!(parse(&good[..n]), Err(ParseError::Malformed), "prefix {n}");
    }
    let mut bad_version = good.clone();
    bad_version[14] = 0x55;
    assert_eq!(parse(&bad_version), Err(ParseError::Malformed));
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x44;
    assert_eq!(parse(&bad_ihl), Err(ParseError::Malformed));
    let mut long_total = good.clone();
    long_total[16..18].copy_from_slice(&1000u16.to_be_bytes());
    assert_eq!(parse(&long_total), Err(ParseError::Malformed));
    let mut bad_doff = good.clone();
    bad_doff[14 + 20 + 12] = 4 << 4;
    assert_eq!(parse(&bad_doff), Err(ParseError::Malformed));
    let mut udp = FrameSpec::new("1.1.1.1", "2.2.2.2", L4::Udp(1, 2)).build();
    udp[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(parse(&udp), Err(ParseError::Malformed));
    let plan = MirrorPlan::new(
        vec![session(1, 1, 1, 96, &[accept_all_v4()])],
        PlanConfig::default(),
    );
    assert_eq!(plan.decide(&bad_ihl, Ingress), Verdict::Malformed);
}

#[test]
fn ipv6_extension_headers_are_skipped() {
    let mut f = FrameSpec::new("2001:db8::1", "2001:db8::2", L4::Tcp(4000, 443));
    f.ipv6_ext = vec![(0, 8), (60, 16), (43, 24), (51, 12)];
    let p = parse(&f.build()).unwrap();
    assert_eq!(p.version, IpVersion::V6);
    assert_eq!((p.protocol, p.ports), (6, Some((4000, 443))));
    let rules = [rule(
        Ingress,
        1,
        Accept,
        IPv6,
        Tcp,
        None,
        None,
        None,
        Some((443, 443)),
    )];
    assert!(mirrored(&rules, &f.build(), Ingress));
    // Hop-by-Hop anywhere but first is invalid (RFC 8200 §4.1)
    f.ipv6_ext = vec![(60, 8), (0, 8)];
    assert_eq!(parse(&f.build()), Err(ParseError::Malformed));
    // too many extension headers: refused rather than walked forever
    f.ipv6_ext = vec![(60, 8); 9];
    assert_eq!(parse(&f.build()), Err(ParseError::Malformed));
    // an extension header running past the payload
    let mut g = FrameSpec::new("2001:db8::1", "2001:db8::2", L4::Other(59));
    g.ipv6_ext = vec![(60, 8)];
    let mut b = g.build();
    b[14 + 40 + 1] = 3;
    assert_eq!(parse(&b), Err(ParseError::Malformed));
}

#[test]
fn fragments() {
    // first fragment: ports present
    let mut first = FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Tcp(1000, 80));
    first.more_fragments = true;
    assert_eq!(parse(&first.build()).unwrap().ports, Some((1000, 80)));
    // non-first fragment: no ports
    let mut later = FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Tcp(1000, 80));
    later.frag_offset = 185;
    let p = parse(&later.build()).unwrap();
    assert!(p.non_first_fragment);
    assert_eq!((p.protocol, p.ports), (6, None));
    let with_ports = [rule(
        Ingress,
        1,
        Accept,
        IPv4,
        Tcp,
        None,
        None,
        None,
        Some((80, 80)),
    )];
    let without = [rule(Ingress, 1, Accept, IPv4, Tcp, None, None, None, None)];
    let all = [accept_all_v4()];
    assert!(mirrored(&with_ports, &first.build(), Ingress));
    assert!(!mirrored(&with_ports, &later.build(), Ingress));
    assert!(mirrored(&without, &later.build(), Ingress));
    assert!(mirrored(&all, &later.build(), Ingress));
    // full range 1-65535 is still a port range: a fragment does not match it
    let full = [rule(
        Ingress,
        1,
        Accept,
        IPv4,
        Tcp,
        None,
        None,
        Some((1, 65535)),
        None,
    )];
    assert!(!mirrored(&full, &later.build(), Ingress));
    // IPv6 fragment header
    let mut v6 = FrameSpec::new("2001:db8::1", "2001:db8::2", L4::Udp(5, 6));
    v6.more_fragments = true;
    assert_eq!(parse(&v6.build()).unwrap().ports, Some((5, 6)));
    v6.more_fragments = false;
    v6.frag_offset = 10;
    let p = parse(&v6.build()).unwrap();
    assert_eq!(
        (p.protocol, p.ports, p.non_first_fragment),
        (17, None, true)
    );
    let v6_ports = [rule(
        Ingress,
        1,
        Accept,
        IPv6,
        Udp,
        None,
        None,
        Some((5, 5)),
        None,
    )];
    let v6_any = [rule(Ingress, 1, Accept, IPv6, Udp, None, None, None, None)];
    assert!(!mirrored(&v6_ports, &v6.build(), Ingress));
    assert!(mirrored(&v6_any, &v6.build(), Ingress));
}

// ---------------------------------------------------------------- rule fields

#[test]
fn ethertype_separates_families() {
    let v4 = tcp4(1, 2);
    let v6 = FrameSpec::new("::1", "::2", L4::Tcp(1, 2)).build();
    let r4 = [rule(Ingress, 1, Accept, IPv4, All, None, None, None, None)];
    let r6 = [rule(Ingress, 1, Accept, IPv6, All, None, None, None, None)];
    assert!(mirrored(&r4, &v4, Ingress) && !mirrored(&r4, &v6, Ingress));
    assert!(mirrored(&r6, &v6, Ingress) && !mirrored(&r6, &v4, Ingress));
    // a rule whose CIDR is of the other family never matches
    let odd = [rule(
        Ingress,
        1,
        Accept,
        IPv4,
        All,
        Some("::/0"),
        None,
        None,
        None,
    )];
    assert!(!mirrored(&odd, &v4, Ingress) && !mirrored(&odd, &v6, Ingress));
}

#[test]
fn protocol_field() {
    let frames = [
        ("tcp", tcp4(1, 2)),
        (
            "udp",
            FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Udp(1, 2)).build(),
        ),
        (
            "icmp",
            FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Icmp).build(),
        ),
        (
            "gre",
            FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Other(47)).build(),
        ),
    ];
    for (proto, want) in [(Tcp, "tcp"), (Udp, "udp"), (Icmp, "icmp")] {
        let r = [rule(
            Ingress, 1, Accept, IPv4, proto, None, None, None, None,
        )];
        for (name, f) in &frames {
            assert_eq!(
                mirrored(&r, f, Ingress),
                *name == want,
                "{proto:?} vs {name}"
            );
        }
    }
    let all = [rule(Ingress, 1, Accept, IPv4, All, None, None, None, None)];
    assert!(frames.iter().all(|(_, f)| mirrored(&all, f, Ingress)));
    let icmp6 = FrameSpec::new("fe80::1", "ff02::1", L4::Icmpv6).build();
    let r = [rule(
        Ingress, 1, Accept, IPv6, Icmpv6, None, None, None, None,
    )];
    assert!(mirrored(&r, &icmp6, Ingress));
    let r = [rule(Ingress, 1, Accept, IPv6, Tcp, None, None, None, None)];
    assert!(!mirrored(&r, &icmp6, Ingress));
}

#[test]
fn cidr_field() {
    let f = FrameSpec::new("192.168.1.10", "172.16.5.4", L4::Udp(1, 2)).build();
    let src = |c: &str| {
        [rule(
            Ingress,
            1,
            Accept,
            IPv4,
            All,
            Some(c),
            None,
            None,
            None,
        )]
    };
    let dst = |c: &str| {
        [rule(
            Ingress,
            1,
            Accept,
            IPv4,
            All,
            None,
            Some(c),
            None,
            None,
        )]
    };
    assert!(mirrored(&src("0.0.0.0/0"), &f, Ingress));
    assert!(mirrored(&src("192.168.1.10/32"), &f, Ingress));
    assert!(!mirrored(&src("192.168.1.11/32"), &f, Ingress));
    assert!(mirrored(&src("192.168.0.0/16"), &f, Ingress));
    assert!(!mirrored(&src("192.169.0.0/16"), &f, Ingress));
    // host bits in the rule are ignored (the network is what counts)
    assert!(mirrored(&src("192.168.1.99/24"), &f, Ingress));
    assert!(mirrored(&dst("172.16.5.4/32"), &f, Ingress));
    assert!(!mirrored(&dst("172.16.5.5/32"), &f, Ingress));
    assert!(mirrored(&dst("172.16.0.0/12"), &f, Ingress));
    assert!(!mirrored(&dst("192.168.1.10/32"), &f, Ingress));
    assert!(mirrored(&dst("0.0.0.0/0"), &f, Ingress));
    let g = FrameSpec::new("2001:db8::10", "2001:db8:1::4", L4::Udp(1, 2)).build();
    let src6 = |c: &str| {
        [rule(
            Ingress,
            1,
            Accept,
            IPv6,
            All,
            Some(c),
            None,
            None,
            None,
        )]
    };
    let dst6 = |c: &str| {
        [rule(
            Ingress,
            1,
            Accept,
            IPv6,
            All,
            None,
            Some(c),
            None,
            None,
        )]
    };
    assert!(mirrored(&src6("::/0"), &g, Ingress));
    assert!(mirrored(&src6("2001:db8::10/128"), &g, Ingress));
    assert!(!mirrored(&src6("2001:db8::11/128"), &g, Ingress));
    assert!(mirrored(&src6("2001:db8::/64"), &g, Ingress));
    assert!(mirrored(&dst6("2001:db8:1::4/128"), &g, Ingress));
    assert!(!mirrored(&dst6("2001:db8::/48"), &g, Ingress));
    assert!(mirrored(&dst6("2001:db8::/32"), &g, Ingress));
}

#[test]
fn port_range_bounds() {
    for (lo, hi) in [(80u16, 90u16), (1, 1), (65535, 65535), (1, 65535)] {
        let s = [rule(
            Ingress,
            1,
            Accept,
            IPv4,
            Tcp,
            None,
            None,
            Some((lo, hi)),
            None,
        )];
        let d = [rule(
            Ingress,
            1,
            Accept,
            IPv4,
            Udp,
            None,
            None,
            None,
            Some((lo, hi)),
        )];
        let udp = |sp, dp| FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Udp(sp, dp)).build();
        assert!(mirrored(&s, &tcp4(lo, 9), Ingress));
        assert!(mirrored(&s, &tcp4(hi, 9), Ingress));
        assert!(mirrored(&d, &udp(9, lo), Ingress));
        assert!(mirrored(&d, &udp(9, hi), Ingress));
        if lo > 0 {
            assert!(!mirrored(&s, &tcp4(lo - 1, 9), Ingress));
            assert!(!mirrored(&d, &udp(9, lo - 1), Ingress));
        }
        if hi < u16::MAX {
            assert!(!mirrored(&s, &tcp4(hi + 1, 9), Ingress));
            assert!(!mirrored(&d, &udp(9, hi + 1), Ingress));
        }
    }
    // both ranges must hold
    let both = [rule(
        Ingress,
        1,
        Accept,
        IPv4,
        Tcp,
        None,
        None,
        Some((1000, 2000)),
        Some((80, 80)),
    )];
    assert!(mirrored(&both, &tcp4(1500, 80), Ingress));
    assert!(!mirrored(&both, &tcp4(1500, 81), Ingress));
    assert!(!mirrored(&both, &tcp4(999, 80), Ingress));
    // port 0 is outside every range
    assert!(!mirrored(
        &[rule(
            Ingress,
            1,
            Accept,
            IPv4,
            Tcp,
            None,
            None,
            Some((1, 65535)),
            None
        )],
        &tcp4(0, 1),
        Ingress
    ));
}

#[test]
fn port_ranges_only_apply_to_tcp_and_udp() {
    // A rule of protocol ICMP or ALL carrying port ranges (the model refuses them; the engine
    // ignores them) matches ICMP and any port.
    let icmp = FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Icmp).build();
    let r = [rule(
        Ingress,
        1,
        Accept,
        IPv4,
        Icmp,
        None,
        None,
        Some((5, 5)),
        Some((5, 5)),
    )];
    assert!(mirrored(&r, &icmp, Ingress));
    let r = [rule(
        Ingress,
        1,
        Accept,
        IPv4,
        All,
        None,
        None,
        Some((5, 5)),
        None,
    )];
    assert!(mirrored(&r, &tcp4(6, 6), Ingress));
    assert!(mirrored(&r, &icmp, Ingress));
}

#[test]
fn priority_order_and_first_match() {
    let f = tcp4(1234, 80);
    // reject before accept: rejected, whatever order the rules are given in
    let a = rule(Ingress, 20, Accept, IPv4, Tcp, None, None, None, None);
    let r = rule(
        Ingress,
        10,
        Reject,
        IPv4,
        Tcp,
        None,
        None,
        None,
        Some((80, 80)),
    );
    assert!(!mirrored(&[a.clone(), r.clone()], &f, Ingress));
    assert!(!mirrored(&[r.clone(), a.clone()], &f, Ingress));
    // accept before reject: accepted
    let a1 = rule(Ingress, 5, Accept, IPv4, Tcp, None, None, None, None);
    assert!(mirrored(&[r.clone(), a.clone(), a1], &f, Ingress));
    // a reject that does not match lets a later accept decide
    let r2 = rule(Ingress, 1, Reject, IPv4, Udp, None, None, None, None);
    assert!(mirrored(&[r2, a.clone()], &f, Ingress));
    // priority 1 and 65535
    let lo = rule(Ingress, 1, Reject, IPv4, All, None, None, None, None);
    let hi = rule(Ingress, 65535, Accept, IPv4, All, None, None, None, None);
    assert!(!mirrored(&[hi.clone(), lo], &f, Ingress));
    assert!(mirrored(&[hi], &f, Ingress));
}

#[test]
fn directions_are_separate_and_default_deny() {
    let f = tcp4(1, 2);
    let ing = [rule(Ingress, 1, Accept, IPv4, All, None, None, None, None)];
    assert!(mirrored(&ing, &f, Ingress));
    assert!(!mirrored(&ing, &f, Egress));
    let eg = [rule(Egress, 1, Accept, IPv4, All, None, None, None, None)];
    assert!(mirrored(&eg, &f, Egress) && !mirrored(&eg, &f, Ingress));
    // no rules: nothing mirrored
    assert!(!mirrored(&[], &f, Ingress) && !mirrored(&[], &f, Egress));
    // rules that do not match: not mirrored
    let none = [rule(Ingress, 1, Accept, IPv4, Udp, None, None, None, None)];
    assert!(!mirrored(&none, &f, Ingress));
    assert_eq!(direction_flip_is_model_side(), Egress);
}

fn direction_flip_is_model_side() -> Direction {
    Ingress.flipped()
}

// ---------------------------------------------------------------- sessions

#[test]
fn sessions_in_priority_order_mirror_once() {
    let f = tcp4(1234, 80);
    let acc = [rule(Ingress, 1, Accept, IPv4, All, None, None, None, None)];
    // both accept: the lower priority number wins, whatever the input order
    let s = [session(1, 20, 1, 96, &acc), session(2, 10, 2, 96, &acc)];
    assert_eq!(decide(&s, &f, Ingress), Some(2));
    let plan = MirrorPlan::new(s.to_vec(), PlanConfig::default());
    assert_eq!(plan.sessions()[0].target, 2);
}

#[test]
fn reject_in_a_higher_priority_session_hands_over() {
    // Project choice (docs/packet-engine.md): walk sessions in priority order; the first
    // whose filter ACCEPTS mirrors; a matching reject only ends that session's evaluation.
    let f = tcp4(1234, 80);
    let rej = [rule(Ingress, 1, Reject, IPv4, All, None, None, None, None)];
    let acc = [rule(Ingress, 1, Accept, IPv4, All, None, None, None, None)];
    let nomatch = [rule(Ingress, 1, Accept, IPv4, Udp, None, None, None, None)];
    let s = [session(1, 1, 1, 96, &rej), session(2, 2, 2, 96, &acc)];
    assert_eq!(decide(&s, &f, Ingress), Some(2), "reject hands over");
    let s = [session(1, 1, 1, 96, &nomatch), session(2, 2, 2, 96, &acc)];
    assert_eq!(decide(&s, &f, Ingress), Some(2), "no match hands over");
    let s = [session(1, 1, 1, 96, &[]), session(2, 2, 2, 96, &acc)];
    assert_eq!(decide(&s, &f, Ingress), Some(2), "empty filter hands over");
    let s = [session(1, 1, 1, 96, &rej), session(2, 2, 2, 96, &rej)];
    assert_eq!(decide(&s, &f, Ingress), None, "all reject");
    assert_eq!(decide(&[], &f, Ingress), None, "no session");
    // The HTTP example of the AWS guide: HTTP to session 1, other TCP to session 2.
    let http = [rule(
        Ingress,
        1,
        Accept,
        IPv4,
        Tcp,
        None,
        None,
        None,
        Some((80, 80)),
    )];
    let tcp = [rule(Ingress, 1, Accept, IPv4, Tcp, None, None, None, None)];
    let s = [session(1, 1, 1, 96, &http), session(2, 2, 2, 96, &tcp)];
    assert_eq!(decide(&s, &tcp4(999, 80), Ingress), Some(1));
    assert_eq!(decide(&s, &tcp4(999, 22), Ingress), Some(2));
}

// ---------------------------------------------------------------- truncation

fn copy_len(packet_length: u16, frame: &[u8], mtu: u16) -> Option<usize> {
    let plan = MirrorPlan::new(
        vec![session(1, 1, 1, packet_length, &[accept_all_v4()])],
        PlanConfig {
            underlay_mtu: mtu,
            ..PlanConfig::default()
        },
    );
    plan.decide(frame, Ingress).mirror().map(|m| m.copy_len)
}

#[test]
fn truncation() {
    let f = FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Udp(1, 2))
        .payload(100)
        .build();
    let n = f.len();
    assert_eq!(copy_len(1, &f, 1500), Some(1));
    assert_eq!(copy_len(n as u16 - 1, &f, 1500), Some(n - 1));
    assert_eq!(copy_len(n as u16, &f, 1500), Some(n));
    assert_eq!(copy_len(n as u16 + 1, &f, 1500), Some(n));
    assert_eq!(copy_len(8500, &f, 1500), Some(n));
    // the underlay MTU clamps: 36 bytes of outer IPv4/UDP/VXLAN
    let big = FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Udp(1, 2))
        .payload(1472)
        .build();
    assert_eq!(big.len(), 1514);
    assert_eq!(copy_len(8500, &big, 1500), Some(1464));
    assert_eq!(copy_len(8500, &big, 9000), Some(1514));
    assert_eq!(copy_len(96, &big, 1500), Some(96));
    // an absurd MTU is raised to IPv4's minimum of 68: 32 bytes survive
    assert_eq!(copy_len(8500, &big, 0), Some(32));
    assert_eq!(copy_len(8500, &big, 68), Some(32));
    // zero bytes: PacketLength cannot be 0, but an empty inner frame still encapsulates
    let mut out = [0u8; 16];
    assert_eq!(
        encapsulate_payload(Vni::new(5).unwrap(), &[], &mut out),
        Ok(8)
    );
}

#[test]
fn truncated_copy_bytes() {
    let f = FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Udp(1, 2))
        .payload(200)
        .build();
    let plan = MirrorPlan::new(
        vec![session(1, 1, 0x123456, 96, &[accept_all_v4()])],
        PlanConfig::default(),
    );
    let m = plan.decide(&f, Ingress).mirror().unwrap();
    assert_eq!(m.inner(&f), &f[..96]);
    let mut out = [0u8; 200];
    let n = m.encapsulate_payload(&f, &mut out).unwrap();
    assert_eq!(n, 104);
    assert_eq!(&out[..8], &[0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
    assert_eq!(&out[8..104], &f[..96]);
    // too small a buffer is an error, not a panic
    assert_eq!(
        m.encapsulate_payload(&f, &mut out[..50]),
        Err(EncapError::BufferTooSmall { needed: 104 })
    );
}

// ---------------------------------------------------------------- VXLAN

fn outer(udp_checksum: bool) -> OuterTemplate {
    let mut o = OuterIpv4::new(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        "192.0.2.1".parse().unwrap(),
        "192.0.2.2".parse().unwrap(),
    );
    o.udp_checksum = udp_checksum;
    o.template()
}

#[test]
fn vni_bounds() {
    for v in [0u32, 1, 0xABCDEF, 16_777_215] {
        let vni = Vni::new(i64::from(v)).unwrap();
        let mut hdr = [0u8; 8];
        write_vxlan_header(vni, &mut hdr);
        assert_eq!(hdr[0], 0x08);
        assert_eq!(&hdr[1..4], &[0, 0, 0]);
        assert_eq!(hdr[7], 0);
        assert_eq!(u32::from_be_bytes([0, hdr[4], hdr[5], hdr[6]]), v);
        let inner = tcp4(1, 2);
        let mut out = [0u8; 200];
        let n = encapsulate_payload(vni, &inner, &mut out).unwrap();
        let d = decapsulate_payload(&out[..n]).unwrap();
        assert_eq!(d.vni, vni);
        assert_eq!(d.inner, &inner[..]);
        let n = outer(false)
            .encapsulate(50000, vni, &inner, &mut out)
            .unwrap();
        let d = decapsulate_frame(&out[..n], VXLAN_PORT).unwrap();
        assert_eq!((d.vni, d.inner), (vni, &inner[..]));
    }
}

#[test]
fn outer_frame_layout_and_checksums() {
    let inner = FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Udp(1, 2))
        .payload(33)
        .build();
    for udp_checksum in [false, true] {
        let mut out = vec![0u8; 2000];
        let n = outer(udp_checksum)
            .encapsulate(54321, Vni::new(42).unwrap(), &inner, &mut out)
            .unwrap();
        assert_eq!(n, inner.len() + 50);
        let f = &out[..n];
        assert_eq!(&f[0..6], &[2, 0, 0, 0, 0, 2]);
        assert_eq!(&f[6..12], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        let ip = &f[14..34];
        assert_eq!(ip[0], 0x45);
        assert_eq!(usize::from(u16::from_be_bytes([ip[2], ip[3]])), n - 14);
        assert_eq!(&ip[6..8], &[0x40, 0], "DF, no fragment");
        assert_eq!(ip[8], 64);
        assert_eq!(ip[9], 17);
        assert_eq!(csum(ip), 0, "IPv4 header checksum");
        assert_eq!(&ip[12..16], &[192, 0, 2, 1]);
        assert_eq!(&ip[16..20], &[192, 0, 2, 2]);
        let udp = &f[34..];
        assert_eq!(u16::from_be_bytes([udp[0], udp[1]]), 54321);
        assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), 4789);
        assert_eq!(usize::from(u16::from_be_bytes([udp[4], udp[5]])), n - 34);
        let c = u16::from_be_bytes([udp[6], udp[7]]);
        if udp_checksum {
            let mut pseudo = Vec::new();
            pseudo.extend(&ip[12..20]);
            pseudo.extend([0, 17]);
            pseudo.extend(((n - 34) as u16).to_be_bytes());
            pseudo.extend(udp);
            assert_ne!(c, 0);
            assert_eq!(csum(&pseudo), 0, "UDP checksum verifies");
        } else {
            assert_eq!(c, 0);
        }
        assert_eq!(&f[42..50], &[0x08, 0, 0, 0, 0, 0, 42, 0]);
        assert_eq!(&f[50..], &inner[..]);
    }
    let mut small = [0u8; 60];
    assert_eq!(
        outer(false).encapsulate(1, Vni::new(1).unwrap(), &inner, &mut small),
        Err(EncapError::BufferTooSmall {
            needed: inner.len() + 50
        })
    );
    let huge = vec![0u8; 65536];
    let mut out = vec![0u8; 70000];
    assert_eq!(
        outer(false).encapsulate(1, Vni::new(1).unwrap(), &huge, &mut out),
        Err(EncapError::TooLarge)
    );
}

#[test]
fn decapsulation_validates_lengths() {
    let inner = tcp4(1, 2);
    let mut buf = vec![0u8; 500];
    let n = outer(false)
        .encapsulate(50000, Vni::new(9).unwrap(), &inner, &mut buf)
        .unwrap();
    let good = buf[..n].to_vec();
    assert!(decapsulate_frame(&good, VXLAN_PORT).is_ok());
    // padding after the datagram is ignored
    let mut padded = good.clone();
    padded.extend([0u8; 20]);
    assert_eq!(
        decapsulate_frame(&padded, VXLAN_PORT).unwrap().inner,
        &inner[..]
    );
    // every prefix is refused
    for k in 0..n {
        assert!(
            decapsulate_frame(&good[..k], VXLAN_PORT).is_err(),
            "prefix {k}"
        );
    }
    assert_eq!(decapsulate_frame(&good, 4790), Err(DecapError::NotVxlan));
    let mut bad_sum = good.clone();
    bad_sum[14 + 8] ^= 1; // TTL changed without fixing the checksum
    assert_eq!(
        decapsulate_frame(&bad_sum, VXLAN_PORT),
        Err(DecapError::BadChecksum)
    );
    let mut short_udp = good.clone();
    short_udp[38..40].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(
        decapsulate_frame(&short_udp, VXLAN_PORT),
        Err(DecapError::BadLength)
    );
    let mut long_udp = good.clone();
    long_udp[38..40].copy_from_slice(&((n - 34 + 1) as u16).to_be_bytes());
    assert_eq!(
        decapsulate_frame(&long_udp, VXLAN_PORT),
        Err(DecapError::Truncated)
    );
    let mut no_i = good.clone();
    no_i[42] = 0;
    assert_eq!(decapsulate_frame(&no_i, VXLAN_PORT), Err(DecapError::NoVni));
    // reserved bits are ignored on receipt
    let mut reserved = good.clone();
    reserved[43] = 0xff;
    reserved[49] = 0xff;
    assert_eq!(
        decapsulate_frame(&reserved, VXLAN_PORT).unwrap().vni.get(),
        9
    );
    assert_eq!(
        decapsulate_payload(&[8, 0, 0, 0, 0, 0, 1, 0]),
        Err(DecapError::EmptyInner)
    );
    assert_eq!(decapsulate_payload(&[8, 0, 0]), Err(DecapError::Truncated));
}

#[test]
fn decapsulates_ipv6_and_vlan_outer() {
    let inner = tcp4(1, 2);
    let mut udp = Vec::new();
    udp.extend(50000u16.to_be_bytes());
    udp.extend(4789u16.to_be_bytes());
    udp.extend(((16 + inner.len()) as u16).to_be_bytes());
    udp.extend([0, 0]);
    udp.extend([8, 0, 0, 0, 0, 0, 3, 0]);
    udp.extend(&inner);
    let mut f = vec![0u8; 12];
    f.extend([0x81, 0x00, 0, 5, 0x86, 0xdd]);
    let mut ip6 = vec![0u8; 40];
    ip6[0] = 0x60;
    ip6[4..6].copy_from_slice(&(udp.len() as u16).to_be_bytes());
    ip6[6] = 17;
    f.extend(ip6);
    f.extend(&udp);
    let d = decapsulate_frame(&f, VXLAN_PORT).unwrap();
    assert_eq!((d.vni.get(), d.inner), (3, &inner[..]));
}

/// A fragmented datagram's fragments hash alike, the first (which has ports) with the others
/// (which have none), so that they reach the same load-balancer member; an unfragmented
/// datagram of the flow hashes with its ports, as before.
#[test]
fn every_fragment_of_a_datagram_hashes_alike() {
    for (src, dst) in [("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "2001:db8::2")] {
        let whole = FrameSpec::new(src, dst, L4::Udp(4000, 53));
        let mut first = whole.clone();
        first.more_fragments = true;
        let mut middle = whole.clone();
        middle.more_fragments = true;
        middle.frag_offset = 185;
        let mut last = whole.clone();
        last.frag_offset = 370;
        let [whole, first, middle, last] =
            [whole, first, middle, last].map(|f| parse(&f.build()).unwrap());
        assert!(!whole.fragment);
        assert!(first.fragment && middle.fragment && last.fragment);
        assert_eq!(
            first.ports,
            Some((4000, 53)),
            "filters still see the first's ports"
        );
        assert_eq!(flow_hash(&first), flow_hash(&middle));
        assert_eq!(flow_hash(&first), flow_hash(&last));
        assert_ne!(flow_hash(&whole), flow_hash(&first));
    }
}

#[test]
fn flow_hash_is_symmetric_and_in_range() {
    let pairs = [
        (L4::Tcp(1234, 80), L4::Tcp(80, 1234)),
        (L4::Udp(53, 5353), L4::Udp(5353, 53)),
    ];
    for (a, b) in pairs {
        let x = parse(&FrameSpec::new("10.0.0.1", "10.0.0.2", a).build()).unwrap();
        let y = parse(&FrameSpec::new("10.0.0.2", "10.0.0.1", b).build()).unwrap();
        assert_eq!(flow_hash(&x), flow_hash(&y));
    }
    let x = parse(&FrameSpec::new("2001:db8::1", "2001:db8::2", L4::Icmpv6).build()).unwrap();
    let y = parse(&FrameSpec::new("2001:db8::2", "2001:db8::1", L4::Icmpv6).build()).unwrap();
    assert_eq!(flow_hash(&x), flow_hash(&y));
    // different flows usually differ; the port always lies in 49152-65535
    let mut ports = std::collections::HashSet::new();
    for p in 1..2000u16 {
        let x = parse(&tcp4(p, 80)).unwrap();
        let sp = source_port(flow_hash(&x));
        assert!(sp >= 49152);
        ports.insert(sp);
    }
    assert!(ports.len() > 1800, "{} distinct ports", ports.len());
    assert_eq!(source_port(0), 49152);
    assert_eq!(source_port(u32::MAX), 65535);
    // the mirror decision carries the same port for both directions of a flow
    let plan = MirrorPlan::new(
        vec![session(
            1,
            1,
            1,
            96,
            &[
                rule(Ingress, 1, Accept, IPv4, All, None, None, None, None),
                rule(Egress, 1, Accept, IPv4, All, None, None, None, None),
            ],
        )],
        PlanConfig::default(),
    );
    let there = tcp4(40000, 443);
    let back = FrameSpec::new("10.0.0.2", "10.0.0.1", L4::Tcp(443, 40000)).build();
    let a = plan.decide(&there, Egress).mirror().unwrap().source_port();
    let b = plan.decide(&back, Ingress).mirror().unwrap().source_port();
    assert_eq!(a, b);
}

// ---------------------------------------------------------------- counters

#[test]
fn counters() {
    let http = [rule(
        Ingress,
        1,
        Accept,
        IPv4,
        Tcp,
        None,
        None,
        None,
        Some((80, 80)),
    )];
    let tcp = [rule(Ingress, 1, Accept, IPv4, Tcp, None, None, None, None)];
    let plan = MirrorPlan::new(
        vec![session(1, 1, 1, 64, &http), session(2, 2, 2, 8500, &tcp)],
        PlanConfig::default(),
    );
    let mut c = Counters::for_plan(&plan);
    let big = FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Tcp(5, 22))
        .payload(1460)
        .build();
    let frames: Vec<Vec<u8>> = vec![
        tcp4(1, 80),
        tcp4(1, 80),
        tcp4(1, 22),
        big,
        FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Udp(1, 2)).build(),
        vec![0u8; 60],
        tcp4(1, 80)[..30].to_vec(),
    ];
    for f in &frames {
        plan.decide_counted(f, Ingress, &mut c);
    }
    assert_eq!(c.frames_seen, 7);
    assert_eq!(c.mirrored(), &[2, 2]);
    // two 54-byte frames (shorter than 64); the 1514-byte frame clamped to 1464
    assert_eq!(c.mirrored_bytes(), &[108, 54 + 1464]);
    assert_eq!(c.clamped, 1);
    assert_eq!(c.not_mirrored, 1);
    assert_eq!(c.non_ip, 1);
    assert_eq!(c.unparseable, 1);
}

#[test]
fn auto_strategy_switches_to_bitsets() {
    let auto = |sessions: Vec<SessionSpec<u128>>| MirrorPlan::new(sessions, PlanConfig::default());
    // distinct address pairs: each rule fails a packet on its first comparison
    let distinct = |n: u32| -> Vec<RuleSpec> {
        (1..=n)
            .map(|i| {
                let src = format!("172.16.{}.{}/32", i / 256, i % 256);
                rule(Ingress, i, Accept, IPv4, Tcp, Some(&src), None, None, None)
            })
            .collect()
    };
    // one address pair, many ports: a matching packet tests every rule in full
    let shared = |n: u32| -> Vec<RuleSpec> {
        (1..=n)
            .map(|i| {
                rule(
                    Ingress,
                    i,
                    Accept,
                    IPv4,
                    Tcp,
                    Some("10.0.0.0/8"),
                    None,
                    None,
                    Some((i as u16, i as u16)),
                )
            })
            .collect()
    };
    assert!(!auto(vec![session(1, 1, 1, 96, &distinct(10))]).uses_bitsets(Ingress));
    assert!(!auto(vec![session(1, 1, 1, 96, &distinct(30))]).uses_bitsets(Ingress));
    assert!(auto(vec![session(1, 1, 1, 96, &distinct(100))]).uses_bitsets(Ingress));
    assert!(!auto(vec![session(1, 1, 1, 96, &shared(8))]).uses_bitsets(Ingress));
    assert!(auto(vec![session(1, 1, 1, 96, &shared(16))]).uses_bitsets(Ingress));
    // chosen per direction: the egress side has no rules
    assert!(!auto(vec![session(1, 1, 1, 96, &shared(16))]).uses_bitsets(Egress));
    // the benchmark (a): 3 sessions x 10 distinct rules stays on the scan
    let ten = distinct(10);
    let three = vec![
        session(1, 1, 1, 96, &ten),
        session(2, 2, 2, 96, &ten),
        session(3, 3, 3, 96, &ten),
    ];
    assert!(!auto(three).uses_bitsets(Ingress));
}

#[test]
fn builds_from_model_resources() {
    use tmirror_model::*;
    let project = ProjectId::new();
    let filter_id = FilterId::new();
    let now = Timestamp(0);
    let mk = |direction, priority: i64, action, protocol, dport: Option<(u16, u16)>| FilterRule {
        id: RuleId::new(),
        project_id: project.clone(),
        filter_id,
        direction,
        priority: RulePriority::new(priority).unwrap(),
        action,
        matches: RuleMatch {
            ethertype: Ethertype::IPv4,
            protocol,
            source_cidr: None,
            destination_cidr: Some("10.0.0.0/24".parse().unwrap()),
            source_port_range: None,
            destination_port_range: dport.map(|(a, b)| PortRange::new(a, b).unwrap()),
        },
        protocol_spelling: String::new(),
        description: String::new(),
        created_at: now,
        updated_at: now,
    };
    let fwr = FilterWithRules {
        filter: Filter {
            id: filter_id,
            project_id: project.clone(),
            name: "f".into(),
            description: String::new(),
            created_at: now,
            updated_at: now,
        },
        ingress_rules: vec![
            mk(Ingress, 2, Accept, Tcp, None),
            mk(Ingress, 1, Reject, Tcp, Some((22, 22))),
        ],
        egress_rules: vec![mk(Egress, 1, Accept, Udp, None)],
    };
    let s = Session {
        id: SessionId::new(),
        project_id: project,
        name: "s".into(),
        description: String::new(),
        filter_id,
        sources: SessionSources::default(),
        target: SessionTarget::Port(PortId::new()),
        vni: Vni::new(77).unwrap(),
        packet_length: PacketLength::new(128).unwrap(),
        priority: SessionPriority::new(3).unwrap(),
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    let spec = SessionSpec::from_session(&s, &fwr, "collector");
    assert_eq!(spec.filter.len(Ingress), 2);
    assert_eq!(spec.filter.len(Egress), 1);
    let plan = MirrorPlan::new(vec![spec], PlanConfig::default());
    let m = plan.decide(&tcp4(1, 80), Ingress).mirror().unwrap();
    assert_eq!(
        (m.session.target, m.session.vni.get(), m.session.id),
        ("collector", 77, s.id)
    );
    assert!(
        plan.decide(&tcp4(1, 22), Ingress).mirror().is_none(),
        "priority 1 reject first"
    );
    let udp = FrameSpec::new("10.0.0.9", "10.0.0.1", L4::Udp(1, 2)).build();
    assert!(plan.decide(&udp, Egress).mirror().is_some());
    assert!(plan.decide(&udp, Ingress).mirror().is_none());
}
