//! End to end, as root, in network namespaces: elastic IPs as mirror sources (`docs/eips.md`).
//! An "internet" namespace reaches two VMs through the hypervisor, which is also the gateway:
//! nftables translates the EIPs 198.51.100.7 (VM 1) and 198.51.100.8 (VM 2) on its external
//! interface `ext0`. Two `eip` sessions of the first EIP, one whose filter takes ingress only
//! and one whose filter takes egress UDP only, with their own VNIs and lengths: the collector
//! gets exactly the selected packets of that EIP, once each, as they are on `ext0` (public
//! addresses), truncated; nothing of the other EIP nor of the gateway's own address.

mod support;

use std::time::Duration;

use support::{eventually, root_or_skip, Cloud, Copy};

const EIP: &str = "198.51.100.7";
const OTHER_EIP: &str = "198.51.100.8";
const GATEWAY_EXT: &str = "203.0.113.1";
const INTERNET: &str = "203.0.113.100";
const COUNT: usize = 5;
const INGRESS_VNI: u32 = 101;
const INGRESS_LENGTH: usize = 64;
const EGRESS_VNI: u32 = 102;
const EGRESS_LENGTH: usize = 90;

/// The translation the operator's gateway does (tmirror does not).
const NAT: &str = "table ip eipnat {
  chain pre {
    type nat hook prerouting priority dstnat;
    ip daddr 198.51.100.7 dnat to 10.0.1.2
    ip daddr 198.51.100.8 dnat to 10.0.2.2
  }
  chain post {
    type nat hook postrouting priority srcnat;
    oifname \"ext0\" ip saddr 10.0.1.2 snat to 198.51.100.7
    oifname \"ext0\" ip saddr 10.0.2.2 snat to 198.51.100.8
  }
}
";

fn ipv4(frame: &[u8], at: usize) -> String {
    format!(
        "{}.{}.{}.{}",
        frame[at],
        frame[at + 1],
        frame[at + 2],
        frame[at + 3]
    )
}

/// Source and destination of a copied IPv4 frame.
fn addresses(c: &Copy) -> (String, String) {
    (ipv4(&c.frame, 26), ipv4(&c.frame, 30))
}

/// The length the frame had on the wire (its IPv4 total length, plus Ethernet).
fn wire_len(c: &Copy) -> usize {
    14 + usize::from(u16::from_be_bytes([c.frame[16], c.frame[17]]))
}

fn has(c: &Copy, marker: &str) -> bool {
    let m = marker.as_bytes();
    c.frame.windows(m.len()).any(|w| w == m)
}

/// With the eBPF back-end (the kernel here has what it needs: `ebpf` must start), which does
/// not evaluate address selectors: the EIP's capture still goes through AF_PACKET with its
/// address filter, never the whole of `ext0` in the kernel program.
#[test]
fn eip_sessions_mirror_exactly_the_selected_packets_of_their_eip() {
    eip_sessions("ebpf");
}

#[test]
fn eip_sessions_mirror_exactly_the_selected_packets_of_their_eip_af_packet_capture() {
    eip_sessions("af-packet");
}

fn eip_sessions(capture: &str) {
    let Some(()) = root_or_skip(&format!("e2e_eip ({capture})")) else {
        return;
    };
    let tag = if capture == "ebpf" { "" } else { "a" };
    let mut cloud = Cloud::new(&format!("tmeip{tag}"), 2);
    // The internet, behind the gateway's external interface.
    cloud.lab.add_namespace("inet").unwrap();
    cloud.lab.add_veth("hv", "ext0", "inet", "eth0").unwrap();
    cloud
        .lab
        .add_address("hv", "ext0", &format!("{GATEWAY_EXT}/24"))
        .unwrap();
    cloud
        .lab
        .add_address("inet", "eth0", &format!("{INTERNET}/24"))
        .unwrap();
    cloud
        .lab
        .ip(
            "inet",
            &["route", "add", "198.51.100.0/24", "via", GATEWAY_EXT],
        )
        .unwrap();
    let rules = cloud.dir.path().join("nat.nft");
    std::fs::write(&rules, NAT).unwrap();
    cloud
        .lab
        .exec("hv", "nft", &["-f", &rules.display().to_string()])
        .expect("nftables (scripts/deps.sh installs it)");

    cloud.start_server();
    cloud.start_collector();
    cloud.cli(&[
        "admin",
        "eip-pool",
        "put",
        "5_bgp",
        "--cidr",
        "198.51.100.0/24",
        "--host",
        "hv",
        "--interface",
        "ext0",
    ]);
    let (vm1, vm2) = (cloud.vm_port(1), cloud.vm_port(2));
    let collector = cloud.collector_port();
    let eip = |address: &str, port: &str| {
        let e = cloud.cli(&[
            "eip",
            "create",
            "--pool",
            "5_bgp",
            "--ip-address",
            address,
            "--port",
            port,
        ]);
        assert_eq!(e["public_ip_address"], address, "{e}");
        assert_eq!(e["status"], "ACTIVE", "{e}");
        e["id"].as_str().unwrap().to_owned()
    };
    let mirrored = eip(EIP, &vm1);
    eip(OTHER_EIP, &vm2);
    let ingress_only = cloud.create(&["filter", "create", "--name", "in"]);
    cloud.rule(&ingress_only, "ingress all IPv4 accept 1", &[]);
    let egress_udp = cloud.create(&["filter", "create", "--name", "out"]);
    cloud.rule(&egress_udp, "egress udp IPv4 accept 1", &[]);
    let session = |name: &str, filter: &str, priority: &str, vni: u32, length: usize| {
        let s = cloud.cli(&[
            "session",
            "create",
            "--name",
            name,
            "--type",
            "eip",
            "--filter",
            filter,
            "--source",
            &mirrored,
            "--target",
            &collector,
            "--priority",
            priority,
            "--vni",
            &vni.to_string(),
            "--packet-length",
            &length.to_string(),
            "--enabled",
        ]);
        assert_eq!(s["type"], "eip", "{s}");
    };
    session("in", &ingress_only, "1", INGRESS_VNI, INGRESS_LENGTH);
    session("out", &egress_udp, "2", EGRESS_VNI, EGRESS_LENGTH);

    cloud.start_echo("vm1");
    cloud.start_echo("vm2");
    cloud.start_agent_with(&["--capture", capture]);
    // One capture of the external interface, for the EIP's address only; no VM interface.
    cloud.wait_capturing(&["ext0@198.51.100.7"]);
    cloud.assert_capture_backend(capture);

    // The internet to the mirrored EIP (UDP, echoed back from it), to the other EIP, and to
    // the gateway's own address; the VM behind the EIP pings the internet (leaving from it).
    let udp = cloud.traffic("inet", &["udp", EIP, "7000", "5", "300", "eipA"]);
    assert_eq!(udp["echoed"], COUNT, "through the DNAT and back: {udp}");
    let other = cloud.traffic("inet", &["udp", OTHER_EIP, "7000", "5", "300", "eipB"]);
    assert_eq!(other["echoed"], COUNT, "{other}");
    let gw = cloud.traffic("inet", &["ping", GATEWAY_EXT, "5", "gwown"]);
    assert_eq!(gw["replies"], COUNT, "{gw}");
    let out = cloud.traffic("vm1", &["ping", INTERNET, "5", "vmout"]);
    assert_eq!(out["replies"], COUNT, "through the SNAT and back: {out}");

    // Ingress: the 5 UDP requests and the 5 ping replies sent to the EIP. Egress (UDP only):
    // the 5 echoed datagrams leaving from it; its pings' requests are not UDP.
    let expected = 3 * COUNT;
    let arrived = eventually(Duration::from_secs(10), || cloud.copies().len() >= expected);
    let copies = cloud.copies();
    assert!(arrived, "{} copies of {expected}", copies.len());
    // Late or duplicate copies would show by now.
    std::thread::sleep(Duration::from_millis(500));
    let copies = cloud.copies();
    assert_eq!(copies.len(), expected, "exactly once each");
    for marker in ["eipB", "gwown"] {
        assert!(
            !copies.iter().any(|c| has(c, marker)),
            "{marker}: not the mirrored EIP's traffic"
        );
    }
    let ingress: Vec<&Copy> = copies.iter().filter(|c| c.vni == INGRESS_VNI).collect();
    let egress: Vec<&Copy> = copies.iter().filter(|c| c.vni == EGRESS_VNI).collect();
    assert_eq!(ingress.len(), 2 * COUNT);
    assert_eq!(egress.len(), COUNT);
    // As on the external interface: public addresses, before DNAT and after SNAT.
    for c in &ingress {
        let (src, dst) = addresses(c);
        assert_eq!(dst, EIP, "ingress is what is sent to the EIP");
        assert_eq!(src, INTERNET);
        assert_eq!(c.frame.len(), wire_len(c).min(INGRESS_LENGTH), "truncated");
    }
    assert_eq!(ingress.iter().filter(|c| has(c, "eipA")).count(), COUNT);
    assert_eq!(ingress.iter().filter(|c| has(c, "vmout")).count(), COUNT);
    for c in &egress {
        let (src, dst) = addresses(c);
        assert_eq!(src, EIP, "egress is what leaves from the EIP");
        assert_eq!(dst, INTERNET);
        assert_eq!(c.frame[23], 17, "UDP only");
        assert!(has(c, "eipA"));
        assert_eq!(c.frame.len(), wire_len(c).min(EGRESS_LENGTH), "truncated");
    }
}
