//! How the kernel program finds an interface's plan (bpf/select.bpf.c `plan_of`): a plan is one
//! array, headed by an open-addressed table from interface index to the entry of that
//! interface's plan, filled by the agent (`kernel::plan_table`) where the program searches.
//!
//! The table's placement is checked without the kernel, for index patterns a host produces
//! (indexes only grow as interfaces come and go); the program's search with
//! `BPF_PROG_TEST_RUN` (root; skips visibly otherwise): an interface placed after others that
//! share its slot, and one of a very large index, in a network namespace of the test's own.

use tmirror_agent::kernel::{plan_table, KernelSelector};
use tmirror_agent::sys::bpf::{
    table_slots, KIface, MAX_IFACES, PROBES, TABLE_ENTRIES, TABLE_SLOTS,
};
use tmirror_model::Direction;

mod support;
use support::{accept_all, frame, is_root};

/// The program's search, in Rust: the entry of `ifindex`'s plan, or `None`.
fn search(table: &[(u32, u32)], ifindex: u32) -> Option<u32> {
    for (part, first) in table_slots(ifindex) {
        for i in 0..PROBES {
            let (at, entry) =
                table[(part * TABLE_SLOTS + ((first + i) & (TABLE_SLOTS - 1))) as usize];
            if at == ifindex {
                return Some(entry);
            }
            if at == 0 {
                return None;
            }
        }
        // All taken: on to the second place.
    }
    None
}

/// `n` indexes from `from` whose first place in the table is `place`.
fn first_placed_at(place: (u32, u32), from: u32, n: usize) -> Vec<u32> {
    (from..)
        .filter(|&i| table_slots(i)[0] == place)
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
fn an_interface_goes_to_its_second_place_and_is_refused_past_it() {
    let x = 1;
    let [first, second] = table_slots(x);
    // Its first place's slots taken: it goes to its second place, where it is found.
    let crowd = first_placed_at(first, 2, PROBES as usize);
    let mut indexes = crowd.clone();
    indexes.push(x);
    let table = plan_table(indexes.iter().copied()).expect("placed at its second place");
    assert_eq!(search(&table, x), Some(TABLE_ENTRIES + PROBES));
    // Not planned, its first place full: the search goes on to the second and ends there.
    let table = plan_table(crowd.iter().copied()).unwrap();
    assert_eq!(search(&table, x), None);
    // Both places' slots taken: refused.
    let mut both = crowd;
    both.extend(first_placed_at(second, 2, PROBES as usize));
    both.push(x);
    let e = plan_table(both.iter().copied()).unwrap_err();
    assert!(e.to_string().contains("slots of its two places"), "{e}");
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
    // with it): `lo` (index 1) and an interface of a very large index, one whose first
    // place is among the last slots of a table entry.
    let big: u32 = (1_900_000_000..)
        .find(|&i| table_slots(i)[0].1 >= TABLE_SLOTS - 4)
        .unwrap();
    std::thread::spawn(move || {
        // SAFETY: unshare has no memory preconditions; it moves only this thread.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
        let added = std::process::Command::new("ip")
            .args([
                "link",
                "add",
                "name",
                "big0",
                "index",
                &big.to_string(),
                "type",
                "veth",
            ])
            .args(["peer", "name", "big1"])
            .status()
            .expect("ip");
        assert!(added.success(), "ip link add big0 index {big}");

        let mut sel = KernelSelector::load().expect("load the kernel program");
        // `lo` behind 16 interfaces of its first place (so at its second), big0 behind 15 of
        // its own first place, whose slots run past the table entry's last (the search wraps),
        // each with its own copy length: the program must find each interface's own plan.
        let lo_crowd = first_placed_at(table_slots(1)[0], 2, PROBES as usize);
        let big_place = table_slots(big)[0];
        assert!(
            big_place.1 + PROBES > TABLE_SLOTS,
            "big0's slots wrap: {big_place:?}"
        );
        let big_crowd = first_placed_at(big_place, big + 1, PROBES as usize - 1);
        let mut plans: Vec<(u32, Box<KIface>)> = lo_crowd
            .iter()
            .chain(&big_crowd)
            .enumerate()
            .map(|(k, &i)| (i, plan(64 + k as i64)))
            .collect();
        plans.push((big, plan(128)));
        plans.push((1, plan(96)));
        sel.install(&plans).expect("install");
        sel.test_run(&frame(200), true).expect("sent on lo");
        sel.test_run_on(&frame(200), true, big)
            .expect("sent on big0");
        assert_eq!(copies(&mut sel), [(1, 96), (big, 128)]);

        // Without `lo` in the plan (its first place still full), its frames are not copied;
        // big0's still are.
        plans.pop();
        sel.install(&plans).expect("install");
        sel.test_run(&frame(200), true).expect("sent on lo");
        sel.test_run_on(&frame(200), true, big)
            .expect("sent on big0");
        assert_eq!(copies(&mut sel), [(big, 128)]);
    })
    .join()
    .expect("the test's thread");
}

#[test]
fn the_program_has_room_for_the_interfaces_asked_for_and_refuses_more() {
    if !is_root() {
        eprintln!("SKIPPED: the kernel plan test needs root (loads BPF programs)");
        return;
    }
    // The smallest of the built rooms that holds the number asked for.
    for (asked, room) in [(1, 256), (256, 256), (257, 1024), (4096, 4096)] {
        let sel = KernelSelector::load_with(1 << 20, asked).expect("load the kernel program");
        assert_eq!(sel.room(), room, "{asked} interfaces asked for");
    }
    for wrong in [0, 4097] {
        let e = KernelSelector::load_with(1 << 20, wrong)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("from 1 to 4096 interfaces"), "{e}");
    }
    // A plan of as many interfaces as there is room for goes in; one more is refused, and
    // the plan in place stays.
    let mut sel = KernelSelector::load_with(1 << 20, 200).expect("load the kernel program");
    let full: Vec<(u32, Box<KIface>)> = (1..=256).map(|i| (i, plan(96))).collect();
    sel.install(&full).expect("room for 256");
    let more: Vec<(u32, Box<KIface>)> = (1..=257).map(|i| (i, plan(96))).collect();
    let e = sel.install(&more).expect_err("no room for 257");
    assert!(e.to_string().contains("--kernel-max-interfaces"), "{e}");
    sel.test_run(&frame(200), true).expect("sent on lo");
    assert_eq!(copies(&mut sel), [(1, 96)], "lo (index 1) keeps its plan");
}
