//! One source interface's pipeline: a thread that drains the interface's capture ring, lets
//! the packet engine decide each frame, encapsulates the selected copies and sends them in
//! batches. Its plan is swapped in place when the sessions change, so an update never closes
//! the ring or loses the frames in it.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tmirror_model::{CaptureSide, Direction};
use tmirror_packet::{MirrorPlan, OuterIpv4, OuterTemplate, Verdict, OUTER_IPV4_OVERHEAD};
use tracing::{info, warn};

use crate::counters::{InterfaceCounters, SessionCounters};
use crate::sys::nexthop;
use crate::sys::packet_send::PacketSender;
use crate::sys::raw_send::{Batch, RawSender};
use crate::sys::ring::{Frame, RingConfig, RxRing};

/// How copies leave the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SendMode {
    /// A raw IPv4 socket: the kernel routes each copy and resolves its next hop.
    Raw,
    /// Complete Ethernet frames through an AF_PACKET socket to the underlay device, the next
    /// hop's MAC address taken from the kernel's tables (copies to a target not resolved yet
    /// take the raw path), through the device's queueing discipline. The default: measured
    /// about 40% less CPU per copy than `Raw`, and lossless where `Raw` dropped from the ring
    /// (docs/dataplane.md).
    #[default]
    Packet,
    /// As `Packet`, bypassing the queueing discipline (`PACKET_QDISC_BYPASS`): the frames go
    /// to the driver directly; tc egress hooks and taps (tcpdump) on the underlay device do not
    /// see them.
    PacketBypass,
}

impl SendMode {
    pub const NAMES: [&'static str; 3] = ["raw", "packet", "packet-bypass"];

    pub fn name(self) -> &'static str {
        match self {
            SendMode::Raw => "raw",
            SendMode::Packet => "packet",
            SendMode::PacketBypass => "packet-bypass",
        }
    }
}

impl std::fmt::Display for SendMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SendMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "raw" => Ok(SendMode::Raw),
            "packet" => Ok(SendMode::Packet),
            "packet-bypass" => Ok(SendMode::PacketBypass),
            _ => Err(format!(
                "unknown send mode {s:?}: one of {}",
                SendMode::NAMES.join(", ")
            )),
        }
    }
}

/// Where one session's copies go, and what they are counted on.
#[derive(Debug)]
pub struct Target {
    pub ip: Ipv4Addr,
    pub counters: Arc<SessionCounters>,
}

/// What a pipeline does with the frames of its interface.
pub struct PipelinePlan {
    pub mirror: MirrorPlan<Target>,
    pub capture_side: CaptureSide,
    /// Outer headers per session (index as in `mirror.sessions()`), for the raw sender.
    pub outer: Vec<OuterTemplate>,
    /// The configured outer source address (unspecified: the kernel's choice).
    pub underlay_ip: Ipv4Addr,
}

impl PipelinePlan {
    /// Bytes of each frame the capture ring must keep for this plan.
    pub fn snap_len(&self) -> u32 {
        self.mirror.snap_len() as u32
    }

    /// Builds the outer header templates for the plan's sessions from `underlay_ip`
    /// (unspecified: the kernel fills in the source address of the route to each target).
    pub fn new(
        mirror: MirrorPlan<Target>,
        capture_side: CaptureSide,
        underlay_ip: Ipv4Addr,
    ) -> Self {
        let outer = mirror
            .sessions()
            .iter()
            .map(|s| OuterIpv4::new([0; 6], [0; 6], underlay_ip, s.target.ip).template())
            .collect();
        PipelinePlan {
            mirror,
            capture_side,
            outer,
            underlay_ip,
        }
    }

    /// The engine's direction of a frame: `ingress` is what the source receives. On the host
    /// side of a VM's interface, what the host end receives is what the VM sent.
    fn direction(&self, outgoing: bool) -> Direction {
        match (self.capture_side, outgoing) {
            (CaptureSide::Guest, false) | (CaptureSide::Host, true) => Direction::Ingress,
            (CaptureSide::Guest, true) | (CaptureSide::Host, false) => Direction::Egress,
        }
    }
}

/// Settings shared by every pipeline of the agent.
#[derive(Clone, Copy, Debug)]
pub struct PipelineConfig {
    pub ring: RingConfig,
    /// Copies sent per `sendmmsg`.
    pub batch: usize,
    /// Largest outer frame (underlay MTU + Ethernet header).
    pub max_frame: usize,
    pub sndbuf: usize,
    pub send_mode: SendMode,
}

/// A running pipeline.
pub struct Pipeline {
    plan: Arc<ArcSwap<PipelinePlan>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts the thread for `interface`. When the interface does not exist yet (a VM not yet
    /// started) or disappears, the thread waits for it and captures as soon as it is there.
    /// With `select`, only the frames to or from that address are captured (in the kernel).
    pub fn start(
        interface: String,
        select: Option<IpAddr>,
        plan: PipelinePlan,
        config: PipelineConfig,
        counters: Arc<InterfaceCounters>,
    ) -> io::Result<Pipeline> {
        let plan = Arc::new(ArcSwap::from_pointee(plan));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            interface: interface.clone(),
            select,
            plan: plan.clone(),
            stop: stop.clone(),
            config,
            counters,
        };
        let thread = std::thread::Builder::new()
            .name(match select {
                Some(addr) => format!("capture {interface} {addr}"),
                None => format!("capture {interface}"),
            })
            .spawn(move || worker.run())?;
        Ok(Pipeline {
            plan,
            stop,
            thread: Some(thread),
        })
    }

    /// Replaces the plan; the thread picks it up at its next block.
    pub fn update(&self, plan: PipelinePlan) {
        self.plan.store(Arc::new(plan));
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    interface: String,
    select: Option<IpAddr>,
    plan: Arc<ArcSwap<PipelinePlan>>,
    stop: Arc<AtomicBool>,
    config: PipelineConfig,
    counters: Arc<InterfaceCounters>,
}

/// How often a waiting or stopped pipeline looks at its stop flag and its interface.
const TICK: Duration = Duration::from_millis(100);

impl Worker {
    fn run(self) {
        let mut sender = loop {
            match Sender::open(&self.config) {
                Ok(s) => break s,
                Err(e) => {
                    warn!(interface = %self.interface, error = %e, "cannot open the sender (is the agent root?)");
                    self.counters.set_state("no sender");
                    if self.sleep_or_stop() {
                        return;
                    }
                }
            }
        };
        let mut scratch = vec![0u8; self.config.max_frame + 64];
        let mut waiting_logged = false;
        while !self.stop.load(Relaxed) {
            let mut snap_len = self.plan.load().snap_len();
            let mut ring = match RxRing::open(
                &self.interface,
                self.config.ring,
                snap_len,
                self.select,
            ) {
                Ok(r) => r,
                Err(e) => {
                    if !waiting_logged {
                        info!(interface = %self.interface, error = %e, "waiting for the interface");
                        waiting_logged = true;
                    }
                    self.counters.set_state("waiting for interface");
                    if self.sleep_or_stop() {
                        return;
                    }
                    continue;
                }
            };
            waiting_logged = false;
            info!(interface = %self.interface, "capturing");
            self.counters.set_state("capturing");
            let mut last_stats = Instant::now();
            let base_drops = self.counters.ring_drops.load(Relaxed);
            loop {
                if self.stop.load(Relaxed) {
                    break;
                }
                if let Err(e) = ring.wait(TICK.as_millis() as i32) {
                    warn!(interface = %self.interface, error = %e, "capture stopped; reopening");
                    break;
                }
                // One plan per block: a batch never mixes the session indexes of two plans.
                loop {
                    let plan = self.plan.load_full();
                    if plan.snap_len() != snap_len {
                        snap_len = plan.snap_len();
                        if let Err(e) = ring.set_snap_len(snap_len) {
                            warn!(interface = %self.interface, error = %e, "cannot change the capture length");
                        }
                    }
                    sender.follow(&plan);
                    let n = ring.drain_block(|f| self.frame(&plan, f, &mut sender, &mut scratch));
                    self.flush(&plan, &mut sender);
                    if n == 0 {
                        break;
                    }
                }
                if last_stats.elapsed() >= Duration::from_millis(250) {
                    if let Ok(s) = ring.stats() {
                        self.counters
                            .ring_drops
                            .store(base_drops + s.drops, Relaxed);
                    }
                    last_stats = Instant::now();
                }
            }
            if let Ok(s) = ring.stats() {
                self.counters
                    .ring_drops
                    .store(base_drops + s.drops, Relaxed);
            }
        }
        self.counters.set_state("stopped");
    }

    /// Sleeps one tick; true when the pipeline is to stop.
    fn sleep_or_stop(&self) -> bool {
        std::thread::sleep(TICK);
        self.stop.load(Relaxed)
    }

    fn frame(&self, plan: &PipelinePlan, f: Frame<'_>, sender: &mut Sender, scratch: &mut [u8]) {
        self.counters.captured.fetch_add(1, Relaxed);
        // The kernel hands VLAN tags separately; put the tag back so that the engine sees,
        // and the copy carries, the frame as it was on the wire.
        let (data, wire_len): (&[u8], usize) = match f.vlan {
            Some((tpid, tci)) if f.data.len() >= 12 && f.data.len() + 4 <= scratch.len() => {
                let n = f.data.len() + 4;
                scratch[..12].copy_from_slice(&f.data[..12]);
                scratch[12..14].copy_from_slice(&tpid.to_be_bytes());
                scratch[14..16].copy_from_slice(&tci.to_be_bytes());
                scratch[16..n].copy_from_slice(&f.data[12..]);
                (&scratch[..n], f.wire_len as usize + 4)
            }
            _ => (f.data, f.wire_len as usize),
        };
        let direction = plan.direction(f.outgoing);
        // The ring keeps only the plan's snap length of each frame; the engine decides on
        // that prefix with the frame's length on the wire, exactly as on the whole frame.
        match plan.mirror.decide_captured(data, wire_len, direction) {
            Verdict::Mirror(m) => {
                let l2 = sender.by_frame(m.index);
                // Copies leave in the order they were captured, also across the two paths.
                let other = if l2 {
                    &sender.datagrams
                } else {
                    &sender.frames
                };
                if !other.is_empty() {
                    self.flush(plan, sender);
                }
                let hop = if l2 {
                    sender.hops.get(m.index).and_then(Option::as_ref)
                } else {
                    None
                };
                let (batch, template) = match hop {
                    Some(h) => (&mut sender.frames, &h.template),
                    None => (&mut sender.datagrams, &plan.outer[m.index]),
                };
                match m.encapsulate_frame(template, data, batch.slot()) {
                    Ok(n) => {
                        debug_assert!(n >= OUTER_IPV4_OVERHEAD);
                        match hop {
                            Some(h) => batch.commit_frame(n, h.ifindex, m.index as u32),
                            // The raw socket takes the IPv4 datagram; the kernel adds Ethernet.
                            None => batch.commit(14, n - 14, m.session.target.ip, m.index as u32),
                        }
                    }
                    Err(_) => {
                        self.counters.send_drops.fetch_add(1, Relaxed);
                    }
                }
                if batch.is_full() {
                    self.flush(plan, sender);
                }
            }
            // Not selected, not IP, or not parseable: all "not mirrored".
            _ => {
                self.counters.not_mirrored.fetch_add(1, Relaxed);
            }
        }
    }

    /// Sends what is batched and counts each copy on its session, or as a send drop.
    fn flush(&self, plan: &PipelinePlan, sender: &mut Sender) {
        if !sender.frames.is_empty() {
            if let Some(p) = &mut sender.packet {
                p.send(&mut sender.frames);
            }
            self.count(plan, &mut sender.frames);
        }
        if !sender.datagrams.is_empty() {
            sender.raw.send(&mut sender.datagrams);
            self.count(plan, &mut sender.datagrams);
        }
    }

    fn count(&self, plan: &PipelinePlan, batch: &mut Batch) {
        let sessions = plan.mirror.sessions();
        let mut dropped = 0;
        for (index, len, sent) in batch.entries() {
            if sent {
                let c = &sessions[index as usize].target.counters;
                c.packets.fetch_add(1, Relaxed);
                c.bytes
                    .fetch_add((len - (OUTER_IPV4_OVERHEAD - 14)) as u64, Relaxed);
            } else {
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.counters.send_drops.fetch_add(dropped, Relaxed);
        }
        self.counters
            .mirrored
            .fetch_add(batch.len() as u64 - dropped, Relaxed);
        batch.clear();
    }
}

/// How often the next hops of the AF_PACKET path are looked up again. Each time, one copy per
/// target goes by the raw socket, so that the kernel keeps confirming (or re-resolving) the
/// neighbour whose MAC address the other copies carry.
const RESOLVE_EVERY: Duration = Duration::from_secs(1);

/// The layer-2 way to one session's target.
struct Hop {
    template: OuterTemplate,
    ifindex: u32,
    /// The next copy takes the raw path (see [`RESOLVE_EVERY`]).
    probe: bool,
}

/// A pipeline's senders and the copies waiting in them.
struct Sender {
    raw: RawSender,
    /// Copies for the raw socket: IPv4 datagrams.
    datagrams: Batch,
    packet: Option<PacketSender>,
    /// Copies for the AF_PACKET socket: Ethernet frames.
    frames: Batch,
    /// Per session of `resolved_for`: its target's layer-2 way, if known.
    hops: Vec<Option<Hop>>,
    resolved_for: Option<Arc<PipelinePlan>>,
    resolved_at: Instant,
}

impl Sender {
    fn open(config: &PipelineConfig) -> io::Result<Sender> {
        let raw = RawSender::open(config.sndbuf, config.batch)?;
        let bypass = match config.send_mode {
            SendMode::Raw => None,
            SendMode::Packet => Some(false),
            SendMode::PacketBypass => Some(true),
        };
        let packet = match bypass.map(|b| PacketSender::open(config.sndbuf, config.batch, b)) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                warn!(error = %e, "cannot open the AF_PACKET sender; copies take the raw socket");
                None
            }
        };
        Ok(Sender {
            raw,
            datagrams: Batch::new(config.batch, config.max_frame),
            packet,
            frames: Batch::new(config.batch, config.max_frame),
            hops: Vec::new(),
            resolved_for: None,
            resolved_at: Instant::now(),
        })
    }

    /// Looks the next hops up when the plan changed or [`RESOLVE_EVERY`] passed.
    fn follow(&mut self, plan: &Arc<PipelinePlan>) {
        if self.packet.is_none() {
            return;
        }
        let same = self
            .resolved_for
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, plan));
        if same && self.resolved_at.elapsed() < RESOLVE_EVERY {
            return;
        }
        let src = Some(plan.underlay_ip).filter(|ip| !ip.is_unspecified());
        let mut known: Vec<(Ipv4Addr, Option<nexthop::NextHop>)> = Vec::new();
        self.hops = plan
            .mirror
            .sessions()
            .iter()
            .map(|s| {
                let ip = s.target.ip;
                let hop = match known.iter().find(|(k, _)| *k == ip) {
                    Some((_, h)) => h.clone(),
                    None => {
                        let h = nexthop::resolve(ip, src);
                        known.push((ip, h.clone()));
                        h
                    }
                };
                hop.map(|h| Hop {
                    template: OuterIpv4::new(h.src_mac, h.dst_mac, h.src_ip, ip).template(),
                    ifindex: h.ifindex,
                    probe: true,
                })
            })
            .collect();
        self.resolved_for = Some(plan.clone());
        self.resolved_at = Instant::now();
    }

    /// Whether session `index`'s next copy goes as a frame through the AF_PACKET socket.
    fn by_frame(&mut self, index: usize) -> bool {
        match self.hops.get_mut(index) {
            Some(Some(h)) if self.packet.is_some() => !std::mem::take(&mut h.probe),
            _ => false,
        }
    }
}
