//! What the kernel selection program costs per frame on the core that sends it, measured
//! with BPF_PROG_TEST_RUN (run by hand as root, not by CI): a 64-byte UDP frame against a
//! plan that selects nothing (the cost of unselected traffic), one that selects it cut to 96
//! bytes, and one that copies it whole. The kernel times `REPEAT` runs and reports the mean;
//! each case runs `ROUNDS` times, interleaved, and the median is printed. The ring is drained
//! between rounds (a full ring would turn copies into cheaper refusals). The drain thread is
//! taken to be polling, as it is while copies flow.
//!
//!   cargo run --release -p tmirror-agent --example bpf_cost

use std::time::Duration;

use tmirror_agent::kernel::{lower, KernelSelector};
use tmirror_agent::sys::ring::interface_index;
use tmirror_model::{
    Direction, Ethertype, PacketLength, PortRange, Protocol, RuleAction, RuleMatch, RulePriority,
    SessionId, SessionPriority, Vni,
};
use tmirror_packet::{CompiledFilter, MirrorPlan, PlanConfig, RuleSpec, SessionSpec};

/// Runs per measurement: few enough that selected copies (about 170 bytes of ring each) fit
/// the default 32 MiB ring.
const REPEAT: u32 = 50_000;
const ROUNDS: usize = 15;
const DPORT: u16 = 5001;

/// One session selecting egress UDP to `port`, copies of `packet_length` bytes.
fn plan(port: u16, packet_length: i64) -> MirrorPlan<()> {
    let rule = RuleSpec {
        direction: Direction::Egress,
        priority: RulePriority::new(1).expect("valid"),
        action: RuleAction::Accept,
        matches: RuleMatch {
            ethertype: Ethertype::IPv4,
            protocol: Protocol::Udp,
            source_cidr: None,
            destination_cidr: None,
            source_port_range: None,
            destination_port_range: Some(PortRange::new(port, port).expect("valid")),
        },
    };
    let spec = SessionSpec {
        id: SessionId::new(),
        priority: SessionPriority::new(1).expect("valid"),
        vni: Vni::new(1).expect("valid"),
        packet_length: PacketLength::new(packet_length).expect("valid"),
        filter: CompiledFilter::new(&[rule]),
        target: (),
    };
    MirrorPlan::new([spec], PlanConfig::default())
}

/// Ethernet, IPv4 and UDP headers and a 64-byte payload, 10.0.0.1:40000 → 10.0.0.2:`DPORT`.
fn frame() -> Vec<u8> {
    let payload = 64usize;
    let mut f = vec![0u8; 14 + 20 + 8 + payload];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + 8 + payload) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&DPORT.to_be_bytes());
    udp[4..6].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
    f
}

fn main() -> std::io::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bpf_cost needs root (loads BPF programs)");
        std::process::exit(1);
    }
    let mut sel = KernelSelector::load()?;
    // As under load: the drain thread polls, so copies do not wake it (a wake-up per copy is
    // an irq_work of its own, several times the program's cost).
    sel.set_polling(true)?;
    let lo = interface_index("lo")?;
    let frame = frame();
    let cases = [
        ("selects nothing", plan(DPORT + 1, 96)),
        ("selects, 96 bytes", plan(DPORT, 96)),
        ("selects, whole frame", plan(DPORT, 1500)),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for round in 0..ROUNDS {
        for (i, (_, plan)) in cases.iter().enumerate() {
            let k = lower(plan, false, round as u32 + 1)
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
            sel.install(&[(lo, k)])?;
            std::thread::sleep(Duration::from_millis(5)); // the last batch's timer
            sel.drain(|_| {});
            times[i].push(sel.time_runs(&frame, true, REPEAT)?);
        }
    }
    println!(
        "BPF_PROG_TEST_RUN, {} B frame, median of {ROUNDS} × {REPEAT} runs:",
        frame.len()
    );
    for ((name, _), t) in cases.iter().zip(&mut times) {
        t.sort();
        let (lo, mid, hi) = (t[0], t[t.len() / 2], t[t.len() - 1]);
        println!(
            "  {name:<22} {:>5} ns per frame (min {} ns, max {} ns)",
            mid.as_nanos(),
            lo.as_nanos(),
            hi.as_nanos()
        );
    }
    // The last batches go to the ring on their timers, a millisecond after their first copy.
    std::thread::sleep(Duration::from_millis(100));
    let copies = sel.drain(|_| {});
    println!("  ({copies} copies left in the ring, drained)");
    Ok(())
}
