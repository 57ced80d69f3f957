//! The benchmark-only PACKET_FANOUT prototype's kernel side (bpf/fanout.bpf.c and
//! `RxRing::open_program`, docs/dataplane.md): two rings in one fanout group on the loopback
//! interface, filtered by the socket program with a plan lowered from the engine, get exactly
//! the selected frames, each cut to its copy length (at least the headers), and nothing else.
//! Needs root (AF_PACKET, BPF); skips, saying so, otherwise. Uses only loopback addresses of
//! its own (127.83.17.0/24).

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use aya::maps::{Array, ArrayOfMaps, MapData};
use aya::programs::SocketFilter;
use aya::Ebpf;
use tmirror_agent::kernel::{lower, plan_array};
use tmirror_agent::sys::bpf::KIface;
use tmirror_agent::sys::ring::{interface_index, Fanout, FanoutMode, RingConfig, RxRing};
use tmirror_model::{
    Direction, Ethertype, PacketLength, PortRange, Protocol, RuleAction, RuleMatch, RulePriority,
    SessionId, SessionPriority, Vni,
};
use tmirror_packet::{CompiledFilter, MirrorPlan, PlanConfig, RuleSpec, SessionSpec};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/fanout.bpf.o"));

const SENDER: Ipv4Addr = Ipv4Addr::new(127, 83, 17, 1);
const RECEIVER: Ipv4Addr = Ipv4Addr::new(127, 83, 17, 2);

/// One session selecting UDP to `port` with copies of `packet_length` bytes, captured on the
/// host side (what the interface receives is the source's egress).
fn plan(port: u16, packet_length: i64) -> MirrorPlan<()> {
    let rule = RuleSpec {
        direction: Direction::Egress,
        priority: RulePriority::new(1).unwrap(),
        action: RuleAction::Accept,
        matches: RuleMatch {
            ethertype: Ethertype::IPv4,
            protocol: Protocol::Udp,
            source_cidr: None,
            destination_cidr: None,
            source_port_range: None,
            destination_port_range: Some(PortRange::new(port, port).unwrap()),
        },
    };
    let spec = SessionSpec {
        id: SessionId::new(),
        priority: SessionPriority::new(1).unwrap(),
        vni: Vni::new(1).unwrap(),
        packet_length: PacketLength::new(packet_length).unwrap(),
        filter: CompiledFilter::new(&[rule]),
        target: (),
    };
    MirrorPlan::new([spec], PlanConfig::default())
}

#[test]
fn a_fanout_group_gets_exactly_the_selected_frames_cut_to_their_copy_length() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the fanout socket-filter test needs root (AF_PACKET, BPF)");
        return;
    }
    let lo = interface_index("lo").unwrap();
    let mut ebpf = Ebpf::load(OBJECT).expect("load bpf/fanout.bpf.c");
    let prog: &mut SocketFilter = ebpf
        .program_mut("tmirror_fanout")
        .unwrap()
        .try_into()
        .unwrap();
    prog.load().expect("the verifier accepts tmirror_fanout");
    let program: OwnedFd = prog.fd().unwrap().as_fd().try_clone_to_owned().unwrap();
    let mut plans: ArrayOfMaps<MapData, Array<MapData, KIface>> =
        ArrayOfMaps::try_from(ebpf.take_map("plans").unwrap()).unwrap();
    // Receivers, so that no ICMP port-unreachable adds frames; the plan selects the first
    // one's port (the kernel's choice).
    let receiver = UdpSocket::bind((RECEIVER, 0)).unwrap();
    let other = UdpSocket::bind((RECEIVER, 0)).unwrap();
    let sender = UdpSocket::bind((SENDER, 0)).unwrap();
    let selected_port = receiver.local_addr().unwrap().port();
    let kplan = lower(&plan(selected_port, 96), true, 0).unwrap();
    let map = plan_array(&[(lo, kplan)]).unwrap();
    plans.set(0, &map, 0).unwrap();

    // Small rings: the test sends a handful of frames.
    let ring = RingConfig {
        block_size: 1 << 16,
        block_count: 4,
        retire_ms: 1,
    };
    // Not the benchmark's group id: groups are per namespace and tests may run beside it.
    let group = Fanout {
        group: 0x7466,
        mode: FanoutMode::Hash,
    };
    let mut rings: Vec<RxRing> = (0..2)
        .map(|_| RxRing::open_program(lo, ring, program.as_fd(), Some(group)).unwrap())
        .collect();

    let payload = [0x5a_u8; 300];
    for _ in 0..5 {
        sender
            .send_to(&payload, receiver.local_addr().unwrap())
            .unwrap();
        sender
            .send_to(&payload, other.local_addr().unwrap())
            .unwrap();
    }

    // Every frame the rings got within a bounded wait: (destination port, captured, wire).
    let mut got: Vec<(u16, usize, u32, bool)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && got.len() < 5 {
        for r in rings.iter_mut() {
            r.wait(20).unwrap();
            r.drain_block(|f| {
                let ihl = usize::from(f.data[14] & 0x0f) * 4;
                let port = u16::from_be_bytes([f.data[14 + ihl + 2], f.data[14 + ihl + 3]]);
                got.push((port, f.data.len(), f.wire_len, f.outgoing));
            });
        }
    }
    // Let a wrongly passed frame arrive too before judging.
    std::thread::sleep(Duration::from_millis(50));
    for r in rings.iter_mut() {
        while r.drain_block(|f| got.push((0, f.data.len(), f.wire_len, f.outgoing))) > 0 {}
    }
    let wire = 14 + 20 + 8 + payload.len();
    assert_eq!(got.len(), 5, "{got:?}");
    for (port, captured, wire_len, outgoing) in got {
        assert_eq!(port, selected_port);
        // Received by lo (host side: the source's egress), not the copy of what it sent.
        assert!(!outgoing);
        assert_eq!(wire_len as usize, wire);
        // packet_length 96, but the headers the engine reads come along (SNAP_HEADROOM).
        assert_eq!(captured, tmirror_packet::SNAP_HEADROOM);
    }
}
