//! The kernel program against the packet engine: the same frames (the engine's property-test
//! generator and its checked-in corpus) go through the eBPF classifier with
//! `BPF_PROG_TEST_RUN` and through `tmirror-packet`; for every frame both must take the same
//! decision, the same session and the same copy (length and bytes), and parse the same packet.
//! Needs root (loading BPF programs); skips visibly otherwise.

#[path = "../../packet/tests/common/mod.rs"]
mod common;
#[path = "../../packet/tests/common/strategies.rs"]
mod strategies;

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use strategies::{direction, frame, sessions, to_spec, RefSession};
use tmirror_agent::kernel::{lower, KernelSelector};
use tmirror_model::Direction;
use tmirror_packet::{MirrorPlan, Packet, PlanConfig, Verdict};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// One loaded program for the whole test binary; the ring is shared, so runs take turns.
fn selector() -> Option<&'static Mutex<(KernelSelector, u32)>> {
    static SELECTOR: OnceLock<Option<Mutex<(KernelSelector, u32)>>> = OnceLock::new();
    SELECTOR
        .get_or_init(|| {
            if !is_root() {
                eprintln!("SKIPPED: the kernel differential test needs root (loads BPF programs)");
                return None;
            }
            let sel = KernelSelector::load().expect("load the kernel program");
            Some(Mutex::new((sel, 0)))
        })
        .as_ref()
}

#[derive(Debug, PartialEq, Eq)]
struct Copy {
    session: usize,
    copy_len: usize,
    wire_len: usize,
    packet: Packet,
    data: Vec<u8>,
    generation: u32,
}

/// Runs `bytes` through the kernel program and the engine with the same plan; `Err` names
/// the first difference, `Ok(true)` when both mirrored it.
fn compare(
    sessions: &[RefSession],
    bytes: &[u8],
    dir: Direction,
    mtu: u16,
    host_side: bool,
) -> Result<bool, String> {
    if bytes.len() <= 14 {
        // BPF_PROG_TEST_RUN refuses frames of no more than an Ethernet header (the engine
        // mirrors none of them either: no IP header).
        return Ok(false);
    }
    let Some(sel) = selector() else {
        return Ok(false);
    };
    let plan = MirrorPlan::new(
        sessions.iter().map(to_spec),
        PlanConfig {
            underlay_mtu: mtu,
            ..PlanConfig::default()
        },
    );
    let mut guard = sel.lock().unwrap_or_else(|e| e.into_inner());
    let (sel, generation) = &mut *guard;
    *generation += 1;
    let lo = tmirror_agent::sys::ring::interface_index("lo").expect("lo");
    let k = lower(&plan, host_side, *generation).map_err(|e| format!("plan not lowered: {e}"))?;
    sel.install(&[(lo, k)]).map_err(|e| e.to_string())?;
    // On the host side of a VM's interface, what it receives is the VM's egress.
    let outgoing = (dir == Direction::Egress) != host_side;
    sel.drain(|_| {});
    sel.test_run(bytes, outgoing).map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    sel.drain(|c| {
        got.push(Copy {
            session: c.session,
            copy_len: c.copy_len,
            wire_len: c.wire_len,
            packet: c.packet,
            data: c.data.to_vec(),
            generation: c.generation,
        })
    });
    let want: Vec<Copy> = match plan.decide(bytes, dir) {
        Verdict::Mirror(m) => vec![Copy {
            session: m.index,
            copy_len: m.copy_len,
            wire_len: bytes.len(),
            packet: m.packet,
            data: m.inner(bytes).to_vec(),
            generation: *generation,
        }],
        _ => vec![],
    };
    if got != want {
        return Err(format!(
            "kernel {got:?}\nengine {want:?}\nframe {bytes:02x?}\ndirection {dir:?} host side {host_side} mtu {mtu}"
        ));
    }
    Ok(!got.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn kernel_decides_as_the_engine(
        sessions in sessions(),
        spec in frame(),
        dir in direction(),
        mtu in prop::sample::select(&[100u16, 1500, 9000][..]),
        host_side in any::<bool>(),
    ) {
        compare(&sessions, &spec.build(), dir, mtu, host_side).map_err(TestCaseError::fail)?;
    }
}

/// The engine's checked-in corpus (fuzz seeds and regressions), each frame under generated
/// plans, in both directions.
#[test]
fn kernel_decides_as_the_engine_on_the_corpus() {
    if selector().is_none() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packet/fuzz");
    let mut frames = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join("parse_frame")) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_file() && !name.starts_with('.') && !name.ends_with(".md") {
                frames.push((name, std::fs::read(e.path()).expect("read corpus")));
            }
        }
    }
    assert!(frames.len() >= 10, "the corpus is missing: {frames:?}");
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let (mut checked, mut mirrored) = (0, 0);
    for _ in 0..64 {
        let s = sessions()
            .new_tree(&mut runner)
            .expect("generate")
            .current();
        for (name, bytes) in &frames {
            for dir in Direction::ALL {
                for host_side in [false, true] {
                    let m = compare(&s, bytes, dir, 1500, host_side)
                        .unwrap_or_else(|e| panic!("corpus frame {name}: {e}"));
                    checked += 1;
                    mirrored += usize::from(m);
                }
            }
        }
    }
    eprintln!("{checked} corpus runs agree, {mirrored} of them mirrored");
    // The comparison means something only if the plans select some of the corpus.
    assert!(
        mirrored > 0,
        "no corpus frame was mirrored: the plans are too narrow"
    );
}
