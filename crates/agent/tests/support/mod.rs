//! What the kernel program's tests share: plans and frames for `BPF_PROG_TEST_RUN`.
// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use aya::programs::{SchedClassifier, TcAttachType};
use tmirror_agent::kernel::lower;
use tmirror_agent::sys::bpf::KIface;
use tmirror_model::{
    Direction, Ethertype, PacketLength, RuleAction, RuleMatch, RulePriority, SessionId,
    SessionPriority, Vni,
};
use tmirror_packet::{CompiledFilter, MirrorPlan, PlanConfig, RuleSpec, SessionSpec};

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// An interface's plan mirroring every IPv4 frame of the given directions, cut to
/// `packet_length` bytes, lowered for the kernel.
pub fn accept_all(packet_length: i64, directions: &[Direction]) -> Box<KIface> {
    lower(&mirror_all(packet_length, directions), false, 1).expect("lowered")
}

/// The engine's plan of [`accept_all`].
pub fn mirror_all(packet_length: i64, directions: &[Direction]) -> MirrorPlan<()> {
    let rules: Vec<(Direction, RuleAction)> = directions
        .iter()
        .map(|d| (*d, RuleAction::Accept))
        .collect();
    mirror_with(packet_length, &rules)
}

/// An engine's plan of one session with a rule for every IPv4 frame per (direction, action).
pub fn mirror_with(packet_length: i64, rules: &[(Direction, RuleAction)]) -> MirrorPlan<()> {
    mirror_to(packet_length, rules, ())
}

/// [`mirror_with`], the session's target `target`.
pub fn mirror_to<T>(
    packet_length: i64,
    rules: &[(Direction, RuleAction)],
    target: T,
) -> MirrorPlan<T> {
    let rules: Vec<RuleSpec> = rules
        .iter()
        .map(|(direction, action)| RuleSpec {
            direction: *direction,
            priority: RulePriority::new(1).unwrap(),
            action: *action,
            matches: RuleMatch::any(Ethertype::IPv4),
        })
        .collect();
    MirrorPlan::new(
        [SessionSpec {
            id: SessionId::new(),
            priority: SessionPriority::new(1).unwrap(),
            vni: Vni::new(1).unwrap(),
            packet_length: PacketLength::new(packet_length).unwrap(),
            filter: CompiledFilter::new(&rules),
            target,
        }],
        PlanConfig::default(),
    )
}

/// How many programs the kernel has on `interface`'s [ingress, egress] TCX hooks.
pub fn programs_on(interface: &str) -> [usize; 2] {
    [TcAttachType::Ingress, TcAttachType::Egress].map(|t| {
        SchedClassifier::query_tcx(interface, t)
            .map(|(_, programs)| programs.len())
            .expect("query the TCX hook")
    })
}

/// An Ethernet + IPv4 + UDP frame with `payload` bytes of payload.
pub fn frame(payload: usize) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8 + payload];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip_len = (20 + 8 + payload) as u16;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&4000u16.to_be_bytes());
    f[36..38].copy_from_slice(&7000u16.to_be_bytes());
    f[38..40].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
    f
}
