//! Zero heap allocations per packet in decide + truncate + encapsulate, shown with a counting
//! global allocator. Allocations are counted only on the measuring thread, while measuring.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{rule, session, FrameSpec, L4};
use tmirror_model::Direction::{Egress, Ingress};
use tmirror_model::Ethertype::{IPv4, IPv6};
use tmirror_model::Protocol::{All, Tcp, Udp};
use tmirror_model::RuleAction::{Accept, Reject};
use tmirror_packet::*;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if MEASURING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the wrapper only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn measure(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    MEASURING.with(|m| m.set(true));
    f();
    MEASURING.with(|m| m.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn no_allocation_per_packet() {
    // the counter itself works
    assert!(measure(|| drop(std::hint::black_box(vec![1u8; 10]))) >= 1);

    let frames: Vec<Vec<u8>> = vec![
        FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Tcp(1234, 80))
            .payload(10)
            .build(),
        FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Udp(53, 53))
            .payload(1400)
            .build(),
        FrameSpec::new("2001:db8::1", "2001:db8::2", L4::Tcp(1, 443))
            .vlan(0x8100, 3)
            .build(),
        FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Icmp).build(),
        vec![0u8; 60],
        vec![0x45u8; 20],
    ];
    let many: Vec<RuleSpec> = (1..=100)
        .map(|i| {
            rule(
                Ingress,
                i,
                Reject,
                IPv4,
                Tcp,
                None,
                None,
                None,
                Some((i as u16 + 100, i as u16 + 100)),
            )
        })
        .chain([
            rule(Ingress, 200, Accept, IPv4, All, None, None, None, None),
            rule(Ingress, 201, Accept, IPv6, All, None, None, None, None),
            rule(Egress, 1, Accept, IPv4, Udp, None, None, None, None),
        ])
        .collect();
    for evaluation in [Evaluation::Linear, Evaluation::Bitset] {
        let plan = MirrorPlan::new(
            vec![
                session(1, 1, 5, 96, &many[..50]),
                session(2, 2, 6, 1500, &many),
            ],
            PlanConfig {
                evaluation,
                ..PlanConfig::default()
            },
        );
        let mut counters = Counters::for_plan(&plan);
        let outer =
            OuterIpv4::new([2; 6], [4; 6], [192, 0, 2, 1].into(), [192, 0, 2, 2].into()).template();
        // IPv6 outer headers always carry a computed UDP checksum: also without allocation.
        let outer6 = OuterIpv6::new(
            [2; 6],
            [4; 6],
            "fd00::1".parse().unwrap(),
            "fd00::2".parse().unwrap(),
        )
        .template()
        .with_mtu(1500);
        let mut payload = vec![0u8; 2048];
        let mut out = vec![0u8; 2048];
        let mut mirrored = 0;
        let n = measure(|| {
            for _ in 0..100 {
                for f in &frames {
                    for dir in [Ingress, Egress] {
                        if let Verdict::Mirror(m) = plan.decide_counted(f, dir, &mut counters) {
                            mirrored += 1;
                            m.encapsulate_payload(f, &mut payload).unwrap();
                            let len = m.encapsulate_frame(&outer, f, &mut out).unwrap();
                            let d = decapsulate_frame(&out[..len], VXLAN_PORT).unwrap();
                            std::hint::black_box(d);
                            let len = m.encapsulate_frame(&outer6, f, &mut out).unwrap();
                            let d = decapsulate_frame(&out[..len], VXLAN_PORT).unwrap();
                            std::hint::black_box(d);
                        }
                    }
                }
            }
        });
        assert_eq!(n, 0, "{evaluation:?}: heap allocations on the packet path");
        assert!(mirrored >= 400, "{mirrored}");
        assert_eq!(counters.frames_seen, 1200);
    }
}
