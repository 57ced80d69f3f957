//! One source interface's pipeline: a thread that drains the interface's capture ring, lets
//! the packet engine decide each frame, encapsulates the selected copies and sends them in
//! batches. Its plan is swapped in place when the sessions change, so an update never closes
//! the ring or loses the frames in it.

use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tmirror_model::{CaptureSide, Direction};
use tmirror_packet::{MirrorPlan, OuterIpv4, OuterTemplate, Verdict, OUTER_IPV4_OVERHEAD};
use tracing::{info, warn};

use crate::counters::{InterfaceCounters, SessionCounters};
use crate::sys::raw_send::{Batch, RawSender};
use crate::sys::ring::{Frame, RingConfig, RxRing};

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
    /// Outer headers per session (index as in `mirror.sessions()`).
    pub outer: Vec<OuterTemplate>,
}

impl PipelinePlan {
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
    pub fn start(
        interface: String,
        plan: PipelinePlan,
        config: PipelineConfig,
        counters: Arc<InterfaceCounters>,
    ) -> io::Result<Pipeline> {
        let plan = Arc::new(ArcSwap::from_pointee(plan));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            interface: interface.clone(),
            plan: plan.clone(),
            stop: stop.clone(),
            config,
            counters,
        };
        let thread = std::thread::Builder::new()
            .name(format!("capture {interface}"))
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
            match RawSender::open(self.config.sndbuf, self.config.batch) {
                Ok(s) => break s,
                Err(e) => {
                    warn!(interface = %self.interface, error = %e, "cannot open the raw sender (is the agent root?)");
                    self.counters.set_state("no sender");
                    if self.sleep_or_stop() {
                        return;
                    }
                }
            }
        };
        let mut batch = Batch::new(self.config.batch, self.config.max_frame);
        let mut scratch = vec![0u8; self.config.max_frame + 64];
        let mut waiting_logged = false;
        while !self.stop.load(Relaxed) {
            let mut ring = match RxRing::open(&self.interface, self.config.ring) {
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
                    let n = ring.drain_block(|f| {
                        self.frame(&plan, f, &mut batch, &mut sender, &mut scratch)
                    });
                    if !batch.is_empty() {
                        self.flush(&plan, &mut batch, &mut sender);
                    }
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

    fn frame(
        &self,
        plan: &PipelinePlan,
        f: Frame<'_>,
        batch: &mut Batch,
        sender: &mut RawSender,
        scratch: &mut [u8],
    ) {
        self.counters.captured.fetch_add(1, Relaxed);
        // The kernel hands VLAN tags separately; put the tag back so that the engine sees,
        // and the copy carries, the frame as it was on the wire.
        let data: &[u8] = match f.vlan {
            Some((tpid, tci)) if f.data.len() >= 12 && f.data.len() + 4 <= scratch.len() => {
                let n = f.data.len() + 4;
                scratch[..12].copy_from_slice(&f.data[..12]);
                scratch[12..14].copy_from_slice(&tpid.to_be_bytes());
                scratch[14..16].copy_from_slice(&tci.to_be_bytes());
                scratch[16..n].copy_from_slice(&f.data[12..]);
                &scratch[..n]
            }
            _ => f.data,
        };
        let direction = plan.direction(f.outgoing);
        match plan.mirror.decide(data, direction) {
            Verdict::Mirror(m) => {
                let slot = batch.slot();
                match m.encapsulate_frame(&plan.outer[m.index], data, slot) {
                    Ok(n) => {
                        // The raw socket takes the IPv4 datagram; the kernel adds Ethernet.
                        batch.commit(14, n - 14, m.session.target.ip, m.index as u32);
                        debug_assert!(n >= OUTER_IPV4_OVERHEAD);
                    }
                    Err(_) => {
                        self.counters.send_drops.fetch_add(1, Relaxed);
                    }
                }
                if batch.is_full() {
                    self.flush(plan, batch, sender);
                }
            }
            // Not selected, not IP, or not parseable: all "not mirrored".
            _ => {
                self.counters.not_mirrored.fetch_add(1, Relaxed);
            }
        }
    }

    /// Sends the batch and counts each copy on its session, or as a send drop.
    fn flush(&self, plan: &PipelinePlan, batch: &mut Batch, sender: &mut RawSender) {
        sender.send(batch);
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
