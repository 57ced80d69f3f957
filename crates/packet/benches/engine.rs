//! Criterion benchmarks of the per-packet path (issue 4). Figures go in docs/packet-engine.md.
//!
//! cargo bench -p tmirror-packet --bench engine -- --warm-up-time 1 --measurement-time 3
//!
//! Time is the benchmark thread's own CPU time (`/proc/thread-self/schedstat`, nanoseconds,
//! updated every scheduler tick), not wall-clock time: on the project's shared 2-core VM other
//! tenants keep the run queue long, and wall-clock means there mostly measure time spent
//! descheduled. Samples are flat and long (10 × ~300 ms) so the 4 ms tick granularity stays
//! around 1 %. Set `TMIRROR_BENCH_WALL=1` for criterion's ordinary wall-clock measurement.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{rule, session, FrameSpec, L4};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use tmirror_model::Direction::Ingress;
use tmirror_model::Ethertype::IPv4;
use tmirror_model::Protocol::Tcp;
use tmirror_model::RuleAction::Accept;
use tmirror_packet::*;

#[path = "shared/scenarios.rs"]
mod scenarios;
use scenarios::*;

/// This thread's CPU time so far, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn wall_clock() -> bool {
    std::env::var_os("TMIRROR_BENCH_WALL").is_some()
}

/// Runs `f` as one benchmark, timed in thread CPU time unless `TMIRROR_BENCH_WALL` is set.
fn run<O>(g: &mut BenchmarkGroup<'_, WallTime>, id: BenchmarkId, mut f: impl FnMut() -> O) {
    if wall_clock() {
        g.bench_function(id, |b| b.iter(&mut f));
        return;
    }
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let wall = Instant::now();
            let start = thread_cpu_ns();
            for _ in 0..iters {
                black_box(f());
            }
            let cpu = thread_cpu_ns().saturating_sub(start);
            if cpu == 0 {
                wall.elapsed() // no schedstat: fall back to wall-clock time
            } else {
                Duration::from_nanos(cpu)
            }
        })
    });
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    if !wall_clock() {
        g.sampling_mode(SamplingMode::Flat).sample_size(10);
    }
    g
}

const EVALUATIONS: [(&str, Evaluation); 3] = [
    ("linear", Evaluation::Linear),
    ("bitset", Evaluation::Bitset),
    ("auto", Evaluation::Auto),
];

fn bench_a_b(c: &mut Criterion) {
    let outer = outer();
    let outer6 = outer6();
    let mut out = vec![0u8; 2048];
    for (name, len, packet_length) in [("a_64B_frame", 64, 1500u16), ("b_1500B_trunc96", 1500, 96)]
    {
        let f = frame(len);
        let mut g = group(c, name);
        for (ename, e) in EVALUATIONS {
            let p = plan(three_sessions(10, packet_length), e);
            let mut counters = Counters::for_plan(&p);
            let want = len.min(usize::from(packet_length)) + 50;
            assert_eq!(
                full_path(&p, &outer, &f, Ingress, &mut counters, &mut out),
                want
            );
            assert_eq!(counters.mirrored(), &[0, 0, 1]);
            run(
                &mut g,
                BenchmarkId::new("decide+trunc+encap_frame", ename),
                || {
                    full_path(
                        &p,
                        &outer,
                        black_box(&f),
                        black_box(Ingress),
                        &mut counters,
                        &mut out,
                    )
                },
            );
            if e == Evaluation::Auto {
                // The same with an IPv6 outer header (UDP checksum over the copy, flow label).
                assert_eq!(
                    full_path(&p, &outer6, &f, Ingress, &mut counters, &mut out),
                    want + 20
                );
                run(
                    &mut g,
                    BenchmarkId::new("decide+trunc+encap_frame_ipv6", ename),
                    || {
                        full_path(
                            &p,
                            &outer6,
                            black_box(&f),
                            black_box(Ingress),
                            &mut counters,
                            &mut out,
                        )
                    },
                );
            }
            run(
                &mut g,
                BenchmarkId::new("decide+trunc+encap_payload", ename),
                || match p.decide_counted(black_box(&f), black_box(Ingress), &mut counters) {
                    Verdict::Mirror(m) => m.encapsulate_payload(&f, &mut out).unwrap(),
                    _ => 0,
                },
            );
        }
        g.finish();
    }
}

fn bench_c_rules(c: &mut Criterion) {
    let outer = outer();
    let mut out = vec![0u8; 2048];
    let f = frame(64);
    let mut g = group(c, "c_rules_per_direction");
    for n in [1u32, 10, 100] {
        for (ename, e) in EVALUATIONS {
            // one session, last rule accepts
            let p = plan(vec![session(1, 1, 1, 1500, &rules(n, Accept))], e);
            let mut counters = Counters::for_plan(&p);
            assert!(full_path(&p, &outer, &f, Ingress, &mut counters, &mut out) > 0);
            run(
                &mut g,
                BenchmarkId::new(format!("1session_{ename}"), n),
                || full_path(&p, &outer, black_box(&f), Ingress, &mut counters, &mut out),
            );
            // three sessions as in (a)
            let p = plan(three_sessions(n, 1500), e);
            let mut counters = Counters::for_plan(&p);
            assert_eq!(
                full_path(&p, &outer, &f, Ingress, &mut counters, &mut out),
                114
            );
            run(
                &mut g,
                BenchmarkId::new(format!("3sessions_{ename}"), n),
                || full_path(&p, &outer, black_box(&f), Ingress, &mut counters, &mut out),
            );
        }
    }
    g.finish();
}

/// Rules sharing one address pair and differing only in the destination port (one CIDR, many
/// services): the unfavourable shape for a linear scan, where every rule is tested in full.
fn shared_address_rules(n: u32) -> Vec<RuleSpec> {
    (1..=n)
        .map(|i| {
            let port = if i == n { 443 } else { 2000 + i as u16 };
            rule(
                Ingress,
                i,
                Accept,
                IPv4,
                Tcp,
                Some("10.0.0.0/8"),
                Some("10.0.0.0/8"),
                None,
                Some((port, port)),
            )
        })
        .collect()
}

fn bench_c_shared(c: &mut Criterion) {
    let outer = outer();
    let mut out = vec![0u8; 2048];
    let f = frame(64);
    let mut g = group(c, "c_shared_address_rules");
    for n in [16u32, 32, 64] {
        for (ename, e) in EVALUATIONS {
            let p = plan(vec![session(1, 1, 1, 1500, &shared_address_rules(n))], e);
            let mut counters = Counters::for_plan(&p);
            assert!(full_path(&p, &outer, &f, Ingress, &mut counters, &mut out) > 0);
            run(&mut g, BenchmarkId::new(ename, n), || {
                full_path(&p, &outer, black_box(&f), Ingress, &mut counters, &mut out)
            });
        }
    }
    g.finish();
}

type Fields = (u128, u128, u8, Option<(u16, u16)>);

fn etherparse_fields(frame: &[u8]) -> Option<Fields> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let s = SlicedPacket::from_ethernet(frame).ok()?;
    let (src, dst, proto) = match s.net? {
        NetSlice::Ipv4(v4) => (
            u128::from(u32::from(v4.header().source_addr())),
            u128::from(u32::from(v4.header().destination_addr())),
            v4.payload().ip_number.0,
        ),
        NetSlice::Ipv6(v6) => (
            u128::from(v6.header().source_addr()),
            u128::from(v6.header().destination_addr()),
            v6.payload().ip_number.0,
        ),
    };
    let ports = match s.transport {
        Some(TransportSlice::Tcp(t)) => Some((t.source_port(), t.destination_port())),
        Some(TransportSlice::Udp(u)) => Some((u.source_port(), u.destination_port())),
        _ => None,
    };
    Some((src, dst, proto, ports))
}

fn bench_parser(c: &mut Criterion) {
    let mut v6 = FrameSpec::new("2001:db8::1", "2001:db8::2", L4::Tcp(1, 443)).vlan(0x8100, 7);
    v6.ipv6_ext = vec![(0, 8), (60, 16)];
    let cases = [
        ("tcp4_64B", frame(64)),
        (
            "udp4_qinq",
            FrameSpec::new("10.0.0.1", "10.0.0.2", L4::Udp(5, 6))
                .vlan(0x88A8, 1)
                .vlan(0x8100, 2)
                .build(),
        ),
        ("tcp6_vlan_2ext", v6.build()),
    ];
    let mut g = group(c, "parse");
    for (name, f) in &cases {
        let ours = parse(f).unwrap();
        assert_eq!(
            etherparse_fields(f),
            Some((ours.src, ours.dst, ours.protocol, ours.ports))
        );
        run(&mut g, BenchmarkId::new("hand_written", name), || {
            parse(black_box(f))
                .ok()
                .map(|p| (p.src, p.dst, p.protocol, p.ports))
        });
        run(&mut g, BenchmarkId::new("etherparse", name), || {
            etherparse_fields(black_box(f))
        });
    }
    g.finish();
}

/// The load-balancer member choice an agent makes per copy (issue 15): weighted rendezvous
/// over N healthy members of equal or of different weights, and failing open (none healthy:
/// two passes).
fn bench_member_choice(c: &mut Criterion) {
    let mut g = group(c, "member_choice");
    for n in [3u8, 10, 100] {
        for (name, healthy, weighted) in [
            ("equal", true, false),
            ("weighted", true, true),
            ("fail_open", false, false),
        ] {
            let members: Vec<Member<u8>> = (0..n)
                .map(|i| Member {
                    key: member_key(std::net::Ipv4Addr::new(192, 168, 77, i).into(), 4789),
                    weight: if weighted { 1 + i % 3 } else { 1 },
                    healthy,
                    target: i,
                })
                .collect();
            let mut flow = 0x9E37_79B9u32;
            run(&mut g, BenchmarkId::new(name, n), || {
                flow = flow.wrapping_mul(0x0101_0101).wrapping_add(0x1F35);
                choose(black_box(flow), &members).member().map(|m| m.target)
            });
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_a_b,
    bench_c_rules,
    bench_c_shared,
    bench_parser,
    bench_member_choice
);
criterion_main!(benches);
