//! The eBPF back-end's kernel side: loads the selection program built from
//! `bpf/select.bpf.c`, attaches it to the TCX ingress and egress hooks of source interfaces
//! (those whose direction has accept rules: [`Hooks`]), installs plans and drains the one
//! ring buffer all interfaces write their copies into.
//!
//! A plan is lowered from the packet engine's own compiled rules (never re-derived from the
//! model), so the kernel evaluates exactly what the engine evaluates; the differential test
//! (tests/kernel_differential.rs) checks it frame by frame with `BPF_PROG_TEST_RUN`.

use std::collections::{HashMap as StdHashMap, HashSet, VecDeque};
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use aya::maps::{Array, ArrayOfMaps, MapData, PerCpuArray, PerCpuValues, RingBuf};
use aya::programs::tc::{SchedClassifierLink, TcAttachOptions};
use aya::programs::{
    LinkOrder, MultiProgLink, SchedClassifier, TcAttachType, TestRun, TestRunOptions,
};
use aya::util::nr_cpus;
use aya::{Ebpf, EbpfLoader};
use tmirror_model::Direction;
use tmirror_packet::{IpVersion, MirrorPlan, Packet};

use crate::sys::bpf::{
    table_slots, tcx_link_ifindex, wait_readable, wake_bytes, Doorbell, KCounters, KIface, KRule,
    WakeWait, KERNEL_INTERFACES, KERNEL_ROOMS, MAX_COPY, MAX_IFACES, MAX_RULES, MAX_SESSIONS,
    PROBES, RECORD_LEN, RING_BYTES, TABLE_ENTRIES, TABLE_SLOTS,
};
use crate::sys::link_watch::LinkWatch;

/// The compiled program (built by build.rs with clang), once per room for interfaces in its
/// plan arrays ([`KERNEL_ROOMS`]).
static OBJECTS: [(u32, &[u8]); 3] = [
    (
        KERNEL_ROOMS[0],
        aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/select.bpf.o")),
    ),
    (
        KERNEL_ROOMS[1],
        aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/select-1024.bpf.o")),
    ),
    (
        KERNEL_ROOMS[2],
        aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/select-4096.bpf.o")),
    ),
];

/// A plan: the table from interface index to entry, then the interfaces' plans
/// (bpf/select.bpf.c, `plan_array`).
type PlanArray = Array<MapData, KIface>;

/// Why a plan cannot be evaluated in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfit {
    TooManySessions(usize),
    TooManyRules(Direction, usize),
    CopyTooLong(usize),
}

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unfit::TooManySessions(n) => {
                write!(f, "{n} sessions (the kernel program takes {MAX_SESSIONS})")
            }
            Unfit::TooManyRules(d, n) => write!(
                f,
                "{n} {} rules (the kernel program takes {MAX_RULES})",
                d.as_str()
            ),
            Unfit::CopyTooLong(n) => write!(
                f,
                "copies of {n} bytes (the kernel program copies at most {MAX_COPY})"
            ),
        }
    }
}

fn words(a: u128) -> [u32; 4] {
    [
        (a >> 96) as u32,
        (a >> 64) as u32,
        (a >> 32) as u32,
        a as u32,
    ]
}

fn unwords(w: &[u32; 4]) -> u128 {
    w.iter().fold(0u128, |acc, &x| (acc << 32) | u128::from(x))
}

/// The TCX hooks of an interface the program is attached to, as the kernel names them:
/// `[ingress, egress]`, a frame the interface receives and one it sends. Only the hooks whose
/// direction has accept rules are attached: a frame of a direction no rule selects costs its
/// core nothing, not even the hook's call and the plan's look-up (docs/dataplane.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hooks(pub [bool; 2]);

impl Hooks {
    pub const BOTH: Hooks = Hooks([true, true]);
    pub const NONE: Hooks = Hooks([false, false]);

    /// The hooks `plan` needs: those whose frames, in the engine's directions, some rule may
    /// select (a live accept: a direction of rejects only selects nothing). On the host end
    /// of a VM's interface (`host_side`) the directions swap: what the VM sends, its egress,
    /// arrives at the host end's ingress hook.
    pub fn needed<T>(plan: &MirrorPlan<T>, host_side: bool) -> Hooks {
        let examined = |d: Direction| {
            plan.sessions()
                .iter()
                .any(|s| s.filter.rules(d).iter().any(|r| r.live && r.accept))
        };
        let (receives, sends) = (examined(Direction::Ingress), examined(Direction::Egress));
        if host_side {
            Hooks([sends, receives])
        } else {
            Hooks([receives, sends])
        }
    }

    /// The hooks of either.
    pub fn union(self, other: Hooks) -> Hooks {
        Hooks([self.0[0] || other.0[0], self.0[1] || other.0[1]])
    }

    /// How many hooks.
    pub fn count(self) -> usize {
        self.0.iter().filter(|h| **h).count()
    }
}

/// Lowers one interface's plan for the kernel: the engine's rules of every session, per
/// direction, flattened in evaluation order (session priority, then rule priority).
pub fn lower<T>(
    plan: &MirrorPlan<T>,
    host_side: bool,
    generation: u32,
) -> Result<Box<KIface>, Unfit> {
    let sessions = plan.sessions();
    if sessions.len() > MAX_SESSIONS {
        return Err(Unfit::TooManySessions(sessions.len()));
    }
    let longest = sessions
        .iter()
        .map(|s| usize::from(s.packet_length.get()).min(plan.max_copy_len()))
        .max()
        .unwrap_or(0);
    if longest > MAX_COPY {
        return Err(Unfit::CopyTooLong(longest));
    }
    let mut k = Box::<KIface>::default();
    k.generation = generation;
    k.host_side = u8::from(host_side);
    k.n_sessions = sessions.len() as u8;
    k.max_copy = plan.max_copy_len().min(usize::from(u16::MAX)) as u16;
    for (i, d) in [Direction::Ingress, Direction::Egress]
        .into_iter()
        .enumerate()
    {
        let mut n = 0;
        for (s, spec) in sessions.iter().enumerate() {
            for r in spec.filter.rules(d).iter().filter(|r| r.live) {
                if n == MAX_RULES {
                    let total = sessions.iter().map(|s| s.filter.len(d)).sum();
                    return Err(Unfit::TooManyRules(d, total));
                }
                k.rules[i][n] = KRule {
                    src_net: words(r.src_net),
                    src_mask: words(r.src_mask),
                    dst_net: words(r.dst_net),
                    dst_mask: words(r.dst_mask),
                    sport_lo: r.sport.0,
                    sport_hi: r.sport.1,
                    dport_lo: r.dport.0,
                    dport_hi: r.dport.1,
                    version: match r.version {
                        IpVersion::V4 => 4,
                        IpVersion::V6 => 6,
                    },
                    protocol: r.protocol.unwrap_or(0),
                    any_protocol: u8::from(r.protocol.is_none()),
                    ports: u8::from(r.ports),
                    accept: u8::from(r.accept),
                    session: s as u8,
                    pad: [0; 2],
                };
                n += 1;
            }
        }
        k.n_rules[i] = n as u16;
    }
    for (s, spec) in sessions.iter().enumerate() {
        k.packet_length[s] = spec.packet_length.get();
    }
    Ok(k)
}

/// One copy the kernel selected.
#[derive(Clone, Copy, Debug)]
pub struct KernelCopy<'a> {
    /// The plan generation the session index refers to.
    pub generation: u32,
    pub ifindex: u32,
    /// Index of the session in the interface's plan.
    pub session: usize,
    /// The frame's length on the wire, VLAN tag included.
    pub wire_len: usize,
    /// Bytes of the copy, VLAN tag included.
    pub copy_len: usize,
    pub outgoing: bool,
    /// The tag the kernel held apart from the frame (TPID, TCI), to be put back at byte 12.
    pub vlan: Option<(u16, u16)>,
    /// The packet as the kernel parsed it (the engine's [`Packet`]).
    pub packet: Packet,
    /// The first bytes of the frame as the kernel holds it (without the tag in `vlan`).
    pub data: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads one copy's record (layout: `struct record` in bpf/select.bpf.c).
fn parse_record(b: &[u8]) -> Option<KernelCopy<'_>> {
    if b.len() < RECORD_LEN {
        return None;
    }
    let data_len = usize::from(u16_at(b, 14));
    let data = b.get(RECORD_LEN..RECORD_LEN + data_len)?;
    let addr = |at: usize| {
        let w = [
            u32_at(b, at),
            u32_at(b, at + 4),
            u32_at(b, at + 8),
            u32_at(b, at + 12),
        ];
        unwords(&w)
    };
    let version = if b[18] == 6 {
        IpVersion::V6
    } else {
        IpVersion::V4
    };
    Some(KernelCopy {
        generation: u32_at(b, 0),
        ifindex: u32_at(b, 4),
        wire_len: u32_at(b, 8) as usize,
        copy_len: usize::from(u16_at(b, 12)),
        session: usize::from(b[16]),
        outgoing: b[17] != 0,
        vlan: (b[21] != 0).then(|| (u16_at(b, 24), u16_at(b, 22))),
        packet: Packet {
            version,
            src: addr(32),
            dst: addr(48),
            protocol: b[19],
            ports: (b[20] != 0).then(|| (u16_at(b, 26), u16_at(b, 28))),
            non_first_fragment: b[30] != 0,
            fragment: b[31] != 0,
        },
        data,
    })
}

/// Hands `each` the copies of one ring record: a CPU's batch, its records back to back, each
/// starting at a multiple of 8 bytes (`struct batch` in bpf/select.bpf.c).
/// Returns how many, and whether bytes were left that do not parse as a record (the program
/// and the agent disagree on the layout, a bug; what follows is lost).
fn batch_records(mut b: &[u8], mut each: impl FnMut(KernelCopy<'_>)) -> (usize, bool) {
    let mut n = 0;
    while !b.is_empty() {
        let Some(c) = parse_record(b) else {
            return (n, true);
        };
        let next = (RECORD_LEN + c.data.len()).next_multiple_of(8);
        b = b.get(next..).unwrap_or_default();
        each(c);
        n += 1;
    }
    (n, false)
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Selection counters of one interface, summed over the CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Frames the program looked at.
    pub seen: u64,
    /// Copies written to the ring.
    pub selected: u64,
    /// Selected copies lost because the ring was full.
    pub ring_full: u64,
}

impl KernelStats {
    /// Frames selected, copied or lost to a full ring: unlike `selected`, never goes down (a
    /// batch the ring refuses moves its copies from `selected` to `ring_full`).
    pub fn taken(&self) -> u64 {
        self.selected.wrapping_add(self.ring_full)
    }
}

/// Entries of the program's `batches`: the highest possible CPU's number and one (the
/// kernel's `nr_cpu_ids`, which `bpf_get_smp_processor_id` stays below), from
/// `/sys/devices/system/cpu/possible` (`0-3`, `0,2`, `0-1,4-7`, ...).
fn cpu_slots(possible: &str) -> Option<u32> {
    possible
        .trim()
        .split([',', '-'])
        .map(|n| n.trim().parse::<u32>().ok())
        .try_fold(None::<u32>, |top, n| Some(top.max(Some(n?))))?
        .and_then(|top| top.checked_add(1))
}

/// Whether `mib` MiB can size the kernel's ring: a power of two from 1 to 1024 (the kernel
/// wants a power-of-two number of pages; below 1 MiB a drain thread's pause fills it).
pub fn ring_mib_ok(mib: u32) -> bool {
    mib.is_power_of_two() && mib <= 1024
}

/// [`ring_mib_ok`] for a size in bytes.
pub fn check_ring_bytes(bytes: usize) -> Result<(), String> {
    match u32::try_from(bytes >> 20) {
        Ok(mib) if bytes & ((1 << 20) - 1) == 0 && ring_mib_ok(mib) => Ok(()),
        _ => Err(format!(
            "the kernel ring must be a power of two from 1 to 1024 MiB, not {bytes} bytes"
        )),
    }
}

/// Whether plans may hold `interfaces` interfaces in the kernel: 1 to [`MAX_IFACES`] (the
/// agent's `--kernel-max-interfaces`).
pub fn check_interfaces(interfaces: u32) -> Result<(), String> {
    if (1..=MAX_IFACES).contains(&interfaces) {
        Ok(())
    } else {
        Err(format!(
            "the kernel program takes from 1 to {MAX_IFACES} interfaces, not {interfaces}"
        ))
    }
}

/// A plan's table ([`TABLE_ENTRIES`] × [`TABLE_SLOTS`] slots of (interface index, entry)):
/// the `n`-th of `ifindexes` has its plan at entry `TABLE_ENTRIES + n`, in the first free slot
/// of the [`PROBES`] from its first place ([`table_slots`]) or, when all of those are taken,
/// from its second, where the program looks for it. With at most [`MAX_IFACES`] interfaces
/// the table is at most a quarter full; an interface finding all 32 of its slots taken (not
/// met with any index pattern a host makes: `tests/kernel_plans.rs`) is refused with the
/// plan.
pub fn plan_table(ifindexes: impl IntoIterator<Item = u32>) -> io::Result<Vec<(u32, u32)>> {
    let mut table = vec![(0u32, 0u32); (TABLE_ENTRIES * TABLE_SLOTS) as usize];
    for (n, ifindex) in ifindexes.into_iter().enumerate() {
        if ifindex == 0 {
            return Err(other(
                "interface index 0 cannot be planned (it marks a free slot)",
            ));
        }
        let entry = TABLE_ENTRIES + u32::try_from(n).map_err(other)?;
        let slots = table_slots(ifindex).into_iter().flat_map(|(part, first)| {
            (0..PROBES)
                .map(move |i| (part * TABLE_SLOTS + ((first + i) & (TABLE_SLOTS - 1))) as usize)
        });
        let mut placed = false;
        for at in slots {
            if table[at].0 == ifindex {
                return Err(other(format!("interface index {ifindex} planned twice")));
            }
            if table[at].0 == 0 {
                table[at] = (ifindex, entry);
                placed = true;
                break;
            }
        }
        if !placed {
            return Err(other(format!(
                "interface index {ifindex}: the {} slots of its two places in the plan table are taken",
                2 * PROBES
            )));
        }
    }
    Ok(table)
}

/// A plan array as the program reads it (bpf/select.bpf.c, `plan_array`): the table of
/// [`plan_table`], then each interface's plan, in the order of `plans`; room for the
/// default number of interfaces ([`KERNEL_INTERFACES`]).
pub fn plan_array(plans: &[(u32, Box<KIface>)]) -> io::Result<Array<MapData, KIface>> {
    let table = plan_table(plans.iter().map(|(ifindex, _)| *ifindex))?;
    fill_plan_array(&table, plans, KERNEL_INTERFACES)
}

/// Whether `interfaces` plans fit in arrays with room for `room`.
fn check_room(interfaces: usize, room: u32) -> io::Result<()> {
    if interfaces > room as usize {
        return Err(other(format!(
            "{interfaces} interfaces to mirror in the kernel, room for {room} \
             (--kernel-max-interfaces)"
        )));
    }
    Ok(())
}

/// [`plan_array`] with the table of `plans` already made, with room for `room` interfaces.
fn fill_plan_array(
    table: &[(u32, u32)],
    plans: &[(u32, Box<KIface>)],
    room: u32,
) -> io::Result<Array<MapData, KIface>> {
    check_room(plans.len(), room)?;
    let mut array = PlanArray::create(TABLE_ENTRIES + room, 0).map_err(other)?;
    for (part, slots) in table.chunks(TABLE_SLOTS as usize).enumerate() {
        let part = u32::try_from(part).map_err(other)?;
        array
            .set(part, KIface::table_part(slots).as_ref(), 0)
            .map_err(other)?;
    }
    for (at, (_, plan)) in plans.iter().enumerate() {
        let entry = TABLE_ENTRIES + u32::try_from(at).map_err(other)?;
        array.set(entry, plan.as_ref(), 0).map_err(other)?;
    }
    Ok(array)
}

/// The loaded program, its maps and its attachments.
pub struct KernelSelector {
    ebpf: Ebpf,
    ring: RingBuf<MapData>,
    /// Unread bytes past which a copy wakes a polling drain thread ([`wake_bytes`]).
    wake_bytes: usize,
    /// Waits for the ring's wake-ups (while the drain thread polls).
    woken: WakeWait,
    /// Rung to end a wait early ([`KernelSelector::doorbell`]).
    doorbell: Arc<Doorbell>,
    /// How the drain thread waits (`consumer` in the program): 1 = polling, 0 = asleep.
    consumer: Array<MapData, u32>,
    plans: ArrayOfMaps<MapData, PlanArray>,
    stats: PerCpuArray<MapData, KCounters>,
    /// Each planned interface's entry in `stats` (by index), kept while it stays planned.
    stats_slots: StdHashMap<u32, u32>,
    /// Entries of `stats` no interface holds, the longest free first (a run still on an old
    /// plan may count one more frame in a slot just handed back).
    free_slots: VecDeque<u32>,
    /// Ring records whose tail did not parse ([`KernelSelector::malformed`]).
    malformed: u64,
    /// Ring records read ([`KernelSelector::ring_records`]).
    records: u64,
    /// Interfaces a plan may hold: the room of the object loaded ([`KernelSelector::room`]).
    room: u32,
    /// The kernel's announcements of deleted interfaces (`None`: could not subscribe; every
    /// kept link is then checked when its interface is attached to again).
    watch: Option<LinkWatch>,
    /// Interfaces whose links must be checked before they are trusted: announcements were
    /// lost since they were made.
    unverified: HashSet<u32>,
    /// Interfaces were announced deleted (or announcements lost) since the caller last asked
    /// ([`KernelSelector::forget_deleted`]).
    deletions_seen: bool,
    /// Whether a failed check was logged already.
    check_failed_logged: bool,
    /// Attachments made ([`KernelSelector::attachments_made`]).
    attachments_made: u64,
    /// The program's links on each interface's hooks ([`Hooks`]), by index (dropped:
    /// detached); an interface has at least one.
    links: StdHashMap<u32, [Option<SchedClassifierLink>; 2]>,
}

const PROGRAMS: [(&str, TcAttachType); 2] = [
    ("tmirror_ingress", TcAttachType::Ingress),
    ("tmirror_egress", TcAttachType::Egress),
];

/// Loads the object's programs into the kernel, each on a thread of its own: the verifier
/// takes about a third of a second for each of them (on a 2-vCPU Xeon), and the agent
/// mirrors nothing until both are in.
fn load_programs(ebpf: &mut Ebpf) -> io::Result<()> {
    let mut programs = Vec::with_capacity(PROGRAMS.len());
    for (name, program) in ebpf.programs_mut() {
        if PROGRAMS.iter().any(|(n, _)| *n == name) {
            let p: &mut SchedClassifier = program.try_into().map_err(other)?;
            programs.push((name.to_string(), p));
        }
    }
    for (name, _) in PROGRAMS {
        if !programs.iter().any(|(n, _)| n == name) {
            return Err(other(format!("program {name} missing from the object")));
        }
    }
    std::thread::scope(|scope| {
        let loading: Vec<_> = programs
            .into_iter()
            .map(|(name, p)| {
                scope.spawn(move || p.load().map_err(|e| other(format!("{name}: {e}"))))
            })
            .collect();
        loading
            .into_iter()
            .try_for_each(|l| l.join().expect("a program's load does not panic"))
    })
}

impl KernelSelector {
    /// Loads and verifies the program and creates its maps, with a ring of the default size
    /// ([`RING_BYTES`]) and room for the default number of interfaces.
    pub fn load() -> io::Result<KernelSelector> {
        KernelSelector::load_with_ring(RING_BYTES)
    }

    /// [`KernelSelector::load_with`] with room for the default number of interfaces
    /// ([`KERNEL_INTERFACES`]).
    pub fn load_with_ring(ring_bytes: usize) -> io::Result<KernelSelector> {
        KernelSelector::load_with(ring_bytes, KERNEL_INTERFACES)
    }

    /// Loads and verifies the program and creates its maps, with a ring of `ring_bytes` (a
    /// power of two from 1 MiB to 1 GiB: [`check_ring_bytes`]), and plans with room for
    /// `interfaces` interfaces (1 to [`MAX_IFACES`], rounded up to one of [`KERNEL_ROOMS`];
    /// each interface of room takes 10 KiB in each plan array, two of which exist while a
    /// plan is swapped). Fails on kernels without BPF ring
    /// buffers, map-in-map or BTF-less loading of these programs.
    pub fn load_with(ring_bytes: usize, interfaces: u32) -> io::Result<KernelSelector> {
        check_ring_bytes(ring_bytes).map_err(io::Error::other)?;
        check_interfaces(interfaces).map_err(io::Error::other)?;
        let (room, object) = OBJECTS
            .iter()
            .copied()
            .find(|(room, _)| *room >= interfaces)
            .expect("the largest room is MAX_IFACES");
        let wake = wake_bytes(ring_bytes);
        // One batch per CPU the kernel may run the program on (`batches`).
        let possible = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
        let cpus = cpu_slots(&possible).ok_or_else(|| {
            other(format!(
                "cannot read the possible CPUs from /sys/devices/system/cpu/possible: {possible:?}"
            ))
        })?;
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("copies", u32::try_from(ring_bytes).map_err(other)?)
            .map_max_entries("batches", cpus)
            // The object's template of the plan arrays is not the one the kernel checks them
            // against (aya makes that from the `plans` map's own definition): one entry.
            .map_max_entries("plan_template", 1)
            .override_global("wake_bytes", &u32::try_from(wake).map_err(other)?, true)
            .load(object)
            .map_err(|e| {
                other(format!(
                    "loading the BPF program with a {} MiB copy ring (--kernel-ring-mb; a \
                     smaller ring needs less locked memory): {e}",
                    ring_bytes >> 20
                ))
            })?;
        load_programs(&mut ebpf)?;
        let take = |ebpf: &mut Ebpf, name: &str| {
            ebpf.take_map(name)
                .ok_or_else(|| other(format!("map {name} missing from the object")))
        };
        let ring = RingBuf::try_from(take(&mut ebpf, "copies")?).map_err(other)?;
        let doorbell = Arc::new(Doorbell::new()?);
        let woken = WakeWait::new(ring.as_fd(), doorbell.as_fd())?;
        let consumer = Array::try_from(take(&mut ebpf, "consumer")?).map_err(other)?;
        let plans = ArrayOfMaps::try_from(take(&mut ebpf, "plans")?).map_err(other)?;
        let stats = PerCpuArray::try_from(take(&mut ebpf, "stats")?).map_err(other)?;
        Ok(KernelSelector {
            ebpf,
            ring,
            wake_bytes: wake,
            woken,
            doorbell,
            consumer,
            plans,
            stats,
            stats_slots: StdHashMap::new(),
            free_slots: (0..MAX_IFACES).collect(),
            malformed: 0,
            records: 0,
            room,
            watch: LinkWatch::open()
                .inspect_err(|e| {
                    tracing::warn!(
                        error = %e,
                        "cannot follow the kernel's link announcements; attachments are \
                         checked once a second instead"
                    )
                })
                .ok(),
            unverified: HashSet::new(),
            deletions_seen: false,
            check_failed_logged: false,
            attachments_made: 0,
            links: StdHashMap::new(),
        })
    }

    /// Loads the program with a ring of `ring_bytes` and checks that it attaches to TCX hooks
    /// here (on the loopback interface, detached at once): what the agent needs of the
    /// kernel, all at start.
    pub fn probe(ring_bytes: usize, interfaces: u32) -> io::Result<KernelSelector> {
        let mut s = KernelSelector::load_with(ring_bytes, interfaces)?;
        let lo = s.attach("lo")?;
        s.detach(lo);
        Ok(s)
    }

    fn program(&mut self, i: usize) -> &mut SchedClassifier {
        self.ebpf
            .program_mut(PROGRAMS[i].0)
            .expect("loaded")
            .try_into()
            .expect("a classifier")
    }

    /// Attaches the program to both TCX hooks of `interface`: [`KernelSelector::attach_hooks`]
    /// with [`Hooks::BOTH`].
    pub fn attach(&mut self, interface: &str) -> io::Result<u32> {
        self.attach_hooks(interface, Hooks::BOTH)
    }

    /// Makes the program attached to exactly `hooks` of `interface`, attaching to those it is
    /// not attached to yet and detaching from the others; returns the interface's index. An
    /// interface deleted and created again under the same index lost the program with the old
    /// device: the kernel's announcement of the deletion dropped its links
    /// ([`KernelSelector::forget_deleted`]), and it is attached to anew. Should an attachment
    /// fail, the interface keeps the hooks it had.
    pub fn attach_hooks(&mut self, interface: &str, hooks: Hooks) -> io::Result<u32> {
        self.attach_with(interface, |_| hooks)
    }

    /// Attaches the program to `hooks` of `interface` and keeps it on those it is attached to
    /// already (on this device): what a plan about to be installed needs, while the plan in
    /// force may still select elsewhere ([`KernelSelector::keep_hooks`] then trims).
    pub fn add_hooks(&mut self, interface: &str, hooks: Hooks) -> io::Result<u32> {
        self.attach_with(interface, |had| had.union(hooks))
    }

    /// Detaches the program from the hooks of the interface with index `ifindex` not in
    /// `keep`; never attaches, and looks nothing up.
    pub fn keep_hooks(&mut self, ifindex: u32, keep: Hooks) {
        let Some(links) = self.links.get_mut(&ifindex) else {
            return;
        };
        for (h, link) in links.iter_mut().enumerate() {
            if !keep.0[h] {
                *link = None;
            }
        }
        if links.iter().all(Option::is_none) {
            self.links.remove(&ifindex);
        }
    }

    /// [`KernelSelector::attach_hooks`] with the hooks `want` makes of those the interface's
    /// device has.
    fn attach_with(
        &mut self,
        interface: &str,
        want: impl FnOnce(Hooks) -> Hooks,
    ) -> io::Result<u32> {
        self.drop_deleted();
        let ifindex = crate::sys::ring::interface_index(interface)?;
        if self.links.contains_key(&ifindex) && !self.still_attached(ifindex) {
            self.links.remove(&ifindex);
        }
        let had = self.hooks(ifindex);
        let hooks = want(had);
        if had == hooks {
            return Ok(ifindex);
        }
        // New links are made first, in order (should the second fail, the first detaches as
        // it drops), then the ones no longer wanted dropped.
        let mut added: [Option<SchedClassifierLink>; 2] = [None, None];
        for (h, link) in added.iter_mut().enumerate() {
            if hooks.0[h] && !had.0[h] {
                *link = Some(self.attach_hook(h, interface, ifindex)?);
            }
        }
        if hooks == Hooks::NONE {
            self.links.remove(&ifindex);
            return Ok(ifindex);
        }
        if had == Hooks::NONE {
            self.attachments_made += 1;
        }
        let links = self.links.entry(ifindex).or_default();
        for (h, new) in added.into_iter().enumerate() {
            if !hooks.0[h] {
                links[h] = None;
            } else if new.is_some() {
                links[h] = new;
            }
        }
        Ok(ifindex)
    }

    /// The hooks of the interface with index `ifindex` the program is attached to (as far as
    /// the last look knew: see [`KernelSelector::attach_hooks`]).
    pub fn hooks(&self, ifindex: u32) -> Hooks {
        match self.links.get(&ifindex) {
            Some(l) => Hooks([l[0].is_some(), l[1].is_some()]),
            None => Hooks::NONE,
        }
    }

    /// Drops the links of the interfaces the kernel announced deleted since the last look;
    /// true when any were announced (or announcements were lost) since the last call, also
    /// those [`KernelSelector::attach`] read: the caller should look its interfaces up again.
    pub fn forget_deleted(&mut self) -> bool {
        self.drop_deleted();
        std::mem::take(&mut self.deletions_seen)
    }

    /// Reads the announcements that wait and drops the deleted interfaces' links.
    fn drop_deleted(&mut self) {
        let Some(watch) = &mut self.watch else {
            return;
        };
        let deleted = watch.deleted();
        if deleted.lost {
            self.deletions_seen = true;
            self.unverified = self.links.keys().copied().collect();
        }
        for ifindex in deleted.indexes {
            if self.links.remove(&ifindex).is_some() {
                tracing::info!(ifindex, "interface deleted: its attachment is dropped");
                self.deletions_seen = true;
            }
        }
    }

    /// Whether the links kept for `ifindex` are still attached to it. Trusted without a
    /// question while the kernel's announcements are followed; otherwise the kernel is asked
    /// (under its RTNL lock) where the link is attached: 0 once its device is gone.
    fn still_attached(&mut self, ifindex: u32) -> bool {
        if self.watch.is_some() && !self.unverified.remove(&ifindex) {
            return true;
        }
        let Some(links) = self.links.get(&ifindex) else {
            return false;
        };
        let Some(link) = links.iter().flatten().next() else {
            return false;
        };
        let answer = link.fd().map_err(other).and_then(|fd| tcx_link_ifindex(fd));
        match answer {
            Ok(i) if i == ifindex => true,
            Ok(_) => {
                tracing::info!(
                    ifindex,
                    "interface created again under its index; attaching anew"
                );
                false
            }
            // Kept as they are: a failed question is not a deleted interface.
            Err(e) => {
                if !self.check_failed_logged {
                    tracing::warn!(ifindex, error = %e, "cannot ask the kernel where an attachment is");
                    self.check_failed_logged = true;
                }
                true
            }
        }
    }

    /// Stops following the kernel's link announcements, as when the subscription cannot be
    /// made: kept links are then checked with the kernel each time their interface is
    /// attached to again. For tests of that path.
    pub fn without_link_watch(mut self) -> KernelSelector {
        self.watch = None;
        self
    }

    /// Interfaces a plan may hold: the smallest of [`KERNEL_ROOMS`] that holds the number
    /// asked for at load.
    pub fn room(&self) -> u32 {
        self.room
    }

    /// Attachments made since the program was loaded (an interface's hooks count once, and a
    /// hook added to an interface attached to already does not count): one per interface, and
    /// one more each time an interface is created again or comes back after it needed no hook.
    pub fn attachments_made(&self) -> u64 {
        self.attachments_made
    }

    /// Attaches program `i` of [`PROGRAMS`] to its hook of `interface`, whose index was just
    /// looked up as `ifindex`. The loader looks the name up again: should the interface have
    /// been deleted, or created anew, in between, the link is not on the device it would be
    /// filed under (and the old one's deletion would drop it), so it is dropped and the
    /// attachment refused, to be tried again at the next look.
    fn attach_hook(
        &mut self,
        i: usize,
        interface: &str,
        ifindex: u32,
    ) -> io::Result<SchedClassifierLink> {
        let p = self.program(i);
        let link = p
            .attach_with_options(
                interface,
                PROGRAMS[i].1,
                TcAttachOptions::TcxOrder(LinkOrder::default()),
            )
            .and_then(|id| p.take_link(id))
            .map_err(|e| other(format!("cannot attach to {interface}: {e}")))?;
        match link.fd().map_err(other).and_then(|fd| tcx_link_ifindex(fd)) {
            Ok(on) if on == ifindex => Ok(link),
            Ok(0) => Err(other(format!(
                "{interface} was deleted while the program was being attached"
            ))),
            Ok(on) => Err(other(format!(
                "{interface} was created anew while the program was being attached (index \
                 {ifindex}, then {on})"
            ))),
            // Kept, as `still_attached` keeps links it cannot ask about: a failed question
            // is not another device.
            Err(e) => {
                if !self.check_failed_logged {
                    tracing::warn!(ifindex, error = %e, "cannot ask the kernel where an attachment is");
                    self.check_failed_logged = true;
                }
                Ok(link)
            }
        }
    }

    /// Detaches from the interface with index `ifindex` (gone interfaces took their links
    /// with them; forgetting them is all that is left).
    pub fn detach(&mut self, ifindex: u32) {
        self.links.remove(&ifindex);
    }

    /// Interfaces (by index) the program is attached to.
    pub fn attached(&self) -> impl Iterator<Item = u32> + '_ {
        self.links.keys().copied()
    }

    /// Replaces every interface's plan at once: a new plan array is filled completely, then
    /// swapped into the one slot the program reads, so no frame is judged by parts of two
    /// plans.
    pub fn install(&mut self, plans: &[(u32, Box<KIface>)]) -> io::Result<()> {
        check_room(plans.len(), self.room)?;
        // Placed first: an interface the table cannot take refuses the plan before any
        // counters' slot is handed out for it.
        let table = plan_table(plans.iter().map(|(ifindex, _)| *ifindex))?;
        let mut counted = Vec::with_capacity(plans.len());
        for (ifindex, plan) in plans {
            let mut plan: Box<KIface> = plan.clone();
            plan.stats_slot = self.stats_slot(*ifindex)?;
            counted.push((*ifindex, plan));
        }
        let array = fill_plan_array(&table, &counted, self.room)?;
        self.plans.set(0, &array, 0).map_err(other)?;
        // Slots of interfaces no longer planned go back once no new plan names them, to the
        // end of the queue (a run still on the old plan may count one more frame there; the
        // slot is zeroed before it is handed out again, after every other free slot).
        let planned: std::collections::HashSet<u32> = plans.iter().map(|(i, _)| *i).collect();
        let gone: Vec<u32> = self
            .stats_slots
            .keys()
            .filter(|i| !planned.contains(i))
            .copied()
            .collect();
        for ifindex in gone {
            if let Some(slot) = self.stats_slots.remove(&ifindex) {
                self.free_slots.push_back(slot);
            }
        }
        Ok(())
    }

    /// The counters' slot of `ifindex`: the one it has (its counters carry on), or a free one,
    /// zeroed.
    fn stats_slot(&mut self, ifindex: u32) -> io::Result<u32> {
        if let Some(&slot) = self.stats_slots.get(&ifindex) {
            return Ok(slot);
        }
        let slot = self
            .free_slots
            .pop_front()
            .ok_or_else(|| other(format!("more than {MAX_IFACES} interfaces to mirror")))?;
        let cpus = nr_cpus().map_err(|(_, e)| e)?;
        let zero = PerCpuValues::try_from(vec![KCounters::default(); cpus]).map_err(other)?;
        if let Err(e) = self.stats.set(slot, zero, 0) {
            self.free_slots.push_front(slot);
            return Err(other(e));
        }
        self.stats_slots.insert(ifindex, slot);
        Ok(slot)
    }

    /// The selection counters of `ifindex`.
    pub fn stats(&self, ifindex: u32) -> KernelStats {
        let mut s = KernelStats::default();
        let Some(slot) = self.stats_slots.get(&ifindex) else {
            return s;
        };
        if let Ok(v) = self.stats.get(slot, 0) {
            // Wrapping: a CPU's `selected` wraps below zero when another CPU's timer (moved
            // there by CPU hot-unplug) counts a refused batch of it; the sum is right.
            for c in v.iter() {
                s.seen = s.seen.wrapping_add(c.seen);
                s.selected = s.selected.wrapping_add(c.selected);
                s.ring_full = s.ring_full.wrapping_add(c.ring_full);
            }
        }
        s
    }

    /// Tells the program how the drain thread waits. `true`: it polls the ring on its own
    /// at short intervals, so copies wake it only once the ring holds more than
    /// [`wake_bytes`](Self::wake_bytes); `false` (the state after [`load`](Self::load)): it
    /// sleeps until woken, and every copy wakes it.
    pub fn set_polling(&mut self, polling: bool) -> io::Result<()> {
        self.consumer.set(0, u32::from(polling), 0).map_err(other)
    }

    /// Unread bytes past which a copy wakes a polling drain thread ([`wake_bytes`]).
    pub fn wake_bytes(&self) -> usize {
        self.wake_bytes
    }

    /// The ring's descriptor (readable while it holds copies).
    pub fn ring_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.ring.as_fd()
    }

    /// Waits up to `timeout` for copies in the ring (returns at once if it holds some).
    pub fn wait(&self, timeout: Duration) -> io::Result<()> {
        let waited = wait_readable([self.ring.as_fd(), self.doorbell.as_fd()], timeout);
        self.doorbell.answer();
        waited
    }

    /// Waits up to `timeout` for the program to wake the ring's readers, whatever the ring
    /// holds: the wait of a drain thread that polls (see [`set_polling`](Self::set_polling)).
    pub fn wait_woken(&self, timeout: Duration) -> io::Result<()> {
        let waited = self.woken.wait(timeout);
        self.doorbell.answer();
        waited
    }

    /// What another thread rings to end the current or next [`KernelSelector::wait`] or
    /// [`KernelSelector::wait_woken`] at once (each answers it as it returns).
    pub fn doorbell(&self) -> Arc<Doorbell> {
        self.doorbell.clone()
    }

    /// Hands the copies in the ring to `each`, up to a batch still being written; returns how
    /// many copies it read. A CPU's batch not yet in the ring is not (its timer sends it within
    /// a millisecond of its first copy).
    pub fn drain(&mut self, mut each: impl FnMut(KernelCopy<'_>)) -> usize {
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            let (copies, malformed) = batch_records(&item, &mut each);
            n += copies;
            self.records += 1;
            self.malformed += u64::from(malformed);
        }
        n
    }

    /// Ring records that ended in bytes the agent could not read, since the program was
    /// loaded (0 unless the program writes what the agent does not expect: a bug).
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Ring records read since the program was loaded: a CPU's batch of copies each, or a
    /// single copy (one sent while the drain thread sleeps, or on a kernel without pinned BPF
    /// timers, before 6.7, where copies are not held).
    pub fn ring_records(&self) -> u64 {
        self.records
    }

    /// Runs the program `repeat` times on `frame` and returns the kernel's average time of one
    /// run: what a frame costs the core that sends or receives it (`examples/bpf_cost.rs`).
    pub fn time_runs(
        &mut self,
        frame: &[u8],
        outgoing: bool,
        repeat: u32,
    ) -> io::Result<std::time::Duration> {
        let p = self.program(usize::from(outgoing));
        let done = p
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat,
                ..TestRunOptions::default()
            })
            .map_err(other)?;
        Ok(done.duration)
    }

    /// Runs the program of `hook` on `frame` (BPF_PROG_TEST_RUN, as received or sent by the
    /// loopback interface, index 1). What it selects lands in the ring.
    pub fn test_run(&mut self, frame: &[u8], outgoing: bool) -> io::Result<()> {
        self.test_run_on(frame, outgoing, 1)
    }

    /// [`KernelSelector::test_run`] as received or sent by the interface of index `ifindex`
    /// (which must exist in this thread's network namespace).
    pub fn test_run_on(&mut self, frame: &[u8], outgoing: bool, ifindex: u32) -> io::Result<()> {
        // The head of a `struct __sk_buff` up to `ifindex` (offset 40), the rest zero: the
        // kernel takes the interface of that index as the frame's.
        let mut ctx = [0u8; 44];
        ctx[40..44].copy_from_slice(&ifindex.to_ne_bytes());
        let p = self.program(usize::from(outgoing));
        p.test_run(TestRunOptions {
            data_in: Some(frame),
            ctx_in: Some(&ctx),
            ..TestRunOptions::default()
        })
        .map(drop)
        .map_err(other)
    }
}

#[cfg(test)]
mod tests {
    use super::{batch_records, cpu_slots, RECORD_LEN};

    /// A record as the program writes it into a batch: header, `data_len` bytes, padding to 8.
    fn record(ifindex: u32, data_len: u16) -> Vec<u8> {
        let mut r = vec![0u8; RECORD_LEN];
        r[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        r[12..14].copy_from_slice(&data_len.to_ne_bytes());
        r[14..16].copy_from_slice(&data_len.to_ne_bytes());
        r.extend(std::iter::repeat_n(0xab, usize::from(data_len)));
        r.resize(r.len().next_multiple_of(8), 0);
        r
    }

    fn read(b: &[u8]) -> (Vec<(u32, usize)>, bool) {
        let mut seen = Vec::new();
        let (n, malformed) = batch_records(b, |c| seen.push((c.ifindex, c.data.len())));
        assert_eq!(n, seen.len());
        (seen, malformed)
    }

    #[test]
    fn a_batch_is_read_record_by_record_and_a_tail_that_does_not_parse_is_reported() {
        let mut batch = record(3, 60);
        batch.extend(record(4, 96));
        assert_eq!(read(&batch), (vec![(3, 60), (4, 96)], false));
        // A record without the padding after its data (the reader does not need it).
        let lone = &record(5, 61)[..RECORD_LEN + 61];
        assert_eq!(read(lone), (vec![(5, 61)], false));
        // A record cut short, after a whole one: the whole one is read, the rest reported.
        batch.truncate(batch.len() - 40);
        assert_eq!(read(&batch), (vec![(3, 60)], true));
        assert_eq!(read(&[]), (vec![], false));
    }

    #[test]
    fn batches_reach_the_highest_possible_cpu() {
        assert_eq!(cpu_slots("0\n"), Some(1));
        assert_eq!(cpu_slots("0-3\n"), Some(4));
        assert_eq!(cpu_slots("0,2"), Some(3), "a gap still needs its slot");
        assert_eq!(cpu_slots("0-1,4-7"), Some(8));
        assert_eq!(cpu_slots(""), None);
        assert_eq!(cpu_slots("0-x"), None);
    }
}
