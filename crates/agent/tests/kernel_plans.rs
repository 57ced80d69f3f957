//! How the kernel program finds an interface's plan (bpf/select.bpf.c `plan_of`): a plan is one
//! array, headed by an open-addressed table from interface index to the entry of that
//! interface's plan, filled by the agent (`kernel::plan_table`) where the program searches.
//!
//! The table's placement is checked without the kernel, for index patterns a host produces
//! (indexes only grow as interfaces come and go); the program's search with
//! `BPF_PROG_TEST_RUN` (root; skips visibly otherwise): an interface placed after others that
//! share its slot, and one of a very large index, in a network namespace of the test's own.

use tmirror_agent::kernel::{plan_table, KernelSelector};
use tmirror_agent::sys::bpf::{table_slot, KIface, MAX_IFACES, PROBES, TABLE_ENTRIES, TABLE_SLOTS};
use tmirror_model::Direction;

mod support;
use support::{accept_all, frame, is_root};

/// The program's search, in Rust: the entry of `ifindex`'s plan, or `None`.
fn search(table: &[(u32, u32)], ifindex: u32) -> Option<u32> {
    let (part, first) = table_slot(ifindex);
    for i in 0..PROBES {
        let (at, entry) = table[(part * TABLE_SLOTS + ((first + i) & (TABLE_SLOTS - 1))) as usize];
        if at == ifindex {
            return Some(entry);
        }
        if at == 0 {
            return None;
        }
    }
    None
}

/// `n` indexes with the table slot of `ifindex` (the first is `ifindex` itself).
fn sharing_the_slot_of(ifindex: u32, n: usize) -> Vec<u32> {
    let want = table_slot(ifindex);
    (ifindex..)
        .filter(|&i| table_slot(i) == want)
        .take(n)
        .collect()
}

#[test]
fn every_interface_is_placed_where_the_program_looks_for_it() {
    let n = MAX_IFACES;
    let mut seed = 0x2545_f491_u32;
    let mut random = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed | 1
    };
    let patterns: Vec<(&str, Vec<u32>)> = vec![
        ("from 1", (1..=n).collect()),
        ("from 100,000", (100_000..100_000 + n).collect()),
        ("every 1,024th", (1..=n).map(|i| i * 1024).collect()),
        ("every 65,536th", (1..=n).map(|i| i << 16).collect()),
        ("the largest", (0..n).map(|i| i32::MAX as u32 - i).collect()),
        ("random", {
            let mut v: Vec<u32> = (0..n).map(|_| random() >> 1).collect();
            v.sort_unstable();
            v.dedup();
            v
        }),
    ];
    for (name, indexes) in patterns {
        let table = plan_table(indexes.iter().copied()).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (k, &ifindex) in indexes.iter().enumerate() {
            assert_eq!(
                search(&table, ifindex),
                Some(TABLE_ENTRIES + k as u32),
                "{name}: interface {ifindex}"
            );
        }
        let planned: std::collections::HashSet<u32> = indexes.iter().copied().collect();
        let absent = (1..).find(|i| !planned.contains(i)).unwrap();
        assert_eq!(
            search(&table, absent),
            None,
            "{name}: {absent} is not planned"
        );
    }
}

#[test]
fn a_table_refuses_what_the_program_could_not_find() {
    // One more interface than the probes on one slot: the last cannot be placed.
    let crowded = sharing_the_slot_of(1, PROBES as usize + 1);
    let e = plan_table(crowded.iter().copied()).unwrap_err();
    assert!(
        e.to_string().contains("slots of the plan table are taken"),
        "{e}"
    );
    assert!(plan_table(crowded[..PROBES as usize].iter().copied()).is_ok());
    assert!(plan_table([0]).is_err(), "index 0 marks a free slot");
    assert!(plan_table([7, 9, 7]).is_err(), "planned twice");
}

/// A plan mirroring every IPv4 frame sent, cut to `packet_length` bytes.
fn plan(packet_length: i64) -> Box<KIface> {
    accept_all(packet_length, &[Direction::Egress])
}

/// The (interface, copy length) of each copy in the ring.
fn copies(sel: &mut KernelSelector) -> Vec<(u32, usize)> {
    let mut out = Vec::new();
    sel.drain(|c| out.push((c.ifindex, c.copy_len)));
    out
}

#[test]
fn the_program_finds_each_interfaces_own_plan() {
    if !is_root() {
        eprintln!("SKIPPED: the kernel plan test needs root (loads BPF programs)");
        return;
    }
    // In a network namespace of this thread's own (gone with the thread, and the interface
    // with it): `lo` (index 1) and an interface of a very large index.
    const BIG: u32 = 2_000_000_001;
    std::thread::spawn(|| {
        // SAFETY: unshare has no memory preconditions; it moves only this thread.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
        let added = std::process::Command::new("ip")
            .args([
                "link",
                "add",
                "name",
                "big0",
                "index",
                &BIG.to_string(),
                "type",
                "veth",
            ])
            .args(["peer", "name", "big1"])
            .status()
            .expect("ip");
        assert!(added.success(), "ip link add big0 index {BIG}");

        let mut sel = KernelSelector::load().expect("load the kernel program");
        // `lo` placed last of the interfaces that share its slot, each with its own copy
        // length: the program must probe past the others to `lo`'s own plan.
        let crowd = sharing_the_slot_of(1, PROBES as usize);
        let mut plans: Vec<(u32, Box<KIface>)> = crowd[1..]
            .iter()
            .enumerate()
            .map(|(k, &i)| (i, plan(64 + k as i64)))
            .collect();
        plans.push((BIG, plan(128)));
        plans.push((1, plan(96)));
        sel.install(&plans).expect("install");
        sel.test_run(&frame(200), true).expect("sent on lo");
        sel.test_run_on(&frame(200), true, BIG)
            .expect("sent on big0");
        assert_eq!(copies(&mut sel), [(1, 96), (BIG, 128)]);

        // Without `lo` in the plan, its frames are not copied; big0's still are.
        plans.pop();
        sel.install(&plans).expect("install");
        sel.test_run(&frame(200), true).expect("sent on lo");
        sel.test_run_on(&frame(200), true, BIG)
            .expect("sent on big0");
        assert_eq!(copies(&mut sel), [(BIG, 128)]);
    })
    .join()
    .expect("the test's thread");
}
