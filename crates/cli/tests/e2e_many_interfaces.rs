//! End to end, as root, in network namespaces: one hypervisor with 50 mirrored VM interfaces
//! (issue 17). Real `tmirror serve`, `agent` and `capture`; five sessions of ten sources
//! each, with their own VNIs and two filters: one selects only UDP to port 7000 (so every VM
//! of those sessions also sends traffic that must *not* arrive), the other all IPv4 the VMs
//! send. Every VM sends five datagrams to each of ports 7000 and 7001, each with a marker
//! naming the VM, the port and the datagram; the hypervisor echoes them back (replies carry
//! the same marker and are ingress, which no session selects). The collector must hold every
//! selected datagram of every interface exactly once, under its session's VNI, and nothing
//! else with a marker. In both capture back-ends, and in the eBPF one with room for only 20
//! interfaces in the kernel (`--kernel-max-interfaces 20`): the other 30 go to AF_PACKET.

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::{eventually, root_or_skip, traffic_script, Cloud};
use tmirror_netlab::addr;

const VMS: u8 = 50;
/// Sources per session: the server's default quota.
const PER_SESSION: u8 = 10;
const DATAGRAMS: usize = 5;
/// UDP payload bytes; the copies are cut at 200, so every marker survives the cut.
const SIZE: &str = "64";

#[test]
fn fifty_interfaces_each_selected_packet_arrives_once_ebpf_capture() {
    many("ebpf", None);
}

#[test]
fn fifty_interfaces_each_selected_packet_arrives_once_af_packet_capture() {
    many("af-packet", None);
}

#[test]
fn fifty_interfaces_twenty_in_the_kernel_thirty_with_af_packet_each_packet_once() {
    many("ebpf", Some(20));
}

/// The session (0-based) VM `n` is a source of.
fn session_of(n: u8) -> u8 {
    (n - 1) / PER_SESSION
}

/// Even sessions use the filter of UDP to port 7000 only, odd ones the all-IPv4 filter.
fn selects(session: u8, port: u16) -> bool {
    port == 7000 || session % 2 == 1
}

fn vni(session: u8) -> u32 {
    3001 + u32::from(session)
}

/// The marker of datagram `i` that VM `n` sends to `port`, as `traffic.py` writes it.
fn marker(n: u8, port: u16, i: usize) -> String {
    format!("v{n:02}p{port}-{i:04}-")
}

/// `room`: the agent's `--kernel-max-interfaces`.
fn many(capture: &str, room: Option<u32>) {
    let Some(()) = root_or_skip(&format!("fifty_interfaces ({capture}, room {room:?})")) else {
        return;
    };
    let tag = match (capture, room) {
        ("ebpf", None) => "e",
        ("ebpf", Some(_)) => "r",
        _ => "a",
    };
    let started = Instant::now();
    let mut cloud = Cloud::new(&format!("tme2e-many{tag}"), VMS);
    eprintln!("lab of {VMS} VMs built in {:?}", started.elapsed());
    cloud.start_server();
    cloud.start_collector();
    // The hypervisor answers every datagram (UDP echo on 7000-7002): each VM learns that its
    // traffic crossed its interface, and the replies are ingress copies no session may make.
    cloud.start_echo("hv");

    let target = cloud.collector_port();
    let only_7000 = cloud.create(&["filter", "create", "--name", "only7000"]);
    cloud.rule(
        &only_7000,
        "egress udp IPv4 accept 1",
        &["--destination-port-range", "7000-7000"],
    );
    let all = cloud.create(&["filter", "create", "--name", "all"]);
    cloud.rule(&all, "egress all IPv4 accept 1", &[]);
    let ports: Vec<String> = (1..=VMS).map(|n| cloud.vm_port(n)).collect();
    for session in 0..VMS / PER_SESSION {
        let filter = if session % 2 == 0 { &only_7000 } else { &all };
        let mut args = vec![
            "session".to_string(),
            "create".into(),
            "--name".into(),
            format!("s{session}"),
            "--filter".into(),
            filter.clone(),
            "--target".into(),
            target.clone(),
            // Unique per project; no source is in two sessions, so the order is moot.
            "--priority".into(),
            (10 + u32::from(session)).to_string(),
            "--vni".into(),
            vni(session).to_string(),
            "--packet-length".into(),
            "200".into(),
            // The server's default is a disabled session.
            "--enabled=true".into(),
        ];
        let first = usize::from(session * PER_SESSION);
        for port in &ports[first..first + usize::from(PER_SESSION)] {
            args.extend(["--source".to_string(), port.clone()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cloud.create(&args);
    }

    let room_arg = room.map(|r| r.to_string());
    let mut agent_args = vec!["--capture", capture];
    if let Some(r) = &room_arg {
        agent_args.extend(["--kernel-max-interfaces", r.as_str()]);
    }
    cloud.start_agent_with(&agent_args);
    let mut taps: Vec<String> = (1..=VMS).map(|n| format!("tap{n}")).collect();
    taps.sort();
    let taps: Vec<&str> = taps.iter().map(String::as_str).collect();
    let waited = Instant::now();
    cloud.wait_capturing_for(&taps, Duration::from_secs(60));
    eprintln!(
        "agent capturing on {VMS} interfaces after {:?}",
        waited.elapsed()
    );
    cloud.assert_capture_backend(capture);
    if room.is_some() {
        // A second apply that finds the overflowing interfaces where the first put them: a
        // rule after the accept-all, which no frame reaches, changes their plans but not
        // what they select.
        let applies = || agent_log(&cloud).matches("applied desired state").count();
        // The first apply is logged once it has returned, just after the interfaces capture.
        assert!(
            eventually(Duration::from_secs(30), || applies() > 0),
            "the agent applies its first state"
        );
        let before = applies();
        cloud.rule(&all, "egress tcp IPv4 reject 2", &[]);
        let applied = eventually(Duration::from_secs(30), || applies() > before);
        assert!(applied, "the agent applies the changed filter");
    }

    // Every VM's traffic, ten VMs at a time (two senders each) so that the 2-core machine
    // is not flooded with interpreters; each sender is bounded (1 s per lost echo).
    let sent = Instant::now();
    for chunk in (1..=VMS).collect::<Vec<_>>().chunks(10) {
        let senders: Vec<(u8, u16, Child)> = chunk
            .iter()
            .flat_map(|&n| [7000u16, 7001].map(|port| (n, port)))
            .map(|(n, port)| (n, port, send(&cloud, n, port)))
            .collect();
        for (n, port, child) in senders {
            let out = child.wait_with_output().expect("traffic.py");
            let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            assert_eq!(
                r["echoed"],
                DATAGRAMS,
                "vm{n} must reach the hypervisor on port {port}: {r} {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    eprintln!("traffic of {VMS} VMs sent in {:?}", sent.elapsed());

    // What must arrive: (VNI, marker) once each.
    let mut expected: BTreeMap<(u32, String), usize> = BTreeMap::new();
    for n in 1..=VMS {
        let session = session_of(n);
        for port in [7000, 7001] {
            if selects(session, port) {
                for i in 0..DATAGRAMS {
                    expected.insert((vni(session), marker(n, port, i)), 1);
                }
            }
        }
    }
    let total: usize = expected.values().sum();
    assert_eq!(total, 50 * 5 + 20 * 5, "the test's own arithmetic");

    let mut got = BTreeMap::new();
    eventually(Duration::from_secs(20), || {
        got = marked_copies(&cloud);
        got.values().sum::<usize>() >= total
    });
    let missing: Vec<_> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && twice.is_empty() && extra.is_empty(),
        "{total} copies expected, {} received\nmissing: {missing:?}\nmore than once: {twice:?}\n\
         not selected or under the wrong VNI: {extra:?}",
        got.values().sum::<usize>()
    );
    assert_eq!(got, expected, "every selected datagram exactly once");

    if let Some(room) = room {
        // The interfaces beyond the kernel's room were said to go to AF_PACKET, each of them
        // once (not again at every later apply), in a log a file keeps as plain text.
        let log = agent_log(&cloud);
        assert!(
            !log.contains('\x1b'),
            "the agent's log, written to a file, carries no terminal colour codes"
        );
        let mut overflow: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("beyond the kernel program's limits"))
            .filter(|l| l.contains("--kernel-max-interfaces"))
            .filter_map(|l| l.split("interface=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .collect();
        overflow.sort();
        let said = overflow.len();
        overflow.dedup();
        assert_eq!(
            said,
            overflow.len(),
            "each overflow is said once: {overflow:?}"
        );
        // The kernel took the first interfaces in name order, whatever the hash's order.
        assert_eq!(
            overflow,
            taps[room as usize..],
            "interfaces sent to AF_PACKET for want of room"
        );
    }
}

fn agent_log(cloud: &Cloud) -> String {
    std::fs::read_to_string(cloud.dir.path().join("agent.log")).unwrap_or_default()
}

/// Starts `traffic.py udp` in VM `n`: `DATAGRAMS` datagrams to the hypervisor's `port`.
fn send(cloud: &Cloud, n: u8, port: u16) -> Child {
    let script = traffic_script().display().to_string();
    let gateway = format!("10.0.{n}.1");
    let marker = format!("v{n:02}p{port}");
    cloud
        .lab
        .command(
            &format!("vm{n}"),
            "python3",
            &[
                &script,
                "udp",
                &gateway,
                &port.to_string(),
                &DATAGRAMS.to_string(),
                SIZE,
                &marker,
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start traffic.py")
}

/// The collector's copies that carry a marker of this test, counted by (VNI, marker). A
/// copy's frame is checked to come from the VM the marker names: an echo reply mirrored by
/// mistake carries the same marker but comes from the hypervisor, and is reported apart.
fn marked_copies(cloud: &Cloud) -> BTreeMap<(u32, String), usize> {
    let mut got = BTreeMap::new();
    for c in cloud.copies() {
        // "vNNpPPPP-IIII-": 14 bytes, anywhere after the headers.
        let Some(m) = c
            .frame
            .windows(14)
            .filter_map(|w| std::str::from_utf8(w).ok())
            .find(|w| is_marker(w))
        else {
            continue;
        };
        let n: u8 = m[1..3].parse().expect("two digits");
        // The inner IPv4 source (Ethernet 14 + offset 12): the VM for an egress copy.
        let source = c
            .frame
            .get(26..30)
            .map(|a| format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]));
        let key = if source.as_deref() == Some(addr::vm4(n).as_str()) {
            m.to_string()
        } else {
            format!("{m} (from {source:?}, not vm{n})")
        };
        *got.entry((c.vni, key)).or_insert(0) += 1;
    }
    got
}

fn is_marker(m: &str) -> bool {
    let b = m.as_bytes();
    b.len() == 14
        && b[0] == b'v'
        && b[1..3].iter().all(u8::is_ascii_digit)
        && b[3] == b'p'
        && b[4..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'-'
        && b[9..13].iter().all(u8::is_ascii_digit)
        && b[13] == b'-'
}

#[test]
fn markers_are_recognised() {
    assert!(is_marker(&marker(7, 7000, 3)));
    assert!(is_marker(&marker(50, 7001, 4)));
    assert!(!is_marker("v7p7000-0003-x"));
    assert_eq!(session_of(1), 0);
    assert_eq!(session_of(10), 0);
    assert_eq!(session_of(11), 1);
    assert_eq!(session_of(50), 4);
    assert!(selects(0, 7000) && !selects(0, 7001) && selects(1, 7001));
}
