//! End to end, as root, in network namespaces, with the eBPF capture back-end: a lone copy,
//! sent while the agent is idle, reaches the collector promptly. The kernel program wakes the
//! drain thread only past a fill threshold while copies flow; an idle drain thread must still
//! be woken by a single copy rather than wait for the ring to fill (or for a slow poll).
//! `crates/agent/tests/kernel_wakeup.rs` checks the kernel side of it on its own.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{eventually, root_or_skip, Cloud, Spec};
use tmirror_netlab::addr;

/// Generous: a wake-up takes microseconds; a copy held for the ring to fill would never come.
const BOUND: Duration = Duration::from_secs(1);

/// The collector's receive time of the copy whose inner frame holds `marker`, waiting up to
/// five seconds for it.
fn arrival(cloud: &Cloud, marker: &str) -> Option<Duration> {
    let m = marker.as_bytes();
    let mut at = None;
    eventually(Duration::from_secs(5), || {
        at = cloud
            .copies_timed()
            .into_iter()
            .filter(|(c, _)| c.frame.windows(m.len()).any(|w| w == m))
            .map(|(_, t)| t)
            .min();
        at.is_some()
    });
    at
}

#[test]
fn a_lone_copy_from_an_idle_agent_arrives_within_a_second() {
    let Some(()) = root_or_skip("a_lone_copy_from_an_idle_agent_arrives_within_a_second") else {
        return;
    };
    let mut cloud = Cloud::new("tme2e-lone", 2);
    cloud.start_server();
    cloud.start_collector();
    cloud.start_echo("vm2");
    let vm1 = cloud.vm_port(1);
    let target = cloud.collector_port();
    // Only what vm1 sends to port 7001: one copy per datagram, none of the echoes.
    let filter = cloud.create(&["filter", "create", "--name", "lone"]);
    cloud.rule(
        &filter,
        "egress udp IPv4 accept 1",
        &["--destination-port-range", "7001-7001"],
    );
    cloud.session("lone", &filter, &vm1, &target, Spec::new(1, 3101, 128));
    cloud.start_agent_with(&["--capture", "ebpf"]);
    cloud.wait_capturing(&["tap1"]);
    cloud.assert_capture_backend("ebpf");
    let vm2 = addr::vm4(2);

    // A first copy resolves the target's next hop (convergence, not what is measured here).
    cloud.traffic("vm1", &["udp", &vm2, "7001", "1", "64", "warmup"]);
    assert!(
        arrival(&cloud, "warmup").is_some(),
        "the first copy never arrived"
    );

    let mut waits = Vec::new();
    for trial in 0..3 {
        // Idle: nothing selected for well over the drain thread's poll intervals.
        std::thread::sleep(Duration::from_millis(1500));
        let marker = format!("lone-copy-{trial}");
        let sent = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let r = cloud.traffic("vm1", &["udp", &vm2, "7001", "1", "64", &marker]);
        assert_eq!(r["echoed"], 1, "the VMs must reach each other: {r}");
        let at = arrival(&cloud, &marker)
            .unwrap_or_else(|| panic!("trial {trial}: the lone copy never arrived"));
        // From before the sender process started (its start-up included) to the collector.
        let waited = at.saturating_sub(sent);
        assert!(
            waited <= BOUND,
            "trial {trial}: a lone copy took {waited:?} (bound {BOUND:?})"
        );
        waits.push(waited);
    }
    eprintln!("lone copies, send to collector (sender start-up included): {waits:?}");
}
