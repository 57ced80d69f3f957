//! End to end, as root, in network namespaces: a second tenant (B, a project with a member
//! key made through the admin API) tries every way it has to get a copy of tenant A's VM
//! traffic — binding a port to A's host and interface, claiming A's VM interface by name,
//! taking A's collector address, aiming sessions at A's ports — and is refused each time; not
//! one copy reaches B's collector, while A's own session keeps delivering.
//!
//! A is the operator's project (its ports bound by the operator, as they must be). A's
//! collector listens on its own address only, B's on another address of the collector
//! namespace, so each one's copies land in its own directory.

mod support;

use std::process::Output;
use std::time::Duration;

use support::{eventually, root_or_skip, Cloud, Spec};
use tmirror_netlab::addr;

const BURST: usize = 20;
/// A's network (the harness's ports are in it).
const NET_A: &str = "11111111-1111-1111-1111-111111111111";
/// B's own network.
const NET_B: &str = "22222222-2222-2222-2222-222222222222";
/// B's collector, on the collector namespace's underlay link beside A's.
const COLLECTOR_B: &str = "192.168.77.3";

/// Sends `BURST` UDP packets marked `step` from vm1 to vm2's echo server (and back).
fn burst(cloud: &Cloud, step: &str) {
    let r = cloud.traffic(
        "vm1",
        &[
            "udp",
            &addr::vm4(2),
            "7001",
            &BURST.to_string(),
            "100",
            step,
        ],
    );
    assert_eq!(r["echoed"], BURST, "{step}: vm1 and vm2 must talk: {r}");
}

/// Copies in `dir` carrying `marker`.
fn marked(cloud: &Cloud, dir: &str, marker: &str) -> usize {
    let m = marker.as_bytes();
    cloud
        .copies_in(dir)
        .iter()
        .filter(|(c, _)| c.frame.windows(m.len()).any(|w| w == m))
        .count()
}

/// Asserts that the CLI call was refused with HTTP `status` and the Huawei face's `code` (the
/// CLI prints "(HTTP STATUS CODE, request ID)") and answers what it printed.
#[track_caller]
fn refused(out: Output, status: u16, code: &str, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{what}: B's call succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(&format!("(HTTP {status} {code}, ")),
        "{what}: not refused with {status} {code}: {stderr}"
    );
    stderr
}

fn id(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    v["id"].as_str().expect("an id").to_owned()
}

#[test]
fn another_tenant_gets_no_copy_of_a_tenants_traffic_whatever_it_tries() {
    let Some(()) = root_or_skip("another_tenant_gets_no_copy_of_a_tenants_traffic") else {
        return;
    };
    let mut cloud = Cloud::new("tme2e-ten", 2);
    cloud
        .lab
        .add_address("col", "eth0", &format!("{COLLECTOR_B}/24"))
        .expect("B's collector address");
    cloud.start_server();
    cloud.start_collector_on("collector", &format!("{}:4789", addr::COLLECTOR), "pcap");
    cloud.start_collector_on("collector-b", &format!("{COLLECTOR_B}:4789"), "pcap-b");
    cloud.start_echo("vm2");
    cloud.start_agent();

    // Tenant A: vm1 mirrored, both directions, to A's collector.
    let filter_a = cloud.accept_all_ipv4("a-all");
    let collector_a = cloud.collector_port();
    let vm1 = cloud.vm_port(1);
    cloud.vm_port(2);
    cloud.session("a", &filter_a, &vm1, &collector_a, Spec::new(1, 100, 256));
    cloud.wait_capturing(&["tap1"]);
    burst(&cloud, "before-b");
    assert!(
        eventually(Duration::from_secs(5), || marked(
            &cloud, "pcap", "before-b"
        ) >= 2 * BURST),
        "A's session delivers both directions"
    );

    // Tenant B: a project with a member key, made by the operator through the admin API.
    let project = cloud.project("tenant-b");
    let (_, b_file) = cloud.credential(&project, "member", "tenant-b.json");
    let b = |args: &[&str]| cloud.cli_as(&b_file, args);

    // 1. A port bound to A's host and VM interface: binding is the operator's.
    let bound = [
        "port",
        "create",
        "--network-id",
        NET_B,
        "--ip",
        "10.0.9.5",
        "--host-id",
        "hv",
        "--interface-name",
        "tap1",
    ];
    refused(
        b(&bound),
        403,
        "VPC.0010",
        "B binds a port to A's host and interface",
    );
    refused(
        b(&[
            "port",
            "create",
            "--network-id",
            NET_B,
            "--ip",
            "10.0.9.5",
            "--host-id",
            "hv",
        ]),
        403,
        "VPC.0010",
        "B binds a port to A's host",
    );
    // 2. An unbound port claiming A's VM interface by name (any host would capture it).
    for side in ["host", "guest"] {
        refused(
            b(&[
                "port",
                "create",
                "--network-id",
                NET_B,
                "--ip",
                "10.0.9.6",
                "--interface-name",
                "tap1",
                "--capture-side",
                side,
            ]),
            403,
            "VPC.0010",
            "B claims A's VM interface by name",
        );
    }
    // 3. A's addresses: A's collector's and A's VM's, in B's network or in A's.
    refused(
        b(&[
            "port",
            "create",
            "--network-id",
            NET_B,
            "--ip",
            addr::COLLECTOR,
        ]),
        409,
        "VPC.1711",
        "B takes A's collector address",
    );
    refused(
        b(&[
            "port",
            "create",
            "--network-id",
            NET_B,
            "--ip",
            &addr::vm4(1),
        ]),
        409,
        "VPC.1711",
        "B takes A's VM address",
    );
    refused(
        b(&[
            "port",
            "create",
            "--network-id",
            NET_A,
            "--ip",
            "192.168.77.9",
        ]),
        400,
        "VPC.0101",
        "B puts a port in A's network",
    );

    // 4. Sessions aimed at A's ports: they are unknown to B.
    let filter_b = id(
        b(&["filter", "create", "--name", "b-all"]),
        "B's own filter",
    );
    for direction in ["ingress", "egress"] {
        let out = b(&[
            "rule",
            "create",
            "--filter",
            &filter_b,
            "--direction",
            direction,
            "--protocol",
            "all",
            "--ethertype",
            "IPv4",
            "--action",
            "accept",
            "--priority",
            "1",
        ]);
        assert!(out.status.success(), "B's own rule");
    }
    let collector_b = id(
        b(&["port", "create", "--network-id", NET_B, "--ip", COLLECTOR_B]),
        "B's own collector port",
    );
    let source_b = id(
        b(&["port", "create", "--network-id", NET_B, "--ip", "10.0.9.7"]),
        "B's own (unbound) port",
    );
    let session = |name: &str, source: &str, target: &str| {
        b(&[
            "session",
            "create",
            "--name",
            name,
            "--filter",
            &filter_b,
            "--source",
            source,
            "--target",
            target,
            "--priority",
            "1",
            "--vni",
            "200",
            "--enabled=true",
        ])
    };
    refused(
        session("steal", &vm1, &collector_b),
        404,
        "VPC.1704",
        "B mirrors A's VM port to B's collector",
    );
    refused(
        session("steal-a-to-a", &vm1, &collector_a),
        404,
        "VPC.1704",
        "B mirrors A's VM port to A's collector",
    );
    refused(
        session("redirect", &source_b, &collector_a),
        404,
        "VPC.1704",
        "B aims its session at A's collector",
    );
    // B's own session is fine: it mirrors B's port, which no host has.
    let own = id(session("own", &source_b, &collector_b), "B's own session");
    refused(
        b(&["session", "add-sources", &own, "--source", &vm1]),
        404,
        "VPC.1704",
        "B adds A's VM port to its own session",
    );

    // Not one copy of A's traffic reaches B; A's session keeps delivering.
    burst(&cloud, "after-b");
    assert!(
        eventually(Duration::from_secs(5), || marked(&cloud, "pcap", "after-b")
            >= 2 * BURST),
        "A's session still delivers"
    );
    std::thread::sleep(Duration::from_millis(500));
    let to_b = cloud.copies_in("pcap-b");
    assert!(
        to_b.is_empty(),
        "{} copies reached B's collector, e.g. VNI {}",
        to_b.len(),
        to_b[0].0.vni
    );
    assert_eq!(
        marked(&cloud, "pcap", "after-b"),
        2 * BURST,
        "no duplicates"
    );

    // The control: B's collector does receive what is sent to it (one VXLAN datagram from the
    // hypervisor, VNI 201, by hand), so its silence above means that nothing was sent.
    let send = format!("{CONTROL}\nsend('{COLLECTOR_B}')");
    let out = cloud
        .lab
        .exec("hv", "python3", &["-c", &send])
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        eventually(Duration::from_secs(3), || marked(
            &cloud, "pcap-b", "control"
        ) == 1),
        "B's collector receives what is sent to it"
    );
}

/// Sends one VXLAN datagram (VNI 201) whose inner frame says "control" to `send(ADDRESS)`.
const CONTROL: &str = r#"
import socket
def send(address):
    vxlan = bytes([8, 0, 0, 0, 0, 0, 201, 0])
    frame = bytes(12) + b"\x08\x00" + b"control!" * 8
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(vxlan + frame, (address, 4789))
"#;
