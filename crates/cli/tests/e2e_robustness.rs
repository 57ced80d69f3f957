//! End to end, as root, in network namespaces: the agent never mirrors its own output (even
//! with the underlay interface itself as a source), a collector that does not exist does not
//! disturb the source, VLAN-tagged frames are mirrored with their tag, and a VM's interface
//! deleted and created again (a VM's restart) is mirrored again, in both capture back-ends.

mod support;

use std::time::Duration;

use support::{eventually, root_or_skip, Cloud, Spec};
use tmirror_netlab::{addr, interface_index, recreate_vm_link};

fn port(cloud: &Cloud, ip: &str, interface: Option<(&str, &str)>) -> String {
    let mut args = vec![
        "port",
        "create",
        "--network-id",
        "11111111-1111-1111-1111-111111111111",
        "--ip",
        ip,
    ];
    if let Some((name, side)) = interface {
        args.extend([
            "--host-id",
            "hv",
            "--interface-name",
            name,
            "--capture-side",
            side,
        ]);
    }
    cloud.create(&args)
}

#[test]
fn own_copies_are_never_mirrored_and_a_missing_collector_does_not_disturb_the_source() {
    let Some(()) = root_or_skip("own_copies_are_never_mirrored") else {
        return;
    };
    let mut cloud = Cloud::new("tme2e-rob", 2);
    cloud.start_server();
    cloud.start_collector();
    cloud.start_echo("vm2");
    cloud.start_agent();
    let filter = cloud.accept_all_ipv4("all");
    let collector = cloud.collector_port();
    let nowhere = port(&cloud, "192.168.77.99", None);
    let vm1 = cloud.vm_port(1);
    let vm2 = cloud.vm_port(2);
    // The hypervisor's underlay interface, as it sees itself: every copy leaves by it.
    let underlay = port(&cloud, addr::HYPERVISOR_UNDERLAY, Some(("ul0", "guest")));
    cloud.session("vm1", &filter, &vm1, &collector, Spec::new(1, 10, 200));
    cloud.session(
        "underlay",
        &filter,
        &underlay,
        &collector,
        Spec::new(2, 11, 200),
    );
    cloud.session(
        "vm2-to-nowhere",
        &filter,
        &vm2,
        &nowhere,
        Spec::new(3, 12, 200),
    );
    cloud.wait_capturing(&["tap1", "tap2", "ul0"]);
    assert_eq!(cloud.agent_get("/healthz").trim(), "ok");

    let r = cloud.traffic("vm1", &["udp", &addr::vm4(2), "7001", "20", "200", "own"]);
    assert_eq!(r["echoed"], 20, "the source's traffic is undisturbed: {r}");
    assert!(
        eventually(Duration::from_secs(3), || cloud.copies_with("own").len()
            >= 40),
        "vm1's request and echo copies arrive"
    );
    std::thread::sleep(Duration::from_millis(500));
    let copies = cloud.copies();
    assert_eq!(
        cloud
            .copies_with("own")
            .iter()
            .filter(|c| c.vni == 10)
            .count(),
        40
    );
    // Copies of copies would be VXLAN datagrams from the underlay address under VNI 11.
    let loops: Vec<_> = copies
        .iter()
        .filter(|c| c.vni == 11 && c.frame.len() > 37 && c.frame[23] == 17)
        .filter(|c| u16::from_be_bytes([c.frame[36], c.frame[37]]) == 4789)
        .collect();
    assert!(
        loops.is_empty(),
        "the agent mirrored {} of its own copies",
        loops.len()
    );
    assert!(
        copies.iter().all(|c| c.vni != 12),
        "nothing can arrive from the missing target's session"
    );
    let metrics = cloud.metrics();
    let captured_tap2 = cloud
        .agent_metric(
            "tmirror_interface_captured_packets_total",
            &[("interface", "tap2")],
        )
        .unwrap_or(0.0);
    assert!(
        captured_tap2 >= 40.0,
        "tap2 was captured although its target does not exist:\n{metrics}"
    );
}

#[test]
fn vlan_tagged_frames_are_mirrored_with_their_tag() {
    let Some(()) = root_or_skip("vlan_tagged_frames_are_mirrored_with_their_tag") else {
        return;
    };
    let mut cloud = Cloud::new("tme2e-vlan", 1);
    cloud.start_server();
    cloud.start_collector();
    cloud.start_agent();
    let filter = cloud.accept_all_ipv4("all");
    let collector = cloud.collector_port();
    let vm1 = cloud.vm_port(1);
    cloud.session("vlan", &filter, &vm1, &collector, Spec::new(1, 100, 200));
    cloud.wait_capturing(&["tap1"]);

    // Hand-built tagged frames (VLAN 100) from vm1: the kernel takes the tag off before packet
    // sockets see them, the agent must put it back.
    cloud.traffic("vm1", &["vlan", "eth0", "100", "5", "tagged"]);
    assert!(
        eventually(Duration::from_secs(3), || cloud.copies_with("tagged").len()
            >= 5),
        "tagged datagrams are mirrored"
    );
    for c in cloud.copies_with("tagged") {
        assert_eq!(&c.frame[12..14], &[0x81, 0x00], "802.1Q tag in the copy");
        assert_eq!(
            u16::from_be_bytes([c.frame[14], c.frame[15]]) & 0x0fff,
            100,
            "VLAN id"
        );
        assert_eq!(&c.frame[16..18], &[0x08, 0x00], "IPv4 after the tag");
    }
}

#[test]
fn a_vm_interface_created_again_is_mirrored_again_each_packet_once() {
    let Some(()) = root_or_skip("a_vm_interface_created_again_is_mirrored_again") else {
        return;
    };
    for (capture, prefix) in [("af-packet", "tme2e-reafp"), ("ebpf", "tme2e-rebpf")] {
        let mut cloud = Cloud::new(prefix, 2);
        cloud.start_server();
        cloud.start_collector();
        cloud.start_echo("vm2");
        let filter = cloud.accept_all_ipv4("all");
        let vm1 = cloud.vm_port(1);
        let collector = cloud.collector_port();
        cloud.session("vm1", &filter, &vm1, &collector, Spec::new(1, 20, 200));
        cloud.start_agent_with(&["--capture", capture]);
        cloud.wait_capturing(&["tap1"]);
        cloud.assert_capture_backend(capture);
        mirrored_once(&cloud, capture, "first");

        // The VM restarts: its tap is deleted and created under the next free index...
        let old = interface_index(&cloud.lab, "hv", "tap1").expect("tap1's index");
        recreate_vm_link(&cloud.lab, 1, None).expect("tap1 created again");
        let new = interface_index(&cloud.lab, "hv", "tap1").expect("tap1's index");
        assert_ne!(new, old, "a new index");
        mirrored_once(&cloud, capture, "new-index");

        // ...and again under the index it had: no trace of the old device may stand in for it.
        recreate_vm_link(&cloud.lab, 1, Some(new)).expect("tap1 created again");
        assert_eq!(
            interface_index(&cloud.lab, "hv", "tap1").expect("tap1's index"),
            new
        );
        mirrored_once(&cloud, capture, "same-index");
    }
}

/// Waits until what vm1 sends is mirrored (a datagram every 200 ms or so, up to 10 s: the agent
/// notices a re-created interface within its look at the interfaces, about a second), then
/// requires each datagram of a burst and its echo mirrored exactly once.
fn mirrored_once(cloud: &Cloud, capture: &str, label: &str) {
    let vm2 = addr::vm4(2);
    let mut probe = 0;
    let back = eventually(Duration::from_secs(10), || {
        probe += 1;
        let marker = format!("{label}-probe-{probe}");
        cloud.traffic("vm1", &["udp", &vm2, "7001", "1", "64", &marker]);
        std::thread::sleep(Duration::from_millis(200));
        !cloud.copies_with(&marker).is_empty()
    });
    assert!(
        back,
        "{capture}, {label}: vm1's traffic was not mirrored within 10 s; metrics:\n{}",
        cloud.metrics()
    );
    let marker = format!("{label}-burst");
    let r = cloud.traffic("vm1", &["udp", &vm2, "7001", "10", "64", &marker]);
    assert_eq!(
        r["echoed"], 10,
        "{capture}, {label}: the VMs reach each other: {r}"
    );
    eventually(Duration::from_secs(3), || {
        cloud.copies_with(&marker).len() >= 20
    });
    // Time for a copy too many (an interface captured twice) to arrive as well.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        cloud.copies_with(&marker).len(),
        20,
        "{capture}, {label}: each datagram and each echo mirrored once"
    );
}
