//! End to end, as root, in network namespaces: the underlay between the hypervisor and the
//! collector is IPv6. Real `tmirror serve` (the target port's address is IPv6), real agent,
//! real `tmirror capture` listening on an IPv6 address: the collector receives exactly the
//! selected copies, with their session's VNI, cut to `packet_length` or to the path MTU less
//! the 56 bytes of the IPv6 outer headers; a capture on the collector's link shows outer IPv6
//! headers from the hypervisor's address with a valid UDP checksum and a flow label.
//!
//! And the next hop is the kernel's answer for the copies: a route in another table, chosen
//! by an `ip rule`, sends them by another link than the main table would.

mod support;

use std::net::Ipv6Addr;
use std::time::Duration;

use etherparse::{Ipv6Header, SlicedPacket, TransportSlice, UdpHeader};
use support::{eventually, root_or_skip, Cloud, Copy, Seen, Spec};

const HV6: &str = "fd77::1";
const COL6: &str = "fd77::2";
const COUNT: usize = 5;

fn has(c: &[u8], marker: &str) -> bool {
    let m = marker.as_bytes();
    c.windows(m.len()).any(|w| w == m)
}

/// The outer VXLAN frames in a capture: outgoing or not, to UDP 4789.
fn vxlan(seen: &[Seen]) -> Vec<&Seen> {
    seen.iter()
        .filter(|s| match SlicedPacket::from_ethernet(&s.frame) {
            Ok(p) => {
                matches!(p.transport, Some(TransportSlice::Udp(u)) if u.destination_port() == 4789)
            }
            Err(_) => false,
        })
        .collect()
}

#[test]
fn copies_reach_a_collector_over_an_ipv6_underlay() {
    ipv6_underlay("packet");
}

#[test]
fn copies_reach_a_collector_over_an_ipv6_underlay_raw_send() {
    ipv6_underlay("raw");
}

fn ipv6_underlay(mode: &str) {
    let Some(()) = root_or_skip(&format!("e2e_ipv6 ({mode})")) else {
        return;
    };
    let mut cloud = Cloud::new(&format!("tmv6{}", &mode[..1]), 2);
    cloud
        .lab
        .add_address("hv", "ul0", &format!("{HV6}/64"))
        .unwrap();
    cloud
        .lab
        .add_address("col", "eth0", &format!("{COL6}/64"))
        .unwrap();
    cloud.start_server();
    cloud.start_collector_on("collector", &format!("[{COL6}]:4789"), "pcap");
    let vm1 = cloud.vm_port(1);
    let collector = cloud.create(&[
        "port",
        "create",
        "--network-id",
        "11111111-1111-1111-1111-111111111111",
        "--ip",
        COL6,
    ]);
    // Session 1: vm1's UDP to port 7000, 96 bytes. Session 2: its UDP to port 7001, whole
    // frames, which the 1400-byte path cuts to 1400 - 56.
    let small = cloud.create(&["filter", "create", "--name", "small"]);
    cloud.rule(
        &small,
        "egress udp IPv4 accept 1",
        &["--destination-port-range", "7000-7000"],
    );
    let big = cloud.create(&["filter", "create", "--name", "big"]);
    cloud.rule(
        &big,
        "egress udp IPv4 accept 1",
        &["--destination-port-range", "7001-7001"],
    );
    cloud.session("small", &small, &vm1, &collector, Spec::new(1, 6001, 96));
    cloud.session("big", &big, &vm1, &collector, Spec::new(2, 6002, 1460));
    cloud.start_echo("vm2");
    cloud.sniff_start("col", "col", "eth0");
    // The agent's IPv4 underlay address stays configured (the harness gives it); the IPv6
    // source is the kernel's choice for the target.
    cloud.start_agent_with(&["--send-mode", mode, "--underlay-mtu", "1400"]);
    cloud.wait_capturing(&["tap1"]);

    let vm2 = tmirror_netlab::addr::vm4(2);
    let a = cloud.traffic("vm1", &["udp", &vm2, "7000", "5", "300", "sixA"]);
    assert_eq!(a["echoed"], COUNT, "{a}");
    let b = cloud.traffic("vm1", &["udp", &vm2, "7001", "5", "1400", "sixB"]);
    assert_eq!(b["echoed"], COUNT, "{b}");
    let c = cloud.traffic("vm1", &["udp", &vm2, "7002", "5", "100", "sixC"]);
    assert_eq!(c["echoed"], COUNT, "{c}");
    let p = cloud.traffic("vm1", &["ping", &vm2, "5", "sixP"]);
    assert_eq!(p["replies"], COUNT, "{p}");

    let expected = 2 * COUNT;
    let arrived = eventually(Duration::from_secs(10), || cloud.copies().len() >= expected);
    assert!(
        arrived,
        "{} copies of {expected}; agent metrics:\n{}",
        cloud.copies().len(),
        cloud.metrics()
    );
    std::thread::sleep(Duration::from_millis(500));
    let copies = cloud.copies();
    assert_eq!(
        copies.len(),
        expected,
        "exactly the selected copies, once each"
    );
    let of = |vni: u32| -> Vec<&Copy> { copies.iter().filter(|c| c.vni == vni).collect() };
    let (s1, s2) = (of(6001), of(6002));
    assert_eq!(s1.len(), COUNT);
    assert_eq!(s2.len(), COUNT);
    for c in &s1 {
        assert!(has(&c.frame, "sixA"), "session 1 mirrors port 7000 only");
        assert_eq!(c.frame.len(), 96, "cut to packet_length");
    }
    for c in &s2 {
        assert!(has(&c.frame, "sixB"), "session 2 mirrors port 7001 only");
        // 14 + 20 + 8 + 1400 = 1442 bytes on the wire, cut to 1400 - 56
        assert_eq!(c.frame.len(), 1344, "cut to the IPv6 path's MTU");
    }

    // On the collector's link: IPv6 outer headers from the hypervisor, a UDP checksum that
    // verifies, one flow label per flow (each session's copies here are of one flow).
    let seen = cloud.sniff_stop("col");
    let outer = vxlan(&seen);
    assert_eq!(outer.len(), expected, "the copies on the collector's link");
    let mut labels = Vec::new();
    for s in outer {
        assert_eq!(&s.frame[12..14], &[0x86, 0xdd], "IPv6 outer header");
        let (ip, rest) = Ipv6Header::from_slice(&s.frame[14..]).unwrap();
        assert_eq!(Ipv6Addr::from(ip.source), HV6.parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            Ipv6Addr::from(ip.destination),
            COL6.parse::<Ipv6Addr>().unwrap()
        );
        let (udp, payload) = UdpHeader::from_slice(rest).unwrap();
        let payload = &payload[..usize::from(udp.length) - 8];
        assert_ne!(udp.checksum, 0, "mandatory over IPv6");
        assert_eq!(udp.checksum, udp.calc_checksum_ipv6(&ip, payload).unwrap());
        assert!(udp.source_port >= 49152);
        labels.push((payload[6], ip.flow_label.value(), udp.source_port));
    }
    labels.sort();
    labels.dedup();
    assert_eq!(labels.len(), 2, "one label and port per flow: {labels:?}");
}

/// The collector's address is routed by the main table over `ul0`, and by table 100 over
/// `ul1`; an `ip rule` sends traffic to it through table 100. The copies must take `ul1`,
/// as any packet of the host to that address would (reading the main table alone, the agent
/// used to send them over `ul0`).
#[test]
fn a_route_chosen_by_a_policy_rule_is_honoured() {
    let Some(()) = root_or_skip("e2e_ipv6 (policy routing)") else {
        return;
    };
    const COLLECTOR: &str = "10.99.0.2";
    let mut cloud = Cloud::new("tmv6t", 2);
    let lab = &mut cloud.lab;
    lab.add_veth("hv", "ul1", "col", "eth1").unwrap();
    lab.add_address("hv", "ul1", "192.168.78.1/24").unwrap();
    lab.add_address("col", "eth1", "192.168.78.2/24").unwrap();
    lab.add_address("col", "lo", &format!("{COLLECTOR}/32"))
        .unwrap();
    lab.ip("hv", &["route", "add", COLLECTOR, "via", "192.168.77.2"])
        .unwrap();
    lab.ip(
        "hv",
        &[
            "route",
            "add",
            COLLECTOR,
            "via",
            "192.168.78.2",
            "dev",
            "ul1",
            "table",
            "100",
        ],
    )
    .unwrap();
    lab.ip(
        "hv",
        &[
            "rule", "add", "to", COLLECTOR, "lookup", "100", "pref", "100",
        ],
    )
    .unwrap();
    // The main table's next hop is a known neighbour: an agent reading the main table alone
    // would send the copies as frames by `ul0`.
    let ping = cloud.traffic("hv", &["ping", "192.168.77.2", "1", "neigh"]);
    assert_eq!(
        ping["replies"], 1,
        "the main table's neighbour answers: {ping}"
    );
    cloud.start_server();
    cloud.start_collector_on("collector", &format!("{COLLECTOR}:4789"), "pcap");
    let vm1 = cloud.vm_port(1);
    let collector = cloud.create(&[
        "port",
        "create",
        "--network-id",
        "11111111-1111-1111-1111-111111111111",
        "--ip",
        COLLECTOR,
    ]);
    let filter = cloud.create(&["filter", "create", "--name", "udp"]);
    cloud.rule(&filter, "egress udp IPv4 accept 1", &[]);
    cloud.session("s", &filter, &vm1, &collector, Spec::new(1, 7007, 128));
    cloud.start_echo("vm2");
    cloud.sniff_start("main", "col", "eth0");
    cloud.sniff_start("rule", "col", "eth1");
    cloud.start_agent();
    cloud.wait_capturing(&["tap1"]);

    // Long enough for the copies to be sent by frame, not only by the raw socket's probes:
    // one copy per target and second takes the raw socket.
    let n = 3 * COUNT;
    let vm2 = tmirror_netlab::addr::vm4(2);
    let out = cloud.traffic("vm1", &["udp", &vm2, "7000", &n.to_string(), "100", "rule"]);
    assert_eq!(out["echoed"], n, "{out}");
    let arrived = eventually(Duration::from_secs(10), || cloud.copies().len() >= n);
    assert!(arrived, "{} copies of {n}", cloud.copies().len());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cloud.copies().len(), n, "once each");
    let by_rule = cloud.sniff_stop("rule");
    let by_main = cloud.sniff_stop("main");
    assert_eq!(vxlan(&by_rule).len(), n, "every copy by table 100's link");
    assert!(vxlan(&by_main).is_empty(), "none by the main table's link");
    // (The agent may be slow to answer on a loaded machine: an empty answer is no answer.)
    let mut m = String::new();
    let answered = eventually(Duration::from_secs(10), || {
        m = cloud.metrics();
        !m.is_empty()
    });
    assert!(answered, "the agent's /metrics does not answer");
    assert!(
        m.contains("tmirror_interface_send_drops_total{interface=\"tap1\"} 0"),
        "no copy dropped: {m}"
    );
}
