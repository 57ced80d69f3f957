//! One source interface's pipeline: a thread that drains the interface's capture ring, lets
//! the packet engine decide each frame, encapsulates the selected copies and sends them in
//! batches. Its plan is swapped in place when the sessions change, so an update never closes
//! the ring or loses the frames in it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tmirror_model::{CaptureSide, Direction};
use tmirror_packet::{Mirror, MirrorPlan, Verdict};
use tracing::{info, warn};

use crate::capture::{AddressSelector, Capture, CaptureBackend, CaptureSource, Captured};
use crate::counters::InterfaceCounters;
use crate::forward::Forwarder;
use crate::sys::ring::RingConfig;
pub use crate::target::Target;

/// How copies leave the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SendMode {
    /// A raw IP socket (one per family): the kernel routes each copy and resolves its next hop.
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

/// What a pipeline does with the frames of its interface.
pub struct PipelinePlan {
    pub mirror: MirrorPlan<Target>,
    pub capture_side: CaptureSide,
    /// The configured outer source addresses.
    pub underlay: Underlay,
}

/// The configured outer source address of each family; `None`: the kernel's choice for each
/// target (the preferred source of its route).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Underlay {
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

impl Underlay {
    /// The configured source for copies to `target` (of its family).
    pub fn source_for(&self, target: IpAddr) -> Option<IpAddr> {
        match target {
            IpAddr::V4(_) => self.v4.map(IpAddr::V4),
            IpAddr::V6(_) => self.v6.map(IpAddr::V6),
        }
    }

    /// Takes the addresses given on the command line: at most one per family.
    pub fn from_addresses(addresses: &[IpAddr]) -> Result<Underlay, String> {
        let mut u = Underlay::default();
        for a in addresses {
            let taken = match a {
                IpAddr::V4(ip) => u.v4.replace(*ip).is_some(),
                IpAddr::V6(ip) => u.v6.replace(*ip).is_some(),
            };
            if taken {
                return Err(format!(
                    "two underlay addresses of one family ({a} and another): give at most one \
                     IPv4 and one IPv6 address"
                ));
            }
            if a.is_unspecified() || a.is_multicast() {
                return Err(format!(
                    "{a} cannot be the outer source address of the copies"
                ));
            }
        }
        Ok(u)
    }
}

impl PipelinePlan {
    /// Bytes of each frame the capture ring must keep for this plan.
    pub fn snap_len(&self) -> u32 {
        self.mirror.snap_len() as u32
    }

    /// The outer headers are built per target by the forwarder, from `underlay` or the
    /// kernel's answer for each target.
    pub fn new(mirror: MirrorPlan<Target>, capture_side: CaptureSide, underlay: Underlay) -> Self {
        PipelinePlan {
            mirror,
            capture_side,
            underlay,
        }
    }

    /// The engine's direction of a frame: `ingress` is what the source receives. On the host
    /// side of a VM's interface, what the host end receives is what the VM sent.
    pub(crate) fn direction(&self, outgoing: bool) -> Direction {
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
        backend: Arc<dyn CaptureBackend>,
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
            backend,
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
    backend: Arc<dyn CaptureBackend>,
}

/// How often a waiting or stopped pipeline looks at its stop flag and its interface.
pub(crate) const TICK: Duration = Duration::from_millis(100);

impl Worker {
    fn run(self) {
        let mut forwarder = loop {
            match Forwarder::open(&self.config) {
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
        // A captured frame with its VLAN tag put back: the ring keeps at least SNAP_HEADROOM
        // bytes of each, more than a frame of a small MTU.
        let longest = self.config.max_frame.max(tmirror_packet::SNAP_HEADROOM);
        let mut scratch = vec![0u8; longest + 64];
        let mut waiting_logged = false;
        while !self.stop.load(Relaxed) {
            let mut snap_len = self.plan.load().snap_len();
            let source = CaptureSource {
                interface: self.interface.clone(),
                snap_len,
                selector: self.select.map(|address| AddressSelector { address }),
            };
            let mut ring = match self.backend.open(&source) {
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
            // The ring's drops, added as they grow: the kernel back-end may add its own to
            // the same counter while an interface moves between the two.
            let mut drops_counted = 0;
            let mut count_drops = |ring: &mut Box<dyn Capture>| {
                if let Ok(s) = ring.stats() {
                    let new = s.drops.saturating_sub(drops_counted);
                    self.counters.ring_drops.fetch_add(new, Relaxed);
                    drops_counted = s.drops;
                }
            };
            loop {
                if self.stop.load(Relaxed) {
                    break;
                }
                if let Err(e) = ring.wait(TICK) {
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
                    forwarder.tick(&plan);
                    let n = ring.drain(&mut |f| self.frame(&plan, f, &mut forwarder, &mut scratch));
                    forwarder.flush();
                    if n == 0 {
                        break;
                    }
                }
                if last_stats.elapsed() >= Duration::from_millis(250) {
                    count_drops(&mut ring);
                    last_stats = Instant::now();
                }
            }
            count_drops(&mut ring);
        }
        self.counters.set_state("stopped");
    }

    /// Sleeps one tick; true when the pipeline is to stop.
    fn sleep_or_stop(&self) -> bool {
        std::thread::sleep(TICK);
        self.stop.load(Relaxed)
    }

    fn frame(
        &self,
        plan: &PipelinePlan,
        f: Captured<'_>,
        forwarder: &mut Forwarder,
        scratch: &mut [u8],
    ) {
        self.counters.captured.fetch_add(1, Relaxed);
        let (data, wire_len) = with_tag(f.data, f.wire_len as usize, f.vlan, scratch);
        let direction = plan.direction(f.outgoing);
        // The ring keeps only the plan's snap length of each frame; the engine decides on
        // that prefix with the frame's length on the wire, exactly as on the whole frame.
        match plan.mirror.decide_captured(data, wire_len, direction) {
            Verdict::Mirror(m) => forward(forwarder, &m, data, &self.counters),
            // Not selected, not IP, or not parseable: all "not mirrored".
            _ => {
                self.counters.not_mirrored.fetch_add(1, Relaxed);
            }
        }
    }
}

/// Sends a selected copy to its session's destination for the copy's flow (for a load
/// balancer, the member chosen for it); a load balancer without members takes nothing, and
/// the copy is counted as dropped for that.
#[inline]
pub(crate) fn forward(
    forwarder: &mut Forwarder,
    m: &Mirror<'_, Target>,
    data: &[u8],
    iface: &Arc<InterfaceCounters>,
) {
    match m.session.target.destination(m.flow_hash) {
        Some(to) => forwarder.forward(to, m, data, iface),
        None => {
            m.session
                .target
                .counters
                .no_member_drops
                .fetch_add(1, Relaxed);
        }
    }
}

/// The frame as it was on the wire: the kernel hands VLAN tags separately; put the tag back
/// so that the engine sees, and the copy carries, the frame as it was. Returns the bytes and
/// the length on the wire.
pub(crate) fn with_tag<'a>(
    data: &'a [u8],
    wire_len: usize,
    vlan: Option<(u16, u16)>,
    scratch: &'a mut [u8],
) -> (&'a [u8], usize) {
    match vlan {
        Some((tpid, tci)) if data.len() >= 12 && data.len() + 4 <= scratch.len() => {
            let n = data.len() + 4;
            scratch[..12].copy_from_slice(&data[..12]);
            scratch[12..14].copy_from_slice(&tpid.to_be_bytes());
            scratch[14..16].copy_from_slice(&tci.to_be_bytes());
            scratch[16..n].copy_from_slice(&data[12..]);
            (&scratch[..n], wire_len + 4)
        }
        _ => (data, wire_len),
    }
}

#[cfg(test)]
mod tests {
    use super::Underlay;
    use std::net::IpAddr;

    fn ips(s: &[&str]) -> Vec<IpAddr> {
        s.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn one_underlay_address_per_family() {
        let u = Underlay::from_addresses(&ips(&["192.0.2.1", "2001:db8::1"])).unwrap();
        assert_eq!(
            u.source_for("198.51.100.9".parse().unwrap()),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            u.source_for("2001:db8:9::9".parse().unwrap()),
            Some("2001:db8::1".parse().unwrap())
        );
        let v4 = Underlay::from_addresses(&ips(&["192.0.2.1"])).unwrap();
        assert_eq!(v4.source_for("2001:db8::9".parse().unwrap()), None);
        let e = Underlay::from_addresses(&ips(&["192.0.2.1", "192.0.2.2"])).unwrap_err();
        assert!(e.contains("one family"), "{e}");
        let e = Underlay::from_addresses(&ips(&["::"])).unwrap_err();
        assert!(e.contains("cannot be the outer source"), "{e}");
    }
}
