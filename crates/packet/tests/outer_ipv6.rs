//! The IPv6 outer header: layout, the mandatory UDP checksum against etherparse's (an
//! independent reference computation), the flow label, the MTU cut and the size limits.

mod common;

use std::net::Ipv6Addr;

use common::{csum, FrameSpec, L4};
use etherparse::{Ipv6Header, UdpHeader};
use proptest::prelude::*;
use tmirror_model::Vni;
use tmirror_packet::*;

const SRC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const DST: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn outer(src: Ipv6Addr, dst: Ipv6Addr) -> OuterIpv6 {
    OuterIpv6::new(SRC, DST, src, dst)
}

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Checks one IPv6 outer frame against an independent reading of it, and returns the inner
/// frame it carries.
fn check_frame(f: &[u8], o: &OuterIpv6, src_port: u16, label: u32, vni: Vni) -> Vec<u8> {
    assert_eq!(&f[0..6], &o.dst_mac);
    assert_eq!(&f[6..12], &o.src_mac);
    assert_eq!(&f[12..14], &[0x86, 0xdd]);
    let (ip, rest) = Ipv6Header::from_slice(&f[14..]).unwrap();
    assert_eq!(ip.traffic_class, o.traffic_class);
    assert_eq!(ip.flow_label.value(), label);
    assert_eq!(usize::from(ip.payload_length), f.len() - 54);
    assert_eq!(ip.next_header, etherparse::IpNumber::UDP);
    assert_eq!(ip.hop_limit, o.hop_limit);
    assert_eq!(ip.source, o.src_ip.octets());
    assert_eq!(ip.destination, o.dst_ip.octets());
    let (udp, payload) = UdpHeader::from_slice(rest).unwrap();
    assert_eq!(udp.source_port, src_port);
    assert_eq!(udp.destination_port, o.dst_port);
    assert_eq!(usize::from(udp.length), f.len() - 54);
    let reference = udp.calc_checksum_ipv6(&ip, payload).unwrap();
    assert_ne!(udp.checksum, 0, "a UDP checksum is mandatory over IPv6");
    assert_eq!(
        udp.checksum, reference,
        "UDP checksum as etherparse computes it"
    );
    // and the one's-complement sum over pseudo header + datagram verifies to zero
    let mut pseudo = Vec::new();
    pseudo.extend(o.src_ip.octets());
    pseudo.extend(o.dst_ip.octets());
    pseudo.extend((udp.length as u32).to_be_bytes());
    pseudo.extend([0, 0, 0, 17]);
    pseudo.extend(&f[54..]);
    assert_eq!(csum(&pseudo), 0, "UDP checksum verifies");
    assert_eq!(&payload[..4], &[0x08, 0, 0, 0]);
    let v = vni.get().to_be_bytes();
    assert_eq!(&payload[4..8], &[v[1], v[2], v[3], 0]);
    let d = decapsulate_frame(f, o.dst_port).unwrap();
    assert_eq!(d.vni, vni);
    assert_eq!(d.inner, &payload[8..]);
    payload[8..].to_vec()
}

#[test]
fn layout_checksum_and_decapsulation() {
    let inner = FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Udp(1, 2))
        .payload(33)
        .build();
    let mut o = outer(addr("fd00::1"), addr("fd00:77::2"));
    o.traffic_class = 0xb8;
    o.hop_limit = 9;
    let t = o.template();
    assert!(t.is_ipv6());
    assert_eq!((t.overhead(), t.mtu_overhead()), (70, 56));
    let mut out = vec![0u8; 2000];
    let vni = Vni::new(0xABCDEF).unwrap();
    let n = t.encapsulate(54321, vni, &inner, &mut out).unwrap();
    assert_eq!(n, inner.len() + OUTER_IPV6_OVERHEAD);
    assert_eq!(check_frame(&out[..n], &o, 54321, 0, vni), inner);
    let hash = 0xDEAD_BEEF;
    let n = t.encapsulate_flow(hash, vni, &inner, &mut out).unwrap();
    check_frame(&out[..n], &o, source_port(hash), flow_label(hash), vni);
    assert_eq!(flow_label(hash), 0xDEADB);
}

#[test]
fn a_computed_zero_checksum_is_sent_as_all_ones() {
    // Search an inner payload whose checksum comes out as zero: the UDP checksum field is then
    // 0xffff (zero would mean "no checksum", which IPv6 forbids).
    let o = outer(addr("fd00::1"), addr("fd00::2"));
    let t = o.template();
    let vni = Vni::new(1).unwrap();
    let mut out = [0u8; 200];
    let mut inner = [0u8; 20];
    let n = t.encapsulate(50000, vni, &inner, &mut out).unwrap();
    let c = u16::from_be_bytes([out[60], out[61]]);
    // Adding the checksum's value to the last inner word makes the sum all ones, the
    // checksum zero.
    inner[18..20].copy_from_slice(&c.to_be_bytes());
    let n2 = t.encapsulate(50000, vni, &inner, &mut out).unwrap();
    assert_eq!(n, n2);
    assert_eq!(u16::from_be_bytes([out[60], out[61]]), 0xffff);
    check_frame(&out[..n2], &o, 50000, 0, vni);
}

#[test]
fn mtu_cut_and_limits() {
    let o = outer(addr("fd00::1"), addr("fd00::2"));
    let inner = vec![0x5a; 1464];
    let mut out = vec![0u8; 3000];
    let vni = Vni::new(3).unwrap();
    // 1500-byte path: 1500 - 40 - 8 - 8 = 1444 inner bytes at most.
    let t = o.template().with_mtu(1500);
    let n = t.encapsulate(50000, vni, &inner, &mut out).unwrap();
    assert_eq!(n, 14 + 1500);
    assert_eq!(check_frame(&out[..n], &o, 50000, 0, vni), inner[..1444]);
    // shorter copies are left alone
    let n = t.encapsulate(50000, vni, &inner[..100], &mut out).unwrap();
    assert_eq!(n, 170);
    // the IPv4 template's cut is 20 bytes later
    let t4 = OuterIpv4::new(SRC, DST, [192, 0, 2, 1].into(), [192, 0, 2, 2].into())
        .template()
        .with_mtu(1500);
    assert_eq!(t4.encapsulate(1, vni, &inner, &mut out).unwrap(), 14 + 1500);
    let t = o.template();
    assert_eq!(
        t.encapsulate(1, vni, &inner[..100], &mut out[..169]),
        Err(EncapError::BufferTooSmall { needed: 170 })
    );
    // The IPv6 payload length (UDP datagram) may be 65535: 65519 inner bytes, one more fails.
    let huge = vec![0u8; 65520];
    let mut big = vec![0u8; 70000];
    let n = t.encapsulate(1, vni, &huge[..65519], &mut big).unwrap();
    assert_eq!(n, 65519 + 70);
    check_frame(&big[..n], &o, 1, 0, vni);
    assert_eq!(
        t.encapsulate(1, vni, &huge, &mut big),
        Err(EncapError::TooLarge)
    );
}

#[test]
fn the_engine_labels_the_outer_header_with_its_flow() {
    let f = FrameSpec::new("2001:db8::1", "2001:db8::2", L4::Tcp(40000, 443))
        .payload(10)
        .build();
    let rule = common::rule(
        tmirror_model::Direction::Ingress,
        1,
        tmirror_model::RuleAction::Accept,
        tmirror_model::Ethertype::IPv6,
        tmirror_model::Protocol::All,
        None,
        None,
        None,
        None,
    );
    let plan = MirrorPlan::new(
        vec![common::session(1, 1, 77, 1500, &[rule])],
        PlanConfig::default(),
    );
    let m = plan
        .decide(&f, tmirror_model::Direction::Ingress)
        .mirror()
        .unwrap();
    let o = outer(addr("fd00::1"), addr("fd00::2"));
    let mut out = [0u8; 300];
    let n = m.encapsulate_frame(&o.template(), &f, &mut out).unwrap();
    let inner = check_frame(
        &out[..n],
        &o,
        m.source_port(),
        flow_label(m.flow_hash),
        Vni::new(77).unwrap(),
    );
    assert_eq!(inner, f);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any addresses, ports, classes, hashes, VNIs and inner lengths (odd ones too): the frame
    /// reads back as written and its checksum is etherparse's.
    #[test]
    fn any_copy_verifies(
        src in any::<[u8; 16]>(),
        dst in any::<[u8; 16]>(),
        port in 1u16..,
        class in any::<u8>(),
        hop in 1u8..,
        hash in any::<u32>(),
        vni in 0i64..(1 << 24),
        inner in proptest::collection::vec(any::<u8>(), 1..1600),
    ) {
        let mut o = outer(src.into(), dst.into());
        o.dst_port = port;
        o.traffic_class = class;
        o.hop_limit = hop;
        let vni = Vni::new(vni).unwrap();
        let mut out = vec![0u8; 1700];
        let n = o.template().encapsulate_flow(hash, vni, &inner, &mut out).unwrap();
        prop_assert_eq!(n, inner.len() + 70);
        let back = check_frame(&out[..n], &o, source_port(hash), flow_label(hash), vni);
        prop_assert_eq!(back, inner);
    }
}
