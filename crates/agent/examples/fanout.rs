//! Benchmark-only prototype of issue 17's alternative to the eBPF back-end, for
//! `bench/dataplane.sh` (root): kernel-side selection by a **PACKET_FANOUT group of AF_PACKET
//! sockets with an eBPF socket filter**, the frames drained from each member's TPACKET_V3
//! ring and sent by the agent's own pipelines (engine decision, encapsulation, forwarder,
//! send mode `packet`). Not part of the agent: docs/dataplane.md has the figures and why it
//! stays a prototype.
//!
//! The socket filter (`bpf/fanout.bpf.c`) is the TCX program's parser and classifier, reading
//! the same lowered plan (`kernel::lower`) from the same map; it returns 0 for frames no
//! session selects, so the kernel drops them before they are copied into a ring, and the
//! copy length (at least the headers) for the others. A filter can only return a length, so
//! the member's pipeline decides again in user space to learn the session (the engine's
//! ≈ 40 ns, on selected frames only).
//!
//! A fanout group only joins sockets bound to the same interface, so a hypervisor has two
//! ways to build it: a group per interface (`--bind device`: rings and threads grow with the
//! interfaces, as the AF_PACKET back-end's do), or one group of sockets bound to every
//! interface (`--bind all`, ifindex 0: a fixed number of rings whatever the number of
//! interfaces, the filter checks the interface against the plan — but every frame of every
//! interface of the namespace, the underlay's included, passes the filter, and every frame
//! *sent* by any of them is cloned for it first, in `dev_queue_xmit_nit`).
//!
//! With one source interface the members' pipelines all use its plan; a real build would
//! dispatch each frame on its interface index (`sockaddr_ll`) in the `--bind all` case.
//!
//! ```text
//! fanout --interface tap1 --target 192.168.77.2 --underlay-ip 192.168.77.1 --vni 4242 \
//!        --packet-length 96 --select all|none --bind device|all --sockets 2 --fanout hash|cpu \
//!        --metrics 127.0.0.1:9100 --lifetime 600
//! ```
//! `--select none`: a session whose filter selects none of the benchmark's UDP to port 9 (the
//! cost of unselected traffic). The process exits by itself after `--lifetime` seconds.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use aya::maps::{Array, ArrayOfMaps, MapData, PerCpuArray, PerCpuValues};
use aya::programs::SocketFilter;
use aya::util::nr_cpus;
use aya::EbpfLoader;
use tmirror_agent::capture::{Capture, CaptureBackend, CaptureSource};
use tmirror_agent::counters::Registry;
use tmirror_agent::kernel::{lower, plan_array};
use tmirror_agent::pipeline::{Pipeline, PipelineConfig, PipelinePlan};
use tmirror_agent::sys::bpf::{KCounters, KIface};
use tmirror_agent::sys::ring::{interface_index, Fanout, FanoutMode, RingConfig, RxRing};
use tmirror_agent::target::{Destination, Destinations, Target};
use tmirror_agent::{SendMode, Underlay};
use tmirror_model::{
    CaptureSide, Direction, Ethertype, PacketLength, PortRange, Protocol, RuleAction, RuleMatch,
    RulePriority, SessionId, SessionPriority, Vni,
};
use tmirror_packet::{CompiledFilter, MirrorPlan, PlanConfig, RuleSpec, SessionSpec, VXLAN_PORT};

/// The socket-filter prototype, built by build.rs from bpf/fanout.bpf.c.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/fanout.bpf.o"));

/// The fanout group's id in the namespace (any value not used by another group).
const GROUP: u16 = 0x746d;

/// Opens each member's ring: the program attached before bind, then the group joined.
struct FanoutBackend {
    program: Arc<OwnedFd>,
    mode: FanoutMode,
    /// 0: every interface of the namespace.
    ifindex: u32,
    ring: RingConfig,
}

impl CaptureBackend for FanoutBackend {
    fn name(&self) -> &'static str {
        "af_packet_fanout"
    }

    fn open(&self, _source: &CaptureSource) -> std::io::Result<Box<dyn Capture>> {
        let program: BorrowedFd<'_> = self.program.as_fd();
        Ok(Box::new(RxRing::open_program(
            self.ifindex,
            self.ring,
            program,
            Some(Fanout {
                group: GROUP,
                mode: self.mode,
            }),
        )?))
    }
}

fn args() -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let Some(k) = k.strip_prefix("--") else {
            panic!("unexpected argument {k:?} (see the example's documentation)");
        };
        let v = it.next().unwrap_or_else(|| panic!("--{k} needs a value"));
        out.insert(k.to_string(), v);
    }
    out
}

fn main() {
    let a = args();
    let get = |k: &str, default: &str| a.get(k).cloned().unwrap_or_else(|| default.to_string());
    let interface = get("interface", "tap1");
    let target: IpAddr = get("target", "192.168.77.2").parse().expect("--target");
    let underlay: Vec<IpAddr> = a
        .get("underlay-ip")
        .map(|v| vec![v.parse().expect("--underlay-ip")])
        .unwrap_or_default();
    let vni: i64 = get("vni", "4242").parse().expect("--vni");
    let packet_length: i64 = get("packet-length", "96").parse().expect("--packet-length");
    let select_all = match get("select", "all").as_str() {
        "all" => true,
        "none" => false,
        other => panic!("--select all|none, not {other}"),
    };
    let bind_all = match get("bind", "device").as_str() {
        "device" => false,
        "all" => true,
        other => panic!("--bind device|all, not {other}"),
    };
    let sockets: usize = get("sockets", "2").parse().expect("--sockets");
    let mode = match get("fanout", "hash").as_str() {
        "hash" => FanoutMode::Hash,
        "cpu" => FanoutMode::Cpu,
        other => panic!("--fanout hash|cpu, not {other}"),
    };
    let metrics: SocketAddr = get("metrics", "127.0.0.1:9100").parse().expect("--metrics");
    let lifetime = Duration::from_secs(get("lifetime", "600").parse().expect("--lifetime"));

    // The session, as the agent's data plane compiles one (dataplane.rs `Mirrors::plan`).
    let registry = Arc::new(Registry::default());
    let session = SessionId::new();
    let rule = RuleSpec {
        direction: Direction::Egress,
        priority: RulePriority::new(1).unwrap(),
        action: RuleAction::Accept,
        matches: if select_all {
            RuleMatch::any(Ethertype::IPv4)
        } else {
            // As bench/dataplane.sh's `nothing` filter: the benchmark sends to port 9.
            RuleMatch {
                ethertype: Ethertype::IPv4,
                protocol: Protocol::Udp,
                source_cidr: None,
                destination_cidr: None,
                source_port_range: None,
                destination_port_range: Some(PortRange::new(1, 1).unwrap()),
            }
        },
    };
    let plan = || {
        let spec = SessionSpec {
            id: session,
            priority: SessionPriority::new(1).unwrap(),
            vni: Vni::new(vni).expect("--vni"),
            packet_length: PacketLength::new(packet_length).expect("--packet-length"),
            filter: CompiledFilter::new(std::slice::from_ref(&rule)),
            target: Target {
                to: Destinations::One(Destination::new(target, VXLAN_PORT)),
                counters: registry.session(session),
            },
        };
        let mirror = MirrorPlan::new(
            [spec],
            PlanConfig {
                underlay_mtu: 1500,
                ..PlanConfig::default()
            },
        );
        PipelinePlan::new(
            mirror,
            CaptureSide::Host,
            Underlay::from_addresses(&underlay).expect("--underlay-ip"),
        )
    };

    // Load the filter and install the interface's plan where it looks (the TCX program's
    // one-slot map of plan maps).
    let ifindex = interface_index(&interface).expect("--interface");
    let mut kplan: Box<KIface> = lower(&plan().mirror, true, 0).expect("a plan the kernel takes");
    // One interface: the counters' first slot.
    kplan.stats_slot = 0;
    // The TCX program's batches (select.bpf.c, included whole) are not used here: one entry,
    // not the template's 4,096 of 32 KiB.
    let mut ebpf = EbpfLoader::new()
        .map_max_entries("batches", 1)
        .load(OBJECT)
        .expect("load bpf/fanout.bpf.c");
    let prog: &mut SocketFilter = ebpf
        .program_mut("tmirror_fanout")
        .expect("tmirror_fanout in the object")
        .try_into()
        .expect("a socket filter");
    prog.load().expect("the verifier accepts tmirror_fanout");
    let program: OwnedFd = prog
        .fd()
        .expect("loaded")
        .as_fd()
        .try_clone_to_owned()
        .expect("dup the program's descriptor");
    let mut plans: ArrayOfMaps<MapData, Array<MapData, KIface>> =
        ArrayOfMaps::try_from(ebpf.take_map("plans").expect("plans")).expect("plans");
    let map = plan_array(&[(ifindex, kplan)]).expect("a plan array");
    plans.set(0, &map, 0).expect("install plan");
    let mut stats: PerCpuArray<MapData, KCounters> =
        PerCpuArray::try_from(ebpf.take_map("stats").expect("stats")).expect("stats");
    let cpus = nr_cpus().expect("cpus");
    stats
        .set(
            0,
            PerCpuValues::try_from(vec![KCounters::default(); cpus]).unwrap(),
            0,
        )
        .expect("stats entry");

    // /metrics as the agent serves it, so the benchmark reads the same counters.
    registry.connected.store(true, Relaxed);
    registry.set_backend("af_packet_fanout");
    let metrics_registry = registry.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (_local, task) = tmirror_agent::metrics::serve(metrics, metrics_registry)
                .await
                .expect("metrics listen");
            let _ = task.await;
        });
    });

    let backend: Arc<dyn CaptureBackend> = Arc::new(FanoutBackend {
        program: Arc::new(program),
        mode,
        ifindex: if bind_all { 0 } else { ifindex },
        ring: RingConfig::default(),
    });
    let config = PipelineConfig {
        ring: RingConfig::default(),
        batch: 64,
        max_frame: 1500 + 14,
        sndbuf: 4 << 20,
        send_mode: SendMode::Packet,
    };
    // One pipeline (thread, ring, forwarder) per member; each has its own counters, as ring
    // drops are per ring.
    let pipelines: Vec<Pipeline> = (0..sockets)
        .map(|i| {
            Pipeline::start(
                interface.clone(),
                None,
                plan(),
                config,
                registry.interface(&format!("{interface}#{i}")),
                backend.clone(),
            )
            .expect("pipeline")
        })
        .collect();
    eprintln!(
        "fanout: {sockets} sockets bound to {} in group {GROUP} ({mode:?}), select {}, packet_length {packet_length}",
        if bind_all { "every interface" } else { interface.as_str() },
        if select_all { "all" } else { "none" },
    );
    std::thread::sleep(lifetime);
    drop(pipelines);
    let (mut seen, mut selected) = (0, 0);
    if let Ok(v) = stats.get(&0, 0) {
        for c in v.iter() {
            seen += c.seen;
            selected += c.selected;
        }
    }
    println!("{{\"filter_seen\":{seen},\"filter_selected\":{selected}}}");
}
