//! End to end, as root, in network namespaces: every change made through the CLI reaches the
//! data plane within one second, and mirroring survives the control plane. One session on
//! vm1, then: disable, enable, add vm2 as a source, remove vm1, change a rule to reject, delete
//! it and create an accept again (a direction that selects nothing and back: the kernel
//! program leaves its hook and comes back), kill the server (mirroring goes on),
//! restart the agent while the server is down (it resumes from its saved state), bring the
//! server back, delete the session (everything stops).
//!
//! Each step waits one second after the CLI call returned, then sends a burst of five UDP
//! datagrams from vm1 to vm2's echo server, marked with the step's name, and counts the
//! copies at the collector that carry the mark: each source interface sees the request and
//! the echo (one ingress, one egress packet per datagram).

mod support;

use std::time::Duration;

use support::{eventually, root_or_skip, Cloud, Spec};
use tmirror_netlab::addr;

const BURST: usize = 5;

/// Sends the burst for `step` and checks that exactly `expected` copies carry its mark.
fn burst(cloud: &Cloud, step: &str, expected: usize) {
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
    assert_eq!(
        r["echoed"], BURST,
        "{step}: vm1 and vm2 must reach each other: {r}"
    );
    let mut got = 0;
    if expected > 0 {
        eventually(Duration::from_secs(3), || {
            got = cloud.copies_with(step).len();
            got >= expected
        });
    }
    // Give late or duplicate copies the time to show up before the final count.
    std::thread::sleep(Duration::from_millis(400));
    got = cloud.copies_with(step).len();
    assert_eq!(got, expected, "{step}: copies at the collector");
}

/// With the eBPF back-end: the program sits on `hooks` of `interface`'s TCX hooks (those whose
/// direction has rules).
fn assert_kernel_hooks(cloud: &Cloud, interface: &str, hooks: u8) {
    if cloud.agent_metric("tmirror_agent_capture_backend", &[("backend", "ebpf")]) != Some(1.0) {
        eprintln!("the agent captures with AF_PACKET here: no kernel hooks to check");
        return;
    }
    assert_eq!(
        cloud.agent_metric(
            "tmirror_interface_kernel_hooks",
            &[("interface", interface)]
        ),
        Some(f64::from(hooks)),
        "hooks of {interface} carrying the kernel program:\n{}",
        cloud.metrics()
    );
}

/// After a change, the data plane must have it within a second.
fn within_a_second() {
    std::thread::sleep(Duration::from_secs(1));
}

#[test]
fn changes_reach_the_data_plane_within_a_second_and_mirroring_survives_the_control_plane() {
    let Some(()) = root_or_skip("changes_reach_the_data_plane_within_a_second") else {
        return;
    };
    let mut cloud = Cloud::new("tme2e-life", 2);
    cloud.start_server();
    cloud.start_collector();
    cloud.start_echo("vm2");
    cloud.start_agent();

    let vm1 = cloud.vm_port(1);
    let vm2 = cloud.vm_port(2);
    let target = cloud.collector_port();
    let filter = cloud.create(&["filter", "create", "--name", "all-ipv4"]);
    cloud.rule(&filter, "ingress all IPv4 accept 1", &[]);
    let egress_rule = cloud.rule(&filter, "egress all IPv4 accept 1", &[]);
    let session = cloud.session("life", &filter, &vm1, &target, Spec::new(1, 500, 128));
    cloud.wait_capturing(&["tap1"]);
    burst(&cloud, "start", 2 * BURST);

    cloud.cli(&["session", "update", &session, "--enabled=false"]);
    within_a_second();
    burst(&cloud, "disabled", 0);

    cloud.cli(&["session", "update", &session, "--enabled=true"]);
    within_a_second();
    burst(&cloud, "enabled", 2 * BURST);

    cloud.cli(&["session", "add-sources", &session, "--source", &vm2]);
    within_a_second();
    burst(&cloud, "added", 4 * BURST);

    cloud.cli(&["session", "remove-sources", &session, "--source", &vm1]);
    within_a_second();
    burst(&cloud, "removed", 2 * BURST);

    // vm2 is the only source now: its egress is the echo. Reject it.
    cloud.cli(&["rule", "update", &egress_rule, "--action", "reject"]);
    within_a_second();
    burst(&cloud, "rejected", BURST);
    assert!(
        cloud
            .copies_with("rejected")
            .iter()
            .all(|c| c.frame[30..34] == [10, 0, 2, 2]),
        "only what vm2 received (addressed to 10.0.2.2) is mirrored"
    );
    // Rejects only select nothing: the kernel program left the hook of vm2's egress.
    assert_kernel_hooks(&cloud, "tap2", 1);

    // No egress rule at all, then an accept again: the hook comes back.
    cloud.cli(&["rule", "delete", &egress_rule]);
    within_a_second();
    burst(&cloud, "no-egress-rule", BURST);
    assert_kernel_hooks(&cloud, "tap2", 1);
    cloud.rule(&filter, "egress all IPv4 accept 1", &[]);
    within_a_second();
    burst(&cloud, "egress-rule-again", 2 * BURST);
    assert_kernel_hooks(&cloud, "tap2", 2);
    assert!(
        cloud
            .copies_with("egress-rule-again")
            .iter()
            .any(|c| c.frame[26..30] == [10, 0, 2, 2]),
        "what vm2 sends is mirrored again"
    );

    cloud.kill_server();
    burst(&cloud, "server-killed", 2 * BURST);

    cloud.stop_agent();
    cloud.start_agent();
    cloud.wait_capturing(&["tap2"]);
    burst(&cloud, "agent-restarted", 2 * BURST);

    cloud.start_server();
    assert!(
        eventually(Duration::from_secs(15), || cloud
            .agent_metric("tmirror_agent_connected", &[])
            == Some(1.0)),
        "the agent reconnects to the restarted server"
    );
    cloud.cli(&["session", "delete", &session]);
    within_a_second();
    burst(&cloud, "deleted", 0);
}
