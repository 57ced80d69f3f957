//! Differential property test: the engine against a deliberately simple reference written
//! here from the semantics in DESIGN.md and docs/packet-engine.md. The reference never parses
//! bytes: it works from the description the frame was built from, compares addresses with
//! `ipnet`'s own `contains`, walks sessions and rules by sorting copies of them, and builds the
//! output bytes by pushing fields into a `Vec` one by one.

mod common;
#[path = "common/strategies.rs"]
mod strategies;

use std::net::IpAddr;

use common::{csum, FrameSpec, L4};
use ipnet::IpNet;
use proptest::prelude::*;
use strategies::*;
use tmirror_model::{Direction, Ethertype, Protocol, RuleAction, RuleMatch};
use tmirror_packet::Evaluation;
use tmirror_packet::*;

// ------------------------------------------------------------------ reference

/// What the reference knows about a frame: taken from its description, not its bytes.
struct RefPacket {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ports: Option<(u16, u16)>,
    /// Any fragment of a fragmented datagram: hashed without ports.
    fragment: bool,
}

fn ref_packet(f: &FrameSpec) -> RefPacket {
    let non_first = f.frag_offset != 0;
    let ports = match f.l4 {
        L4::Tcp(s, d) | L4::Udp(s, d) if !non_first => Some((s, d)),
        _ => None,
    };
    RefPacket {
        src: f.src,
        dst: f.dst,
        proto: f.l4.proto(),
        ports,
        fragment: non_first || f.more_fragments,
    }
}

fn ref_rule_matches(m: &RuleMatch, p: &RefPacket) -> bool {
    let family_ok = match m.ethertype {
        Ethertype::IPv4 => p.src.is_ipv4(),
        Ethertype::IPv6 => p.src.is_ipv6(),
    };
    let proto_ok = match m.protocol {
        Protocol::All => true,
        Protocol::Tcp => p.proto == 6,
        Protocol::Udp => p.proto == 17,
        Protocol::Icmp => p.proto == 1,
        Protocol::Icmpv6 => p.proto == 58,
    };
    let cidr_ok = |c: &Option<IpNet>, a: &IpAddr| match c {
        None => true,
        Some(net) => {
            let same_family = matches!(
                (net, m.ethertype),
                (IpNet::V4(_), Ethertype::IPv4) | (IpNet::V6(_), Ethertype::IPv6)
            );
            same_family && net.contains(a)
        }
    };
    let uses_ports = matches!(m.protocol, Protocol::Tcp | Protocol::Udp)
        && (m.source_port_range.is_some() || m.destination_port_range.is_some());
    let ports_ok = if !uses_ports {
        true
    } else {
        match p.ports {
            None => false,
            Some((s, d)) => {
                m.source_port_range.is_none_or(|r| r.contains(s))
                    && m.destination_port_range.is_none_or(|r| r.contains(d))
            }
        }
    };
    family_ok
        && proto_ok
        && cidr_ok(&m.source_cidr, &p.src)
        && cidr_ok(&m.destination_cidr, &p.dst)
        && ports_ok
}

/// Index (in priority order) of the session that mirrors.
fn ref_decide(sessions: &[RefSession], p: &RefPacket, dir: Direction) -> Option<RefSession> {
    let mut ordered = sessions.to_vec();
    ordered.sort_by_key(|s| s.priority); // stable: equal priorities keep input order
    for s in ordered {
        let mut rules: Vec<&RuleSpec> = s.rules.iter().filter(|r| r.direction == dir).collect();
        rules.sort_by_key(|r| r.priority);
        let first = rules.into_iter().find(|r| ref_rule_matches(&r.matches, p));
        if let Some(r) = first {
            if r.action == RuleAction::Accept {
                return Some(s);
            }
        }
    }
    None
}

/// The documented hash, re-implemented from docs/packet-engine.md.
fn ref_hash(p: &RefPacket) -> u32 {
    fn num(a: &IpAddr) -> u128 {
        match a {
            IpAddr::V4(v) => u128::from(u32::from(*v)),
            IpAddr::V6(v) => u128::from(*v),
        }
    }
    let (sp, dp) = match p.ports {
        Some(ports) if !p.fragment => ports,
        _ => (0, 0),
    };
    let mut ends = [(num(&p.src), sp), (num(&p.dst), dp)];
    ends.sort();
    let version: u64 = if p.src.is_ipv4() { 4 } else { 6 };
    let words = [
        (ends[0].0 >> 64) as u64,
        ends[0].0 as u64,
        (ends[1].0 >> 64) as u64,
        ends[1].0 as u64,
        (u64::from(ends[0].1) << 16) | u64::from(ends[1].1),
    ];
    let mut h: u64 = 0xC2B2_AE3D_27D4_EB4F ^ (version << 8) ^ u64::from(p.proto);
    for w in words {
        h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 29;
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^= h >> 33;
    h as u32
}

fn ref_payload(vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut v = vec![0x08, 0, 0, 0];
    v.push((vni >> 16) as u8);
    v.push((vni >> 8) as u8);
    v.push(vni as u8);
    v.push(0);
    v.extend_from_slice(inner);
    v
}

const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const SRC_IP: [u8; 4] = [192, 0, 2, 1];
const DST_IP: [u8; 4] = [198, 51, 100, 7];

fn ref_frame(sport: u16, vni: u32, inner: &[u8], udp_checksum: bool) -> Vec<u8> {
    let payload = ref_payload(vni, inner);
    let udp_len = 8 + payload.len();
    let ip_len = 20 + udp_len;
    let mut ip = vec![0x45, 0];
    ip.extend((ip_len as u16).to_be_bytes());
    ip.extend([0, 0, 0x40, 0, 64, 17, 0, 0]);
    ip.extend(SRC_IP);
    ip.extend(DST_IP);
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut udp = Vec::new();
    udp.extend(sport.to_be_bytes());
    udp.extend(4789u16.to_be_bytes());
    udp.extend((udp_len as u16).to_be_bytes());
    udp.extend([0, 0]);
    udp.extend(&payload);
    if udp_checksum {
        let mut pseudo = Vec::new();
        pseudo.extend(SRC_IP);
        pseudo.extend(DST_IP);
        pseudo.extend([0, 17]);
        pseudo.extend((udp_len as u16).to_be_bytes());
        pseudo.extend(&udp);
        let mut c = csum(&pseudo);
        if c == 0 {
            c = 0xffff;
        }
        udp[6..8].copy_from_slice(&c.to_be_bytes());
    }
    let mut f = Vec::new();
    f.extend(DST_MAC);
    f.extend(SRC_MAC);
    f.extend([0x08, 0x00]);
    f.extend(ip);
    f.extend(udp);
    f
}

// ------------------------------------------------------------------ generators

fn check(
    sessions: &[RefSession],
    spec: &FrameSpec,
    dir: Direction,
    mtu: u16,
    udp_checksum: bool,
) -> Result<(), TestCaseError> {
    let bytes = spec.build();
    let triple_tagged = spec.vlans.len() > 2;
    // RFC 8200 §4.1: Hop-by-Hop Options only directly after the IPv6 header
    let misplaced_hop_by_hop = spec.ipv6_ext.iter().skip(1).any(|e| e.0 == 0);
    let rp = ref_packet(spec);
    let expected = if triple_tagged || misplaced_hop_by_hop {
        None
    } else {
        ref_decide(sessions, &rp, dir)
    };
    let mut outer = OuterIpv4::new(SRC_MAC, DST_MAC, SRC_IP.into(), DST_IP.into());
    outer.udp_checksum = udp_checksum;
    let outer = outer.template();
    let mut pbuf = vec![0u8; 10_000];
    let mut fbuf = vec![0u8; 10_000];
    // each session's filter on its own: the first matching rule's action
    if let Ok(packet) = parse(&bytes) {
        for s in sessions {
            let mut rules: Vec<&RuleSpec> = s.rules.iter().filter(|r| r.direction == dir).collect();
            rules.sort_by_key(|r| r.priority);
            let want = rules
                .into_iter()
                .find(|r| ref_rule_matches(&r.matches, &rp))
                .map(|r| r.action);
            prop_assert_eq!(CompiledFilter::new(&s.rules).evaluate(&packet, dir), want);
        }
    }
    for strategy in [Evaluation::Linear, Evaluation::Bitset, Evaluation::Auto] {
        let plan = MirrorPlan::new(
            sessions.iter().map(to_spec),
            PlanConfig {
                underlay_mtu: mtu,
                evaluation: strategy,
            },
        );
        let verdict = plan.decide(&bytes, dir);
        if triple_tagged {
            prop_assert_eq!(verdict, Verdict::NotIp);
            continue;
        }
        if misplaced_hop_by_hop {
            prop_assert_eq!(verdict, Verdict::Malformed);
            continue;
        }
        match (&expected, verdict) {
            (None, Verdict::NotMirrored) => {}
            (Some(s), Verdict::Mirror(m)) => {
                prop_assert_eq!(m.session.target, s.id, "{:?}", strategy);
                let copy = bytes
                    .len()
                    .min(usize::from(s.packet_length))
                    .min(usize::from(mtu) - 36);
                prop_assert_eq!(m.copy_len, copy);
                let hash = ref_hash(&rp);
                prop_assert_eq!(m.flow_hash, hash);
                let sport = 49152 + (hash % 16384) as u16;
                prop_assert_eq!(m.source_port(), sport);
                let n = m.encapsulate_payload(&bytes, &mut pbuf).unwrap();
                prop_assert_eq!(&pbuf[..n], &ref_payload(s.vni, &bytes[..copy])[..]);
                let n = m.encapsulate_frame(&outer, &bytes, &mut fbuf).unwrap();
                let want = ref_frame(sport, s.vni, &bytes[..copy], udp_checksum);
                prop_assert_eq!(&fbuf[..n], &want[..]);
                let d = decapsulate_frame(&fbuf[..n], VXLAN_PORT).unwrap();
                prop_assert_eq!(d.vni.get(), s.vni);
                prop_assert_eq!(d.inner, &bytes[..copy]);
            }
            (e, v) => prop_assert!(
                false,
                "{:?}: expected {:?}, got {:?}",
                strategy,
                e.as_ref().map(|s| s.id),
                v
            ),
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ the property

proptest! {
    // failures print their minimal input; no regression file (integration tests have no src/ to
    // put it next to)
    #![proptest_config(ProptestConfig { cases: 5000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn engine_equals_reference(
        sessions in sessions(),
        spec in frame(),
        dir in direction(),
        mtu in prop::sample::select(&[100u16, 1500, 9000][..]),
        udp_checksum in any::<bool>(),
    ) {
        check(&sessions, &spec, dir, mtu, udp_checksum)?;
    }

    /// A capture cut at the plan's snap length decides and copies exactly as the whole frame:
    /// what the agent relies on to keep only `snap_len` bytes of each frame in its ring.
    #[test]
    fn captured_prefix_decides_as_the_whole_frame(
        sessions in sessions(),
        spec in frame(),
        dir in direction(),
        mtu in prop::sample::select(&[100u16, 1500, 9000][..]),
        extra in 0usize..64,
    ) {
        let bytes = spec.build();
        let plan = MirrorPlan::new(
            sessions.iter().map(to_spec),
            PlanConfig { underlay_mtu: mtu, ..PlanConfig::default() },
        );
        let cut = (plan.snap_len() + extra).min(bytes.len());
        let prefix = &bytes[..cut];
        prop_assert_eq!(parse_captured(prefix, bytes.len()), parse(&bytes));
        let whole = plan.decide(&bytes, dir);
        let captured = plan.decide_captured(prefix, bytes.len(), dir);
        match (whole, captured) {
            (Verdict::Mirror(a), Verdict::Mirror(b)) => {
                prop_assert_eq!(a.index, b.index);
                prop_assert_eq!(a.copy_len, b.copy_len);
                prop_assert_eq!(a.inner(&bytes), b.inner(prefix));
                prop_assert_eq!(a.flow_hash, b.flow_hash);
            }
            (a, b) => prop_assert_eq!(std::mem::discriminant(&a), std::mem::discriminant(&b)),
        }
    }

    /// Every cut of a frame parses without panicking, whatever wire length is claimed.
    #[test]
    fn any_cut_never_panics(spec in frame(), cut in any::<prop::sample::Index>(), claim in 0usize..3000) {
        let bytes = spec.build();
        let prefix = &bytes[..cut.index(bytes.len() + 1)];
        let _ = parse_captured(prefix, claim);
    }

    /// Mirror-image flows get the same outer source port.
    #[test]
    fn hash_is_symmetric(spec in frame()) {
        let mut back = spec.clone();
        std::mem::swap(&mut back.src, &mut back.dst);
        back.l4 = match spec.l4 {
            L4::Tcp(a, b) => L4::Tcp(b, a),
            L4::Udp(a, b) => L4::Udp(b, a),
            ref other => other.clone(),
        };
        if let (Ok(a), Ok(b)) = (parse(&spec.build()), parse(&back.build())) {
            prop_assert_eq!(flow_hash(&a), flow_hash(&b));
        }
    }

    /// Arbitrary bytes: the parser and the plan never panic, and a parse that succeeds agrees
    /// with etherparse on addresses and transport ports where etherparse understands the frame.
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), dir in direction()) {
        let _ = parse(&bytes);
        let plan = MirrorPlan::new(Vec::<SessionSpec<u128>>::new(), PlanConfig::default());
        let _ = plan.decide(&bytes, dir);
        let _ = decapsulate_frame(&bytes, VXLAN_PORT);
        let _ = decapsulate_payload(&bytes);
    }

    /// Well-formed frames: our parser accepts every one with at most two VLAN tags, and agrees
    /// with etherparse on addresses, protocol and ports.
    #[test]
    fn frames_agree_with_etherparse(spec in frame()) {
        let bytes = spec.build();
        let ours = parse(&bytes);
        if spec.vlans.len() > 2 {
            prop_assert_eq!(ours, Err(ParseError::NotIp));
            return Ok(());
        }
        if spec.ipv6_ext.iter().skip(1).any(|e| e.0 == 0) {
            prop_assert_eq!(ours, Err(ParseError::Malformed));
            return Ok(());
        }
        let p = ours.unwrap();
        prop_assert_eq!(p.fragment, spec.frag_offset != 0 || spec.more_fragments);
        if spec.frag_offset != 0 {
            // etherparse 0.16 slices a transport header even out of an IPv6 non-first fragment
            // (and fails when the fragment is shorter than that header): compare a non-first
            // fragment with the frame's own description instead.
            let r = ref_packet(&spec);
            prop_assert_eq!((p.src_ip(), p.dst_ip(), p.protocol, p.ports), (r.src, r.dst, r.proto, r.ports));
            prop_assert!(p.non_first_fragment);
            return Ok(());
        }
        let theirs = etherparse::SlicedPacket::from_ethernet(&bytes).unwrap();
        let (src, dst, proto) = match theirs.net.unwrap() {
            etherparse::NetSlice::Ipv4(v4) => (
                IpAddr::V4(v4.header().source_addr()),
                IpAddr::V4(v4.header().destination_addr()),
                v4.payload().ip_number.0,
            ),
            etherparse::NetSlice::Ipv6(v6) => (
                IpAddr::V6(v6.header().source_addr()),
                IpAddr::V6(v6.header().destination_addr()),
                v6.payload().ip_number.0,
            ),
        };
        prop_assert_eq!((p.src_ip(), p.dst_ip(), p.protocol), (src, dst, proto));
        match theirs.transport {
            Some(etherparse::TransportSlice::Tcp(t)) => {
                prop_assert_eq!(p.ports, Some((t.source_port(), t.destination_port())));
            }
            Some(etherparse::TransportSlice::Udp(u)) => {
                prop_assert_eq!(p.ports, Some((u.source_port(), u.destination_port())));
            }
            _ => {}
        }
    }

    /// Well-formed frames mutated at one byte: never a panic; when both parsers accept the
    /// result, the addresses agree with etherparse's reading.
    #[test]
    fn mutated_frames_agree_with_etherparse(spec in frame(), at in any::<prop::sample::Index>(), val in any::<u8>()) {
        let mut bytes = spec.build();
        let i = at.index(bytes.len());
        bytes[i] = val;
        let ours = parse(&bytes);
        if let (Ok(p), Ok(theirs)) = (ours, etherparse::SlicedPacket::from_ethernet(&bytes)) {
            let their_ports = match &theirs.transport {
                Some(etherparse::TransportSlice::Tcp(t)) => Some((6, t.source_port(), t.destination_port())),
                Some(etherparse::TransportSlice::Udp(u)) => Some((17, u.source_port(), u.destination_port())),
                _ => None,
            };
            if let (Some((proto, s, d)), Some(ports)) = (their_ports, p.ports) {
                prop_assert_eq!(p.protocol, proto);
                prop_assert_eq!(ports, (s, d));
            }
            match theirs.net {
                Some(etherparse::NetSlice::Ipv4(v4)) => {
                    prop_assert_eq!(p.src_ip(), IpAddr::V4(v4.header().source_addr()));
                    prop_assert_eq!(p.dst_ip(), IpAddr::V4(v4.header().destination_addr()));
                }
                Some(etherparse::NetSlice::Ipv6(v6)) => {
                    prop_assert_eq!(p.src_ip(), IpAddr::V6(v6.header().source_addr()));
                    prop_assert_eq!(p.dst_ip(), IpAddr::V6(v6.header().destination_addr()));
                }
                _ => {}
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// Many rules per session (more than 64 per direction and version): the bit sets span
    /// several words.
    #[test]
    fn engine_equals_reference_many_rules(
        sessions in sessions_with(1..4, 80..200),
        spec in frame(),
        dir in direction(),
    ) {
        check(&sessions, &spec, dir, 1500, false)?;
    }
}
