//! End to end, as root, in network namespaces: a load balancer as the mirror target
//! (`docs/load-balancers.md`). Two hypervisors (`hv`, `hv2`), each with an agent and one VM,
//! routed to each other over an underlay bridge; three collectors (`tmirror capture
//! --health-listen`) behind one load balancer made with `tmirror lb` (the Huawei ELB API),
//! checked by the control plane every second. Both VMs' ports are mirrored, each by its own
//! session (VNI 101 from hv, 102 from hv2), to the load balancer. 60 UDP conversations between
//! the VMs, by fixed source ports, so that each phase repeats the same flows:
//!
//! 1. all members up: each flow's four copies (both directions, from both hosts) reach exactly
//!    one collector, and each collector gets at least 10% of the flows;
//! 2. one collector stopped: once the checks mark it OFFLINE and both agents applied that,
//!    plus one second, its flows arrive at the others, the others' flows do not move, nothing
//!    is lost;
//! 3. it is back, and another member is removed through the API: the same;
//! 4. every collector stopped: the agents fail open (copies still sent, spread over all
//!    members) and say so in their metrics.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use support::{eventually, root_or_skip, Cloud, Copy, BIN};
use tmirror_netlab::Lab;

const FLOWS: usize = 60;
/// The flows' source ports: BASE, BASE+1, ... in every phase.
const BASE_PORT: &str = "21000";
const HV: &str = "192.168.77.1";
const HV2: &str = "192.168.77.3";
const SERVER: &str = "192.168.77.1:9696";
const COLLECTORS: [&str; 3] = ["192.168.77.11", "192.168.77.12", "192.168.77.13"];
const HEALTH_PORT: &str = "7070";
const VNI_HV: u32 = 101;
const VNI_HV2: u32 = 102;
const METRICS: &str = "127.0.0.1:9100";

/// Of one flow: per collector index, its copies there as (VNI, inner IPv4 source).
type Reached = BTreeMap<usize, Vec<(u32, [u8; 4])>>;

#[test]
fn load_balanced_sessions_spread_flows_and_move_only_a_failed_members() {
    load_balanced("ebpf");
}

#[test]
fn load_balanced_sessions_spread_flows_and_move_only_a_failed_members_af_packet_capture() {
    load_balanced("af-packet");
}

/// hv — vm1 (10.0.1.0/24), hv2 — vm2 (10.0.2.0/24); hv, hv2 and the collectors' namespace
/// `col` on the bridge of namespace `ul` (192.168.77.0/24).
fn topology(prefix: &str) -> Lab {
    let mut lab = Lab::new(prefix).expect("lab");
    for ns in ["ul", "hv", "hv2", "vm1", "vm2", "col"] {
        lab.add_namespace(ns).unwrap();
    }
    lab.ip("ul", &["link", "add", "br0", "type", "bridge"])
        .unwrap();
    lab.ip("ul", &["link", "set", "br0", "up"]).unwrap();
    for (port, ns, iface, addr) in [
        ("p1", "hv", "ul0", HV),
        ("p2", "hv2", "ul0", HV2),
        ("p3", "col", "eth0", COLLECTORS[0]),
    ] {
        lab.add_veth("ul", port, ns, iface).unwrap();
        lab.ip("ul", &["link", "set", port, "master", "br0"])
            .unwrap();
        lab.add_address(ns, iface, &format!("{addr}/24")).unwrap();
    }
    for addr in &COLLECTORS[1..] {
        lab.add_address("col", "eth0", &format!("{addr}/24"))
            .unwrap();
    }
    for (n, hv, other, other_vm) in [(1, "hv", HV2, "10.0.2.0/24"), (2, "hv2", HV, "10.0.1.0/24")] {
        let (vm, tap) = (format!("vm{n}"), format!("tap{n}"));
        lab.add_veth(hv, &tap, &vm, "eth0").unwrap();
        lab.add_address(hv, &tap, &format!("10.0.{n}.1/24"))
            .unwrap();
        lab.add_address(&vm, "eth0", &format!("10.0.{n}.2/24"))
            .unwrap();
        lab.ip(
            &vm,
            &["route", "add", "default", "via", &format!("10.0.{n}.1")],
        )
        .unwrap();
        lab.ip(hv, &["route", "add", other_vm, "via", other])
            .unwrap();
        lab.exec(hv, "sysctl", &["-qw", "net.ipv4.ip_forward=1"])
            .unwrap();
    }
    lab
}

struct Lb<'a> {
    cloud: &'a mut Cloud,
    pool: String,
    /// Member id per collector index.
    members: Vec<String>,
    sessions: [String; 2],
}

impl Lb<'_> {
    fn start_collector(&mut self, i: usize) {
        let out = self.cloud.path(&format!("col{i}"));
        std::fs::create_dir_all(&out).unwrap();
        let log = self.cloud.dir.path().join(format!("collector{i}.log"));
        let (listen, health) = (
            format!("{}:4789", COLLECTORS[i]),
            format!("{}:{HEALTH_PORT}", COLLECTORS[i]),
        );
        self.cloud
            .lab
            .spawn(
                &format!("collector{i}"),
                "col",
                BIN,
                &[
                    "capture",
                    "--listen",
                    &listen,
                    "--out",
                    &out,
                    "--health-listen",
                    &health,
                ],
                &log,
            )
            .expect("start tmirror capture");
    }

    fn stop_collector(&mut self, i: usize) {
        self.cloud
            .lab
            .kill(&format!("collector{i}"), "TERM")
            .expect("stop collector");
    }

    /// The members' operating status by address.
    fn statuses(&self) -> BTreeMap<String, String> {
        let list = self.cloud.cli(&["lb", "member-list", "--pool", &self.pool]);
        list["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["address"].as_str().unwrap().to_owned(),
                    m["operating_status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Waits until the control plane shows exactly `want` (address → status).
    fn wait_statuses(&self, want: &[(&str, &str)]) {
        let want: BTreeMap<String, String> = want
            .iter()
            .map(|(a, s)| (a.to_string(), s.to_string()))
            .collect();
        let mut seen = BTreeMap::new();
        assert!(
            eventually(Duration::from_secs(20), || {
                seen = self.statuses();
                seen == want
            }),
            "members {seen:?}, want {want:?}"
        );
    }

    /// The agent of `ns`'s `/metrics`, or "".
    fn metrics(&self, ns: &str) -> String {
        let script = support::traffic_script().display().to_string();
        self.cloud
            .lab
            .command(
                ns,
                "python3",
                &[&script, "get", &format!("http://{METRICS}/metrics")],
            )
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Waits until both agents export `line` for their session (`{session}` is replaced).
    fn wait_agents(&self, line: &str) {
        for (ns, session) in [("hv", &self.sessions[0]), ("hv2", &self.sessions[1])] {
            let want = line.replace("{session}", session);
            let mut m = String::new();
            assert!(
                eventually(Duration::from_secs(20), || {
                    m = self.metrics(ns);
                    m.lines().any(|l| l == want)
                }),
                "the agent of {ns} does not export {want:?}:\n{m}"
            );
        }
    }

    /// Sends the 60 flows from vm1 to vm2 (each echoed), with payloads `marker-NNNN`.
    fn flows(&self, marker: &str) {
        let r = self.cloud.traffic(
            "vm1",
            &[
                "flows",
                "10.0.2.2",
                "7001",
                BASE_PORT,
                &FLOWS.to_string(),
                marker,
            ],
        );
        assert_eq!(r["echoed"], FLOWS, "vm1 and vm2 reach each other: {r}");
    }

    /// Per flow, the collectors its copies of phase `marker` reached, with how many copies
    /// each and from which (VNI, IPv4 source) — waiting until every flow has its four copies.
    fn spread(&self, marker: &str) -> Vec<Reached> {
        let read = || {
            let mut per_flow = vec![Reached::new(); FLOWS];
            for i in 0..COLLECTORS.len() {
                for (c, _) in self.cloud.copies_in(&format!("col{i}")) {
                    if let Some(flow) = flow_of(&c, marker) {
                        let src = c.frame[26..30].try_into().unwrap();
                        per_flow[flow].entry(i).or_default().push((c.vni, src));
                    }
                }
            }
            per_flow
        };
        let copies = |f: &Reached| -> usize { f.values().map(Vec::len).sum() };
        let mut got = Vec::new();
        let complete = eventually(Duration::from_secs(15), || {
            got = read();
            got.iter().all(|f| copies(f) >= 4)
        });
        assert!(
            complete,
            "phase {marker}: flows without their 4 copies: {:?}",
            {
                got.iter()
                    .enumerate()
                    .filter(|(_, f)| copies(f) < 4)
                    .collect::<Vec<_>>()
            }
        );
        // A copy sent twice, or to a second collector, would be in by the collectors' next
        // flush (at most 200 ms after it arrived).
        std::thread::sleep(Duration::from_millis(400));
        read()
    }
}

/// The flow index of a copy of phase `marker`, from its payload `marker-NNNN-`.
fn flow_of(c: &Copy, marker: &str) -> Option<usize> {
    let m = format!("{marker}-");
    let at = c.frame.windows(m.len()).position(|w| w == m.as_bytes())?;
    let digits = c.frame.get(at + m.len()..at + m.len() + 4)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Checks that every flow's copies — both directions, from both hosts — reached exactly one
/// collector; the collector of each flow.
fn exactly_one_collector(phase: &str, spread: &[Reached]) -> Vec<usize> {
    let vm1 = [10, 0, 1, 2];
    let vm2 = [10, 0, 2, 2];
    let mut want = vec![(VNI_HV, vm1), (VNI_HV, vm2), (VNI_HV2, vm1), (VNI_HV2, vm2)];
    want.sort();
    spread
        .iter()
        .enumerate()
        .map(|(flow, per)| {
            assert_eq!(
                per.len(),
                1,
                "phase {phase}: flow {flow} reached collectors {:?}",
                per.keys().collect::<Vec<_>>()
            );
            let (&collector, copies) = per.iter().next().unwrap();
            let mut copies = copies.clone();
            copies.sort();
            assert_eq!(
                copies, want,
                "phase {phase}: flow {flow}: one copy per direction and host"
            );
            collector
        })
        .collect()
}

/// `tmirror_…{session_id="S",member="ADDR:4789"} N` of an agent: N.
fn member_copies(metrics: &str, session: &str, addr: &str) -> u64 {
    let want = format!(
        "tmirror_session_member_mirrored_packets_total{{session_id=\"{session}\",member=\"{addr}:4789\"}} "
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&want))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn load_balanced(capture: &str) {
    let Some(()) = root_or_skip(&format!("e2e_lb ({capture})")) else {
        return;
    };
    let tag = if capture == "ebpf" { "e" } else { "a" };
    let mut cloud = Cloud::with_lab(topology(&format!("tmlb{tag}")));
    cloud.start_server_on(SERVER);
    cloud.start_echo("vm2");

    // The collectors' ports (a member must be an address of the project's own ports).
    for addr in COLLECTORS {
        cloud.create(&[
            "port",
            "create",
            "--network-id",
            "11111111-1111-1111-1111-111111111111",
            "--ip",
            addr,
        ]);
    }
    let lb: Value = cloud.cli(&["lb", "create", "--name", "collectors"]);
    let (lb_id, pool) = (
        lb["id"].as_str().unwrap().to_owned(),
        lb["pool_id"].as_str().unwrap().to_owned(),
    );
    let members: Vec<String> = COLLECTORS
        .iter()
        .map(|addr| {
            cloud.cli(&["lb", "member-add", "--pool", &pool, "--address", addr])["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    // Checked every second; one failure marks a member OFFLINE, one success ONLINE.
    cloud.cli(&[
        "lb",
        "monitor-create",
        "--pool",
        &pool,
        "--type",
        "TCP",
        "--delay",
        "1",
        "--timeout",
        "1",
        "--max-retries",
        "1",
        "--max-retries-down",
        "1",
        "--monitor-port",
        HEALTH_PORT,
    ]);

    // The VMs' ports, on two hosts, each mirrored by a session aimed at the load balancer.
    let filter = cloud.accept_all_ipv4("all");
    let mut sessions = Vec::new();
    for (n, host, vni) in [(1u8, "hv", VNI_HV), (2, "hv2", VNI_HV2)] {
        let port = cloud.create(&[
            "port",
            "create",
            "--network-id",
            "11111111-1111-1111-1111-111111111111",
            "--ip",
            &format!("10.0.{n}.2"),
            "--host-id",
            host,
            "--interface-name",
            &format!("tap{n}"),
        ]);
        sessions.push(cloud.create(&[
            "session",
            "create",
            "--name",
            &format!("lb-{host}"),
            "--filter",
            &filter,
            "--source",
            &port,
            "--target",
            &lb_id,
            "--target-type",
            "elb",
            // Priorities are unique per project.
            "--priority",
            &n.to_string(),
            "--vni",
            &vni.to_string(),
            "--packet-length",
            "128",
            "--enabled=true",
        ]));
    }
    for host in ["hv", "hv2"] {
        let credential = cloud.cli(&["admin", "host", "create", host]);
        let file = cloud.dir.path().join(format!("{host}-credential.json"));
        support::write_private(&file, credential.to_string().as_bytes());
        let (file, ca) = (file.display().to_string(), cloud.ca_file());
        let state = cloud.path(&format!("{host}-state"));
        let log = cloud.dir.path().join(format!("agent-{host}.log"));
        cloud
            .lab
            .spawn(
                &format!("agent-{host}"),
                host,
                BIN,
                &[
                    "agent",
                    "--credential-file",
                    &file,
                    "--ca-file",
                    &ca,
                    "--state-dir",
                    &state,
                    "--metrics-listen",
                    METRICS,
                    "--capture",
                    capture,
                ],
                &log,
            )
            .expect("start tmirror agent");
    }
    let mut t = Lb {
        cloud: &mut cloud,
        pool,
        members,
        sessions: [sessions[0].clone(), sessions[1].clone()],
    };
    for i in 0..COLLECTORS.len() {
        t.start_collector(i);
    }
    t.wait_statuses(&COLLECTORS.map(|a| (a, "ONLINE")));
    t.wait_agents("tmirror_session_healthy_members{session_id=\"{session}\"} 3");
    t.wait_agents("tmirror_agent_sessions_failing_open 0");
    for (ns, iface) in [("hv", "tap1"), ("hv2", "tap2")] {
        let want = format!("tmirror_interface_capturing{{interface=\"{iface}\"}} 1");
        assert!(
            eventually(Duration::from_secs(20), || t
                .metrics(ns)
                .lines()
                .any(|l| l == want)),
            "the agent of {ns} captures {iface}"
        );
    }

    // 1. Spread, exactly once, fair.
    t.flows("p1");
    let before = exactly_one_collector("p1", &t.spread("p1"));
    let shares: Vec<usize> = (0..COLLECTORS.len())
        .map(|i| before.iter().filter(|&&c| c == i).count())
        .collect();
    eprintln!("flows per collector ({capture}): {shares:?}");
    for (i, &n) in shares.iter().enumerate() {
        assert!(
            n >= FLOWS / 10,
            "collector {i} got {n} of {FLOWS} flows: {before:?}"
        );
    }

    // 2. Collector 0 stops: after detection (+1 s) its flows go to the others, no other moves.
    t.stop_collector(0);
    t.wait_statuses(&[
        (COLLECTORS[0], "OFFLINE"),
        (COLLECTORS[1], "ONLINE"),
        (COLLECTORS[2], "ONLINE"),
    ]);
    t.wait_agents("tmirror_session_healthy_members{session_id=\"{session}\"} 2");
    std::thread::sleep(Duration::from_secs(1));
    t.flows("p2");
    let after = exactly_one_collector("p2", &t.spread("p2"));
    for (flow, (&b, &a)) in before.iter().zip(&after).enumerate() {
        if b == 0 {
            assert_ne!(a, 0, "flow {flow} still went to the stopped collector");
        } else {
            assert_eq!(a, b, "flow {flow} of a healthy collector moved");
        }
    }

    // 3. Collector 0 back, collector 1 removed through the API: only its flows move.
    t.start_collector(0);
    t.wait_statuses(&COLLECTORS.map(|a| (a, "ONLINE")));
    t.wait_agents("tmirror_session_healthy_members{session_id=\"{session}\"} 3");
    let removed = t.members[1].clone();
    t.cloud
        .cli(&["lb", "member-remove", "--pool", &t.pool, &removed]);
    t.wait_agents("tmirror_session_healthy_members{session_id=\"{session}\"} 2");
    std::thread::sleep(Duration::from_secs(1));
    t.flows("p3");
    let after = exactly_one_collector("p3", &t.spread("p3"));
    for (flow, (&b, &a)) in before.iter().zip(&after).enumerate() {
        if b == 1 {
            assert_ne!(a, 1, "flow {flow} still went to the removed member");
        } else {
            assert_eq!(a, b, "flow {flow} of a remaining member moved");
        }
    }

    // 4. Every collector stopped: both agents fail open and say so; copies still leave,
    // spread over the members (the control plane still lists 0 and 2).
    t.stop_collector(0);
    t.stop_collector(2);
    t.wait_statuses(&[(COLLECTORS[0], "OFFLINE"), (COLLECTORS[2], "OFFLINE")]);
    t.wait_agents("tmirror_session_failing_open{session_id=\"{session}\"} 1");
    t.wait_agents("tmirror_agent_sessions_failing_open 1");
    t.wait_agents("tmirror_session_healthy_members{session_id=\"{session}\"} 0");
    let sent = |t: &Lb<'_>| -> Vec<u64> {
        [("hv", 0), ("hv2", 1)]
            .iter()
            .flat_map(|&(ns, s)| {
                let m = t.metrics(ns);
                [COLLECTORS[0], COLLECTORS[2]]
                    .map(|a| member_copies(&m, &t.sessions[s], a))
                    .to_vec()
            })
            .collect()
    };
    let quiet = sent(&t);
    t.flows("p4");
    let mut now = Vec::new();
    assert!(
        eventually(Duration::from_secs(5), || {
            now = sent(&t);
            let grown: u64 = now.iter().zip(&quiet).map(|(n, q)| n - q).sum();
            grown >= 4 * FLOWS as u64
        }),
        "failing open, the copies still leave for the members: {quiet:?} → {now:?}"
    );
    // Over both members, as the hash spreads them with all members up.
    let expected: BTreeSet<usize> = before.iter().copied().filter(|&c| c != 1).collect();
    for (i, (n, q)) in now.iter().zip(&quiet).enumerate() {
        let collector = if i % 2 == 0 { 0 } else { 2 };
        if expected.contains(&collector) {
            assert!(
                n > q,
                "member {collector} takes copies failing open: {now:?}"
            );
        }
    }
    let log = std::fs::read_to_string(t.cloud.dir.path().join("agent-hv.log")).unwrap();
    assert!(log.contains("failing open"), "the agent logs it:\n{log}");
}
