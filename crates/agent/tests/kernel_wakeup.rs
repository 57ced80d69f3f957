//! When the kernel program wakes the drain thread (bpf/select.bpf.c `wake_flags`): a thread
//! asleep on the ring is woken by a lone copy (a copy is never held until the ring fills); a
//! thread that said it polls is not woken by one copy (the point: no wake-up per copy while
//! copies flow), but is woken once the ring holds more than its wake threshold. While it
//! polls, copies go to the ring in batches per CPU: a batch's timer sends what it holds, a
//! batch keeps its copies in order, and one the ring refuses is counted copy by copy.
//!
//! Copies are produced with `BPF_PROG_TEST_RUN` while another thread sleeps in `poll` on the
//! ring's descriptor; the bounds are generous (a wake-up takes microseconds, the bounds are a
//! second). Also the per-interface counters the program keeps in the plan's array slot.
//! Needs root (loading BPF programs); skips visibly otherwise.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tmirror_agent::kernel::{KernelSelector, KernelStats};
use tmirror_agent::sys::bpf::{KIface, RECORD_LEN};
use tmirror_model::Direction;

mod support;
use support::{accept_all, frame, is_root};

/// A program whose plan on `lo` mirrors every IPv4 frame, sent or received, cut to
/// `packet_length` bytes; `None` (after saying so) when not root.
fn selector(packet_length: i64) -> Option<KernelSelector> {
    if !is_root() {
        eprintln!("SKIPPED: the kernel wake-up test needs root (loads BPF programs)");
        return None;
    }
    let mut sel = KernelSelector::load().expect("load the kernel program");
    sel.install(&[lo_plan(packet_length)]).expect("install");
    Some(sel)
}

/// The plan of `selector`, for `lo`.
fn lo_plan(packet_length: i64) -> (u32, Box<KIface>) {
    lo_plan_of(packet_length, &Direction::ALL)
}

/// A plan for `lo` mirroring every IPv4 frame of the given directions.
fn lo_plan_of(packet_length: i64, directions: &[Direction]) -> (u32, Box<KIface>) {
    let lo = tmirror_agent::sys::ring::interface_index("lo").expect("lo");
    (lo, accept_all(packet_length, directions))
}

/// A thread that says when it is about to sleep in `poll` on the ring (up to `timeout`),
/// then reports how long it slept.
fn sleeper(sel: &KernelSelector, timeout: Duration) -> (JoinHandle<Duration>, mpsc::Receiver<()>) {
    let fd: OwnedFd = sel.ring_fd().try_clone_to_owned().expect("dup the ring");
    let (ready, asleep) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        ready.send(()).unwrap();
        let start = Instant::now();
        // SAFETY: one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
        assert!(rc >= 0, "poll: {}", std::io::Error::last_os_error());
        start.elapsed()
    });
    (t, asleep)
}

/// Time for the sleeper to be inside `poll` before the copies come (it has nothing else to do).
const SETTLE: Duration = Duration::from_millis(300);

fn copies(sel: &mut KernelSelector) -> usize {
    sel.drain(|_| {})
}

/// Time within which a batch's timer has sent what it holds (it fires 1 ms after the batch's
/// first copy; the rest is slack for a loaded machine).
const BATCH_SENT: Duration = Duration::from_millis(200);

/// The copies in the ring once every CPU's batch has been sent.
fn copies_sent(sel: &mut KernelSelector) -> usize {
    std::thread::sleep(BATCH_SENT);
    copies(sel)
}

/// A program with a 1 MiB ring whose plan on `lo` (returned) copies every frame whole, its
/// drain thread taken to poll, so that copies go to the ring in batches; the calling thread
/// kept on one CPU (one batch). `None` (after saying so) when not root.
fn batching_on_a_1_mib_ring() -> Option<(KernelSelector, u32)> {
    if !is_root() {
        eprintln!("SKIPPED: the kernel ring test needs root (loads BPF programs)");
        return None;
    }
    stay_on_this_cpu();
    let mut sel = KernelSelector::load_with_ring(1 << 20).expect("a 1 MiB ring");
    let (lo, plan) = lo_plan(1500);
    sel.install(&[(lo, plan)]).expect("install");
    sel.set_polling(true).expect("batches");
    Some((sel, lo))
}

/// Keeps the calling thread on the CPU it is on: a CPU's copies share one batch, so the
/// order of copies made from one thread holds only while it stays on one CPU.
fn stay_on_this_cpu() {
    // SAFETY: sched_getcpu has no preconditions; the set is a plain bit mask we own.
    unsafe {
        let cpu = libc::sched_getcpu();
        assert!(cpu >= 0, "sched_getcpu");
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            rc,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[test]
fn a_lone_copy_wakes_a_sleeping_drain_thread() {
    let Some(mut sel) = selector(96) else {
        return;
    };
    sel.set_polling(false).expect("asleep");
    let (t, asleep) = sleeper(&sel, Duration::from_secs(10));
    asleep.recv().unwrap();
    std::thread::sleep(SETTLE);
    sel.test_run(&frame(200), true).expect("test run");
    let slept = t.join().unwrap();
    assert!(
        slept < SETTLE + Duration::from_secs(1),
        "a lone copy did not wake the drain thread: it slept {slept:?} of its 10 s"
    );
    assert_eq!(copies(&mut sel), 1, "the copy is in the ring");
}

#[test]
fn a_polling_drain_thread_is_not_woken_per_copy_but_is_when_the_ring_fills() {
    let Some(mut sel) = selector(1500) else {
        return;
    };
    sel.set_polling(true).expect("polling");

    // One copy: no wake-up, the thread sleeps its whole timeout.
    let timeout = Duration::from_millis(1500);
    let (t, asleep) = sleeper(&sel, timeout);
    asleep.recv().unwrap();
    std::thread::sleep(SETTLE);
    sel.test_run(&frame(200), true).expect("test run");
    let slept = t.join().unwrap();
    assert!(
        slept >= timeout - Duration::from_millis(100),
        "one copy woke a drain thread that polls: it slept {slept:?} of {timeout:?}"
    );
    assert_eq!(copies(&mut sel), 1);

    // Copies of about 450 bytes (they go to the ring in batches) until the ring holds twice
    // its wake threshold: a wake-up comes.
    let (t, asleep) = sleeper(&sel, Duration::from_secs(10));
    asleep.recv().unwrap();
    std::thread::sleep(SETTLE);
    let f = frame(400);
    let n = 2 * sel.wake_bytes() / f.len() + 1;
    for _ in 0..n {
        sel.test_run(&f, false).expect("test run");
    }
    let slept = t.join().unwrap();
    assert!(
        slept < SETTLE + Duration::from_secs(1),
        "{n} copies ({} KiB) did not wake the drain thread: it slept {slept:?} of its 10 s",
        n * f.len() / 1024
    );
    assert_eq!(copies_sent(&mut sel), n, "every copy is in the ring");

    // Back asleep: a lone copy wakes it again.
    sel.set_polling(false).expect("asleep");
    let (t, asleep) = sleeper(&sel, Duration::from_secs(10));
    asleep.recv().unwrap();
    std::thread::sleep(SETTLE);
    sel.test_run(&frame(200), true).expect("test run");
    let slept = t.join().unwrap();
    assert!(
        slept < SETTLE + Duration::from_secs(1),
        "after polling, a lone copy did not wake the drain thread: it slept {slept:?}"
    );
    assert_eq!(copies(&mut sel), 1);
}

/// The counters of an interface (an entry of a per-CPU array the plan names): they count,
/// carry on across plan updates, and start from zero when an interface that left the plan
/// comes back (it gets a slot zeroed when handed out).
#[test]
fn counters_carry_on_across_plans_and_restart_for_a_returning_interface() {
    let Some(mut sel) = selector(96) else {
        return;
    };
    let (lo, plan) = lo_plan(96);
    let counted = |seen, selected| KernelStats {
        seen,
        selected,
        ring_full: 0,
    };
    sel.test_run(&frame(200), true).expect("test run");
    assert_eq!(sel.stats(lo), counted(1, 1));

    sel.install(&[(lo, plan.clone())])
        .expect("the same plan again");
    sel.test_run(&frame(200), false).expect("test run");
    assert_eq!(sel.stats(lo), counted(2, 2), "counters carry on");

    sel.install(&[]).expect("no interface");
    assert_eq!(sel.stats(lo), KernelStats::default());
    sel.test_run(&frame(200), true).expect("test run");

    sel.install(&[(lo, plan)]).expect("back");
    assert_eq!(
        sel.stats(lo),
        counted(0, 0),
        "a returning interface starts from zero"
    );
    sel.test_run(&frame(200), true).expect("test run");
    assert_eq!(sel.stats(lo), counted(1, 1));
    assert_eq!(copies(&mut sel), 3, "the unplanned frame was not copied");
}

/// The ring holds what the agent asked for (`--kernel-ring-mb`): 1 MiB takes about 700 copies
/// of 1,450 bytes and counts the rest as ring drops; sizes the kernel cannot take are refused.
#[test]
fn the_ring_has_the_size_asked_for() {
    if !is_root() {
        eprintln!("SKIPPED: the kernel ring test needs root (loads BPF programs)");
        return;
    }
    assert!(KernelSelector::load_with_ring(3 << 20).is_err());
    assert!(KernelSelector::load_with_ring(1 << 19).is_err());
    let mut sel = KernelSelector::load_with_ring(1 << 20).expect("a 1 MiB ring");
    let (lo, plan) = lo_plan(1500);
    sel.install(&[(lo, plan)]).expect("install");
    // Asleep: every copy goes to the ring at once, as a record of its own.
    let f = frame(1400);
    for _ in 0..1000 {
        sel.test_run(&f, true).expect("test run");
    }
    let held = copies(&mut sel);
    let record = 8 + RECORD_LEN + f.len(); // the ring's header, ours, the frame
    assert!(
        (1 << 20) / record - 8 <= held && held <= (1 << 20) / record,
        "a 1 MiB ring held {held} copies of {record} bytes"
    );
    let stats = sel.stats(lo);
    assert_eq!(stats.selected as usize, held);
    assert_eq!(stats.ring_full as usize, 1000 - held);
}

/// While the drain thread polls, long copies are batched as short ones are: whole
/// 1,400-byte frames each in a ring record of their own cost the source's core far more
/// (docs/performance.md).
#[test]
fn long_copies_go_to_the_ring_in_batches() {
    let Some((mut sel, _)) = batching_on_a_1_mib_ring() else {
        return;
    };
    let sent = 20;
    // Short copies first: a kernel without pinned BPF timers (before 6.7) holds no batch.
    for _ in 0..sent {
        sel.test_run(&frame(100), true).expect("test run");
    }
    copies_sent(&mut sel);
    if sel.ring_records() == sent as u64 {
        eprintln!("SKIPPED: this kernel holds no batches (no pinned BPF timers, before 6.7)");
        return;
    }
    let f = frame(1400);
    for _ in 0..sent {
        sel.test_run(&f, true).expect("test run");
    }
    let before = sel.ring_records();
    assert_eq!(copies_sent(&mut sel), sent, "every copy is in the ring");
    let records = sel.ring_records() - before;
    // 20 copies of about 1,500 bytes fill a 16 KiB batch once: two records, or a few more if the
    // batch's timer fired while this thread was away.
    assert!(
        records <= 5,
        "{sent} long copies came in {records} ring records"
    );
}

/// The ring gives its room back as it is read: five rings' worth of copies of varying
/// lengths, in rounds that fill it to about three quarters, go through a 1 MiB ring in
/// batches; every copy comes back whole and in order (batches that wrap past the ring's end
/// too), none is dropped, and a drain leaves it empty.
#[test]
fn the_ring_gives_its_room_back_lap_after_lap() {
    let Some((mut sel, lo)) = batching_on_a_1_mib_ring() else {
        return;
    };
    let mut sent = 0u32;
    let mut bytes = 0usize;
    while bytes < 5 << 20 {
        let mut round = Vec::new();
        let mut held = 0;
        while held < 3 << 18 {
            // 4 to 1,399 bytes of payload, the copy's number in its last four.
            let mut f = frame(4 + (sent as usize * 337) % 1396);
            let n = f.len();
            f[n - 4..].copy_from_slice(&sent.to_be_bytes());
            sel.test_run(&f, true).expect("test run");
            held += (8 + RECORD_LEN + n).next_multiple_of(8);
            round.push(f);
            sent += 1;
        }
        std::thread::sleep(BATCH_SENT);
        let mut got = Vec::new();
        sel.drain(|c| got.push(c.data.to_vec()));
        assert_eq!(
            got.len(),
            round.len(),
            "a round came back short after {sent} copies"
        );
        for (g, f) in got.iter().zip(&round) {
            assert_eq!(g, f, "a copy came back changed");
        }
        bytes += held;
        assert_eq!(copies(&mut sel), 0, "a drain leaves the ring empty");
    }
    assert_eq!(
        sel.stats(lo).ring_full,
        0,
        "the ring had room for every round"
    );
    assert_eq!(sel.stats(lo).selected, u64::from(sent));
}

/// A direction without rules selects nothing (the program returns before parsing it): its
/// frames are counted as seen, never copied; the other direction's are.
#[test]
fn a_direction_without_rules_copies_nothing() {
    let Some(mut sel) = selector(96) else {
        return;
    };
    let (lo, plan) = lo_plan_of(96, &[Direction::Egress]);
    sel.install(&[(lo, plan)]).expect("egress only");
    let before = sel.stats(lo);
    sel.test_run(&frame(200), false).expect("received");
    sel.test_run(&frame(200), true).expect("sent");
    let after = sel.stats(lo);
    assert_eq!(after.seen - before.seen, 2);
    assert_eq!(after.selected - before.selected, 1);
    let mut outgoing = Vec::new();
    sel.drain(|c| outgoing.push(c.outgoing));
    assert_eq!(outgoing, [true], "only the sent frame is copied");
}

/// While the drain thread polls, a CPU's copies go to the ring as one batch; a batch the ring
/// has no room for is lost whole, and each of its copies is counted as a ring drop of its
/// interface, not as a copy made.
#[test]
fn a_batch_the_ring_refuses_is_counted_copy_by_copy() {
    let Some((mut sel, lo)) = batching_on_a_1_mib_ring() else {
        return;
    };
    // 1.5 MiB of copies.
    let f = frame(400);
    let sent = 3000;
    for _ in 0..sent {
        sel.test_run(&f, true).expect("test run");
    }
    let held = copies_sent(&mut sel);
    let per_copy = (RECORD_LEN + f.len()).next_multiple_of(8);
    assert!(
        held < sent && held > (1 << 20) / per_copy - 2 * 16384 / per_copy,
        "a 1 MiB ring held {held} copies of {per_copy} bytes in batches"
    );
    let stats = sel.stats(lo);
    assert_eq!(
        stats.selected as usize, held,
        "copies made: those in the ring"
    );
    assert_eq!(
        stats.ring_full as usize,
        sent - held,
        "the rest: ring drops"
    );
}
