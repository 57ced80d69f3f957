//! Best-of-many timing of the same paths as benches/engine.rs. On a shared, noisy 2-core VM the
//! minimum over 300 short runs (20k iterations each) filters out time lost to other tenants,
//! which criterion's means do not.
//!
//! cargo run --release -p tmirror-packet --example min_timing

#[path = "../tests/common/mod.rs"]
mod common;
use common::{rule, session, FrameSpec, L4};
use std::hint::black_box;
use std::time::Instant;
use tmirror_model::Direction::Ingress;
use tmirror_model::Ethertype::IPv4;
use tmirror_model::Protocol::Tcp;
use tmirror_model::RuleAction::Accept;
use tmirror_packet::*;
#[path = "../benches/shared/scenarios.rs"]
mod scenarios;
use scenarios::*;

/// Times `f`; `MIN_TIMING_FILTER=substring` runs only the matching cases (for `perf record`).
fn time(name: &str, mut f: impl FnMut()) {
    if let Ok(only) = std::env::var("MIN_TIMING_FILTER") {
        if !name.contains(&only) {
            return;
        }
    }
    let n = 20_000u32;
    let mut best = f64::MAX;
    for _ in 0..300 {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / f64::from(n));
    }
    println!("{name:40} {best:7.2} ns");
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

fn main() {
    let outer = outer();
    let mut out = vec![0u8; 2048];
    for (name, len, pl) in [("a64", 64usize, 1500u16), ("b1500/96", 1500, 96)] {
        let f = frame(len);
        for (en, e) in [
            ("linear", Evaluation::Linear),
            ("bitset", Evaluation::Bitset),
        ] {
            let p = plan(three_sessions(10, pl), e);
            let mut c = Counters::for_plan(&p);
            time(&format!("{name} {en}"), || {
                black_box(full_path(
                    &p,
                    &outer,
                    black_box(&f),
                    Ingress,
                    &mut c,
                    &mut out,
                ));
            });
        }
    }
    let f = frame(64);
    for n in [1u32, 10, 100] {
        for (en, e) in [
            ("linear", Evaluation::Linear),
            ("bitset", Evaluation::Bitset),
        ] {
            let p = plan(vec![session(1, 1, 1, 1500, &rules(n, Accept))], e);
            let mut c = Counters::for_plan(&p);
            time(&format!("c 1s {n} {en}"), || {
                black_box(full_path(
                    &p,
                    &outer,
                    black_box(&f),
                    Ingress,
                    &mut c,
                    &mut out,
                ));
            });
            let p = plan(three_sessions(n, 1500), e);
            let mut c = Counters::for_plan(&p);
            time(&format!("c 3s {n} {en}"), || {
                black_box(full_path(
                    &p,
                    &outer,
                    black_box(&f),
                    Ingress,
                    &mut c,
                    &mut out,
                ));
            });
        }
    }
    // rules that share addresses and differ only in the destination port: each non-matching
    // rule costs the linear scan every comparison
    for n in [16u32, 32, 64, 128] {
        let same: Vec<RuleSpec> = (1..=n)
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
            .collect();
        for (en, e) in [
            ("linear", Evaluation::Linear),
            ("bitset", Evaluation::Bitset),
        ] {
            let p = plan(vec![session(1, 1, 1, 1500, &same)], e);
            let mut c = Counters::for_plan(&p);
            time(&format!("shared-address rules {n} {en}"), || {
                black_box(full_path(
                    &p,
                    &outer,
                    black_box(&f),
                    Ingress,
                    &mut c,
                    &mut out,
                ));
            });
        }
    }
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
    for (name, f) in &cases {
        time(&format!("parse hand-written {name}"), || {
            black_box(
                parse(black_box(f))
                    .ok()
                    .map(|p| (p.src, p.dst, p.protocol, p.ports)),
            );
        });
        time(&format!("parse etherparse {name}"), || {
            black_box(etherparse_fields(black_box(f)));
        });
    }
    let pk = parse(&f).unwrap();
    time("flow_hash", || {
        black_box(flow_hash(black_box(&pk)));
    });
    let small = &f[..];
    time("encap_frame 64", || {
        black_box(
            outer
                .encapsulate(
                    50000,
                    tmirror_model::Vni::new(5).unwrap(),
                    black_box(small),
                    &mut out,
                )
                .ok(),
        );
    });
}
