//! The kernel back-end's worker as the data plane drives it: it attaches the program to the
//! hooks each interface's plan needs and follows plan changes, and it leaves the state of an
//! interface that leaves the kernel to the data plane (which may have handed it to AF_PACKET,
//! whose capture says so itself).
//!
//! On the loopback interface of a network namespace of the test thread's own (gone with the
//! thread). Needs root (loads BPF programs); skips visibly otherwise.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tmirror_agent::counters::{InterfaceCounters, SessionCounters};
use tmirror_agent::kernel::KernelSelector;
use tmirror_agent::kernel_pipeline::{KernelPipeline, KernelSource, KernelTable};
use tmirror_agent::pipeline::{PipelineConfig, PipelinePlan};
use tmirror_agent::sys::ring::RingConfig;
use tmirror_agent::target::{Destination, Destinations, Target};
use tmirror_agent::{SendMode, Underlay};
use tmirror_model::{CaptureSide, Direction, RuleAction};

mod support;
use support::{is_root, mirror_to, programs_on};

const WAIT: Duration = Duration::from_secs(5);

/// A plan of `lo` (as the VM sees it: directions as they are) mirroring every IPv4 frame of
/// `directions` to a collector that is never reached.
fn plan(directions: &[Direction]) -> Arc<PipelinePlan> {
    plan_to(directions, Ipv4Addr::new(127, 0, 0, 9))
}

/// [`plan`] with the collector at `collector`, UDP port 4789.
fn plan_to(directions: &[Direction], collector: Ipv4Addr) -> Arc<PipelinePlan> {
    let rules: Vec<(Direction, RuleAction)> = directions
        .iter()
        .map(|d| (*d, RuleAction::Accept))
        .collect();
    let target = Target {
        to: Destinations::One(Destination::new(IpAddr::V4(collector), 4789)),
        counters: Arc::new(SessionCounters::default()),
    };
    Arc::new(PipelinePlan::new(
        mirror_to(96, &rules, target),
        CaptureSide::Guest,
        Underlay::default(),
    ))
}

fn config() -> PipelineConfig {
    PipelineConfig {
        ring: RingConfig {
            block_size: 1 << 16,
            block_count: 4,
            retire_ms: 10,
        },
        batch: 32,
        max_frame: 1514,
        sndbuf: 1 << 20,
        send_mode: SendMode::Raw,
    }
}

/// Hands the worker `lo` with `plan` (or nothing) and waits until it has installed it.
fn capture(pipeline: &KernelPipeline, lo: Option<(&Arc<PipelinePlan>, &Arc<InterfaceCounters>)>) {
    let sources = lo
        .map(|(plan, counters)| KernelSource {
            interface: "lo".to_string(),
            plan: plan.clone(),
            counters: counters.clone(),
        })
        .into_iter()
        .collect();
    pipeline.update(KernelTable { sources });
    assert!(
        pipeline.wait_installed(WAIT),
        "the worker installs the table"
    );
}

/// Runs `test` with the kernel worker, in a network namespace of a thread of its own whose
/// `lo` is up (gone with the thread).
fn with_worker(test: impl FnOnce(KernelPipeline) + Send + 'static) {
    std::thread::spawn(|| {
        // SAFETY: unshare has no memory preconditions; it moves only this thread.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
        let up = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("run ip");
        assert!(up.success());
        let selector = KernelSelector::load().expect("load the kernel program");
        test(KernelPipeline::start(selector, config()).expect("start the worker"));
    })
    .join()
    .expect("the test's thread");
}

#[test]
fn the_worker_follows_the_plans_hooks_and_leaves_a_departing_interfaces_state_alone() {
    if !is_root() {
        eprintln!("SKIPPED: the kernel worker test needs root (loads BPF programs)");
        return;
    }
    with_worker(|pipeline| {
        let counters = Arc::new(InterfaceCounters::default());

        capture(&pipeline, Some((&plan(&[Direction::Egress]), &counters)));
        assert_eq!(counters.state(), "capturing");
        assert_eq!(programs_on("lo"), [0, 1], "what lo sends only");
        assert_eq!(counters.kernel_hooks.load(Relaxed), 1);

        capture(
            &pipeline,
            Some((&plan(&[Direction::Ingress, Direction::Egress]), &counters)),
        );
        assert_eq!(programs_on("lo"), [1, 1], "both directions");
        assert_eq!(counters.kernel_hooks.load(Relaxed), 2);

        capture(&pipeline, Some((&plan(&[Direction::Ingress]), &counters)));
        assert_eq!(programs_on("lo"), [1, 0], "the other direction only");
        assert_eq!(counters.kernel_hooks.load(Relaxed), 1);

        // The data plane hands lo to AF_PACKET: its capture is opening (its state says so)
        // when the worker learns that lo left the kernel.
        counters.set_state("starting");
        capture(&pipeline, None);
        assert_eq!(programs_on("lo"), [0, 0], "detached");
        assert_eq!(counters.kernel_hooks.load(Relaxed), 0);
        assert_eq!(
            counters.state(),
            "starting",
            "the state of an interface that left the kernel is the data plane's"
        );
    });
}

/// What the kernel counted for an interface in its last moments in the plan (the worker
/// reads the kernel's counters four times a second) is read before its slot is given up.
#[test]
fn an_interface_leaving_the_kernel_keeps_what_the_kernel_counted_for_it() {
    if !is_root() {
        eprintln!("SKIPPED: the kernel worker test needs root (loads BPF programs)");
        return;
    }
    const FRAMES: u64 = 50;
    with_worker(|pipeline| {
        let counters = Arc::new(InterfaceCounters::default());
        capture(&pipeline, Some((&plan(&[Direction::Egress]), &counters)));
        // Let a read of the counters pass, so that the frames below fall after it.
        std::thread::sleep(Duration::from_millis(300));
        let before = counters.captured.load(Relaxed);
        // Every address listened on: a port unreachable would be one more frame on lo, and
        // one to the collector's address a copy of a copy's error, and so on.
        let _collector = std::net::UdpSocket::bind("127.0.0.9:4789").expect("bind the collector");
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = receiver.local_addr().expect("its address");
        for _ in 0..FRAMES {
            // Judged by the program on lo's egress within the call.
            socket.send_to(&[0u8; 32], to).expect("send");
        }
        capture(&pipeline, None);
        assert_eq!(
            counters.captured.load(Relaxed) - before,
            FRAMES,
            "frames the program judged on lo before it left the plan"
        );
    });
}

/// Runs `ip ARGS` (in the calling thread's network namespace).
fn ip(args: &str) {
    let ok = std::process::Command::new("ip")
        .args(args.split_whitespace())
        .status()
        .expect("run ip");
    assert!(ok.success(), "ip {args}");
}

/// Copies to a collector whose next hop does not answer ARP are counted as send drops, not
/// as mirrored (the kernel drops them, and tells the raw socket they were sent): but for the
/// one a second that makes the kernel try to resolve the hop again.
#[test]
fn copies_to_a_next_hop_that_does_not_resolve_are_counted_as_dropped() {
    if !is_root() {
        eprintln!("SKIPPED: the kernel worker test needs root (loads BPF programs)");
        return;
    }
    const FRAMES: u64 = 40;
    with_worker(|pipeline| {
        // An on-link collector whose ARP resolution failed.
        ip("link add tmv0 type veth peer name tmv1");
        ip("link set tmv0 up");
        ip("link set tmv1 up");
        ip("addr add 192.168.77.1/24 dev tmv0");
        ip("neigh add 192.168.77.9 dev tmv0 nud failed");
        let counters = Arc::new(InterfaceCounters::default());
        let plan = plan_to(&[Direction::Egress], Ipv4Addr::new(192, 168, 77, 9));
        capture(&pipeline, Some((&plan, &counters)));
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = receiver.local_addr().expect("its address");
        for _ in 0..FRAMES {
            socket.send_to(&[0u8; 32], to).expect("send");
        }
        let deadline = std::time::Instant::now() + WAIT;
        let (mirrored, dropped) = loop {
            let m = counters.mirrored.load(Relaxed);
            let d = counters.send_drops.load(Relaxed);
            if m + d >= FRAMES || std::time::Instant::now() > deadline {
                break (m, d);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // One copy a second tries again: two, should a look-up fall within the burst.
        assert!(
            mirrored <= 2 && mirrored + dropped == FRAMES,
            "{mirrored} copies counted as mirrored, {dropped} as dropped, of {FRAMES}"
        );
    });
}

/// The doorbell ends the drain thread's waits, both of them, at once: the data plane rings it
/// with each new table, so the worker takes it without sleeping out its tick.
#[test]
fn the_doorbell_ends_the_workers_waits() {
    if !is_root() {
        eprintln!("SKIPPED: the kernel worker test needs root (loads BPF programs)");
        return;
    }
    let selector = KernelSelector::load().expect("load the kernel program");
    let bell = selector.doorbell();
    const LONG: Duration = Duration::from_secs(60);
    for woken in [false, true] {
        let ringer = {
            let bell = bell.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                bell.ring();
            })
        };
        let started = std::time::Instant::now();
        if woken {
            selector.wait_woken(LONG).expect("wait for a wake-up");
        } else {
            selector.wait(LONG).expect("wait for copies");
        }
        ringer.join().expect("the ringer");
        assert!(
            started.elapsed() < LONG / 2,
            "a wait of {LONG:?} ended by the bell (woken: {woken}) after {:?}",
            started.elapsed()
        );
    }
    // Answered as the wait returned: the next wait sleeps again (here, its short timeout).
    let started = std::time::Instant::now();
    selector
        .wait(Duration::from_millis(200))
        .expect("wait for copies");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "the bell was answered"
    );
}
