//! The data plane's footprint with many mirrored interfaces, for bench/footprint.sh (root):
//! `footprint BACKEND N` mirrors the interfaces `fp0` … `fp{N-1}` (which the script creates)
//! with the given capture back-end (`ebpf` or `af-packet`), one session each, waits until
//! every interface is captured, then prints one line: threads of the process, capture memory
//! (kernel memory of the BPF maps, `memlock` in /proc/self/fdinfo, or the mapped AF_PACKET
//! rings), and the process's own CPU over an idle window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tmirror_agent::counters::Registry;
use tmirror_agent::{CaptureChoice, Dataplane, MirrorConfig, Mirrors};
use tmirror_model::agent::{DesiredState, InterfacePlan, RulePlan, SessionPlan};
use tmirror_model::{
    CaptureSide, Ethertype, PacketLength, PortId, RuleAction, RuleId, RuleMatch, RulePriority,
    SessionId, SessionPriority, Vni,
};

fn cpu_ns() -> u64 {
    let mut total = 0;
    for t in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
            total += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// Bytes the kernel charges for the BPF maps this process holds.
fn bpf_memlock() -> u64 {
    let mut total = 0;
    for fd in std::fs::read_dir("/proc/self/fdinfo")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(info) = std::fs::read_to_string(fd.path()) else {
            continue;
        };
        if !info.contains("map_type:") {
            continue;
        }
        total += info
            .lines()
            .find_map(|l| l.strip_prefix("memlock:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

/// Bytes of the AF_PACKET rings mapped by this process.
fn packet_rings() -> u64 {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter(|l| l.contains("socket:["))
        .filter_map(|l| {
            let range = l.split_whitespace().next()?;
            let (a, b) = range.split_once('-')?;
            Some(u64::from_str_radix(b, 16).ok()? - u64::from_str_radix(a, 16).ok()?)
        })
        .sum()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let backend: CaptureChoice = args
        .next()
        .expect("BACKEND")
        .parse()
        .expect("ebpf or af-packet");
    let n: usize = args.next().expect("N").parse().expect("a number");
    let registry = Arc::new(Registry::default());
    let config = MirrorConfig {
        capture: backend,
        ..MirrorConfig::default()
    };
    let mut mirrors = Mirrors::new(config, registry.clone()).expect("data plane");
    let rule = RulePlan {
        rule_id: RuleId::new(),
        priority: RulePriority::new(1).unwrap(),
        action: RuleAction::Accept,
        matches: RuleMatch::any(Ethertype::IPv4),
    };
    let interfaces = (0..n)
        .map(|i| InterfacePlan {
            port_id: PortId::new(),
            interface_name: format!("fp{i}"),
            capture_side: CaptureSide::Host,
            sessions: vec![SessionPlan {
                session_id: SessionId::new(),
                priority: SessionPriority::new(1).unwrap(),
                vni: Vni::new(1).unwrap(),
                packet_length: PacketLength::new(96).unwrap(),
                target_ip: "192.0.2.1".parse().unwrap(),
                ingress_rules: vec![rule.clone()],
                egress_rules: vec![rule.clone()],
                members: Vec::new(),
            }],
        })
        .collect();
    let state = DesiredState {
        protocol_version: 1,
        host_id: "footprint".into(),
        generation: 1,
        content_hash: String::new(),
        interfaces,
        addresses: Vec::new(),
    };
    mirrors.apply(&state).expect("apply");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = registry
            .interfaces()
            .iter()
            .filter(|(_, c)| c.state() == "capturing")
            .count();
        if up == n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {up} of {n} interfaces captured"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0);
    let idle = Duration::from_secs(5);
    let before = cpu_ns();
    std::thread::sleep(idle);
    let cpu = (cpu_ns() - before) as f64 / idle.as_nanos() as f64 * 100.0;
    let memory = match mirrors.backend_name() {
        "ebpf" => bpf_memlock(),
        _ => packet_rings(),
    };
    println!(
        "backend {} interfaces {n} threads {threads} capture_memory_mib {:.1} idle_cpu_percent {:.2}",
        mirrors.backend_name(),
        memory as f64 / (1 << 20) as f64,
        cpu
    );
}
