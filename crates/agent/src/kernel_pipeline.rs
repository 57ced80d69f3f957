//! The eBPF back-end's user-space half: ONE thread for all source interfaces. It keeps the
//! kernel program attached to the interfaces of the desired state, on the hooks whose
//! direction has accept rules (attaching as interfaces appear, forgetting those that went),
//! installs their plans as one generation, drains the shared ring buffer and hands each copy
//! to the forwarder. Its memory does not grow with the number of interfaces beyond their
//! plans (about 10 KiB each): one ring, one thread.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tmirror_model::CaptureSide;
use tmirror_packet::{flow_hash, Mirror};
use tracing::{info, warn};

use crate::counters::InterfaceCounters;
use crate::forward::Forwarder;
use crate::kernel::{lower, Hooks, KernelCopy, KernelSelector, KernelStats};
use crate::pipeline::{self, with_tag, PipelineConfig, PipelinePlan, TICK};
use crate::sys::bpf::Doorbell;

/// One interface the kernel back-end captures.
#[derive(Clone)]
pub struct KernelSource {
    pub interface: String,
    pub plan: Arc<PipelinePlan>,
    pub counters: Arc<InterfaceCounters>,
}

/// What the kernel back-end is to capture.
#[derive(Clone, Default)]
pub struct KernelTable {
    pub sources: Vec<KernelSource>,
}

/// Plans of past generations kept for copies still in the ring when a new one is installed.
const HISTORY: usize = 8;

/// The running kernel back-end.
pub struct KernelPipeline {
    table: Arc<ArcSwap<KernelTable>>,
    /// The table the worker installed last (its address; the `ArcSwap` keeps it alive while
    /// it is current, so an equal address is that table).
    installed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    /// Ends the worker's wait: a new table is taken at once, not at its next tick.
    doorbell: Arc<Doorbell>,
    thread: Option<JoinHandle<()>>,
}

impl KernelPipeline {
    pub fn start(selector: KernelSelector, config: PipelineConfig) -> io::Result<KernelPipeline> {
        let table = Arc::new(ArcSwap::from_pointee(KernelTable::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let installed = Arc::new(AtomicUsize::new(0));
        let doorbell = selector.doorbell();
        let worker = KernelWorker {
            selector,
            table: table.clone(),
            installed_table: installed.clone(),
            stop: stop.clone(),
            config,
            generation: 0,
            history: VecDeque::new(),
            installed: HashMap::new(),
            seen: HashMap::new(),
            malformed_reported: 0,
            attach_failed: HashMap::new(),
            install_failed: None,
            known: HashMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("capture ebpf".to_string())
            .spawn(move || worker.run())?;
        Ok(KernelPipeline {
            table,
            installed,
            stop,
            doorbell,
            thread: Some(thread),
        })
    }

    /// Replaces what is captured; the worker installs it at once (woken if it waits).
    pub fn update(&self, table: KernelTable) {
        self.table.store(Arc::new(table));
        self.doorbell.ring();
    }

    /// Waits, at most `timeout`, until the worker has installed the table of the last
    /// [`KernelPipeline::update`]; whether it has.
    pub fn wait_installed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let current = Arc::as_ptr(&self.table.load()) as usize;
        while self.installed.load(Acquire) != current {
            if Instant::now() >= deadline || self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }
}

impl Drop for KernelPipeline {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        self.doorbell.ring();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An interface of an installed generation.
#[derive(Clone)]
struct Installed {
    plan: Arc<PipelinePlan>,
    counters: Arc<InterfaceCounters>,
}

struct KernelWorker {
    selector: KernelSelector,
    table: Arc<ArcSwap<KernelTable>>,
    installed_table: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    config: PipelineConfig,
    generation: u32,
    /// (generation, its interfaces by index), newest last.
    history: VecDeque<(u32, HashMap<u32, Installed>)>,
    /// The interfaces of the newest generation.
    installed: HashMap<u32, Installed>,
    /// The kernel's counters last read, per interface index.
    seen: HashMap<u32, KernelStats>,
    /// Unreadable ring records already reported ([`KernelSelector::malformed`]).
    malformed_reported: u64,
    /// Interfaces whose attachment failed, with the error (logged once).
    attach_failed: HashMap<String, String>,
    /// Why the kernel refused the last plans, while it does (logged once per reason; the
    /// plans are offered again at every tick).
    install_failed: Option<String>,
    /// Interface names attached to, with their index.
    known: HashMap<String, u32>,
}

/// How long the drain thread waits between two looks at the ring while copies flow (the
/// program does not wake it then, unless the ring fills past its `wake_bytes`): with the
/// program's batches, which reach the ring within a millisecond of their first copy
/// (bpf/select.bpf.c `FLUSH_NS`), the longest a copy is held once a flow is under way is about
/// two. Idle, it sleeps up to [`TICK`] and every copy goes to the ring at once and wakes it,
/// so a lone copy is not held and an idle agent does not poll more often.
const FLOW_POLL: Duration = Duration::from_millis(1);

/// How often interfaces already attached to are looked up again (gone, or re-created with a
/// new index) when the kernel announced no deletion; those awaited are looked up every
/// [`TICK`], and all of them at the next tick after an announced deletion. Looking 200
/// interfaces up every tick would cost the idle agent about 2% of a core.
const RECHECK: Duration = Duration::from_secs(1);

impl KernelWorker {
    fn run(mut self) {
        let mut forwarder = loop {
            match Forwarder::open(&self.config) {
                Ok(f) => break f,
                Err(e) => {
                    warn!(error = %e, "cannot open the sender (is the agent root?)");
                    std::thread::sleep(TICK);
                    if self.stop.load(Relaxed) {
                        return;
                    }
                }
            }
        };
        let mut scratch = vec![0u8; self.config.max_frame + 64];
        let mut synced: Option<(Arc<KernelTable>, Instant)> = None;
        let mut checked = Instant::now();
        let mut last_stats = Instant::now();
        let mut polling = false;
        while !self.stop.load(Relaxed) {
            let table = self.table.load_full();
            let due = match &synced {
                Some((t, at)) => !Arc::ptr_eq(t, &table) || at.elapsed() >= TICK,
                None => true,
            };
            if due {
                // An interface deleted (and perhaps created again, under any index): look the
                // interfaces up now rather than at the next RECHECK.
                let deleted = self.selector.forget_deleted();
                let full = deleted
                    || match &synced {
                        Some((t, _)) => !Arc::ptr_eq(t, &table) || checked.elapsed() >= RECHECK,
                        None => true,
                    };
                if full {
                    checked = Instant::now();
                }
                // A table the kernel refused is not installed: the data plane's wait for it
                // runs out and says so (the sync is tried again at every tick).
                if self.sync(&table, full) {
                    self.installed_table
                        .store(Arc::as_ptr(&table) as usize, Release);
                }
                synced = Some((table, Instant::now()));
            }
            let waited = if polling {
                self.selector.wait_woken(FLOW_POLL)
            } else {
                self.selector.wait(TICK)
            };
            if let Err(e) = waited {
                warn!(error = %e, "cannot wait on the kernel ring");
                std::thread::sleep(TICK);
            }
            let mut drained = 0;
            loop {
                if let Some((_, newest)) = self.history.back() {
                    if let Some(any) = newest.values().next() {
                        forwarder.tick(&any.plan);
                    }
                }
                let history = &self.history;
                let n = self.selector.drain(|c| {
                    forward(history, c, &mut forwarder, &mut scratch);
                });
                forwarder.flush();
                drained += n;
                if n == 0 {
                    break;
                }
            }
            // Copies flowing: poll on our own and let the program skip the wake-ups. A poll
            // that found nothing: sleep until woken again. The ring's data is checked before
            // sleeping, so a copy written before the program saw the switch is not left
            // behind; one written in the instant between (the program read "polling", the
            // thread already asleep) waits at most TICK. Batches still held by the program
            // reach the ring on their timers, which wake a sleeping thread.
            if (drained > 0) != polling {
                match self.selector.set_polling(drained > 0) {
                    Ok(()) => polling = drained > 0,
                    Err(e) => warn!(error = %e, "cannot switch how the kernel ring is waited on"),
                }
            }
            if last_stats.elapsed() >= Duration::from_millis(250) {
                self.read_stats();
                last_stats = Instant::now();
            }
        }
        self.read_stats();
        for i in self.installed.values() {
            i.counters.set_state("stopped");
        }
    }

    /// Attaches to the table's interfaces that exist, on the hooks their plans need, detaches
    /// from the others, and installs a new generation when the interfaces or their plans
    /// changed. Not `full`: interfaces already attached to are taken as they were. False
    /// when the kernel refused the new plans (those in force stay).
    fn sync(&mut self, table: &KernelTable, full: bool) -> bool {
        let mut wanted: HashMap<u32, Installed> = HashMap::new();
        // Each interface's hooks, as its plan needs them: those it has beyond are dropped only
        // once a plan without their direction is installed (the plan in force may still
        // select there, and it stays in force should the new one be refused).
        let mut needed: Vec<(u32, Hooks)> = Vec::with_capacity(table.sources.len());
        for s in &table.sources {
            let hooks = Hooks::needed(&s.plan.mirror, s.plan.capture_side == CaptureSide::Host);
            let last = self.known.get(&s.interface).copied();
            let captured = last.filter(|i| self.installed.contains_key(i));
            let kept = last.map_or(Hooks::NONE, |i| self.selector.hooks(i));
            // A hook that could not be attached to an interface captured already is tried
            // again at the next full look (RECHECK), not at every tick.
            let settled = kept == hooks
                || (captured.is_some() && self.attach_failed.contains_key(&s.interface));
            let ifindex = match last {
                Some(i) if !full && settled => i,
                _ => match self.selector.add_hooks(&s.interface, hooks) {
                    Ok(i) => {
                        if self.attach_failed.remove(&s.interface).is_some()
                            || !self.installed.contains_key(&i)
                        {
                            info!(interface = %s.interface, ifindex = i, "capturing in the kernel");
                        }
                        i
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        let told = self.attach_failed.get(&s.interface) == Some(&msg);
                        // An interface captured already stays captured: its new plan is
                        // installed, selecting in the directions whose hooks it has.
                        let still = captured.filter(|i| {
                            crate::sys::ring::interface_index(&s.interface).ok() == Some(*i)
                        });
                        let Some(i) = still else {
                            if !told {
                                info!(interface = %s.interface, error = %msg, "waiting for the interface");
                                self.attach_failed.insert(s.interface.clone(), msg);
                            }
                            s.counters.set_state("waiting for interface");
                            continue;
                        };
                        if !told {
                            warn!(interface = %s.interface, error = %msg,
                                "cannot attach the kernel program to a hook the interface's \
                                 rules need; trying again once a second");
                            self.attach_failed.insert(s.interface.clone(), msg);
                        }
                        i
                    }
                },
            };
            // Looked up again at the next full sync (RECHECK), not at every tick.
            self.known.insert(s.interface.clone(), ifindex);
            needed.push((ifindex, hooks));
            wanted.insert(
                ifindex,
                Installed {
                    plan: s.plan.clone(),
                    counters: s.counters.clone(),
                },
            );
        }
        // Failures of interfaces no longer planned are forgotten: the map does not grow with
        // the names of VMs gone, and one that comes back is logged as waiting again.
        if !self.attach_failed.is_empty() {
            let planned: HashSet<&str> =
                table.sources.iter().map(|s| s.interface.as_str()).collect();
            self.attach_failed
                .retain(|name, _| planned.contains(name.as_str()));
        }
        // The state of an interface that leaves the kernel is the data plane's to set: it
        // stops it, or hands it to AF_PACKET, whose capture may be open already (a "stopped"
        // from here would then stay over its "capturing").
        for (i, old) in &self.installed {
            if !wanted.contains_key(i)
                && !wanted
                    .values()
                    .any(|w| Arc::ptr_eq(&w.counters, &old.counters))
            {
                old.counters.kernel_hooks.store(0, Relaxed);
            }
        }
        let gone: Vec<u32> = self
            .selector
            .attached()
            .filter(|i| !wanted.contains_key(i))
            .collect();
        for i in gone {
            self.selector.detach(i);
        }
        self.known.retain(|_, i| wanted.contains_key(i));
        let same = wanted.len() == self.installed.len()
            && wanted.iter().all(|(i, w)| {
                self.installed
                    .get(i)
                    .is_some_and(|c| Arc::ptr_eq(&c.plan, &w.plan))
            });
        let unchanged = same && !self.history.is_empty();
        if !unchanged && !self.install(&wanted) {
            // The plans in force stay, and so do the interfaces they capture; those new to
            // the kernel stay as they were (starting, or waiting) until a plan takes them.
            let held: HashMap<u32, Installed> = wanted
                .into_iter()
                .filter(|(i, _)| self.installed.contains_key(i))
                .collect();
            self.report_captured(&held);
            return false;
        }
        // The plan in force needs these only.
        for (ifindex, hooks) in needed {
            self.selector.keep_hooks(ifindex, hooks);
        }
        self.report_captured(&wanted);
        true
    }

    /// Installs `wanted` as a new generation; whether the kernel took it.
    fn install(&mut self, wanted: &HashMap<u32, Installed>) -> bool {
        self.generation = self.generation.wrapping_add(1);
        let mut lowered = Vec::with_capacity(wanted.len());
        for (ifindex, w) in wanted {
            let host = w.plan.capture_side == CaptureSide::Host;
            match lower(&w.plan.mirror, host, self.generation) {
                Ok(k) => lowered.push((*ifindex, k)),
                // The data plane hands the kernel only plans that fit (others take AF_PACKET).
                Err(e) => warn!(ifindex, reason = %e, "plan not installed in the kernel"),
            }
        }
        // An interface that leaves the plan takes its counters' slot with it: what the
        // kernel counted there since the last read is read first.
        if self.installed.keys().any(|i| !wanted.contains_key(i)) {
            self.read_stats();
        }
        if let Err(e) = self.selector.install(&lowered) {
            let e = e.to_string();
            if self.install_failed.as_ref() != Some(&e) {
                warn!(error = %e, "cannot install the plans in the kernel; keeping the previous ones");
                self.install_failed = Some(e);
            }
            return false;
        }
        if self.install_failed.take().is_some() {
            info!("the kernel took the plans again");
        }
        self.history.push_back((self.generation, wanted.clone()));
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
        self.installed = wanted.clone();
        true
    }

    /// Marks the interfaces of the plan in force captured, and tells each how many hooks the
    /// program is attached to on it.
    fn report_captured(&self, captured: &HashMap<u32, Installed>) {
        for (ifindex, w) in captured {
            w.counters.set_state("capturing");
            let n = self.selector.hooks(*ifindex).count() as u64;
            w.counters.kernel_hooks.store(n, Relaxed);
        }
    }

    /// Adds what the kernel counted since the last read to the interfaces' counters.
    fn read_stats(&mut self) {
        let malformed = self.selector.malformed();
        if malformed > self.malformed_reported {
            warn!(
                records = malformed - self.malformed_reported,
                "the kernel ring held records the agent cannot read, and their copies were \
                 lost: a bug in tmirror (the program and the agent disagree on the record \
                 layout), please report it with the agent's version"
            );
            self.malformed_reported = malformed;
        }
        for (ifindex, i) in &self.installed {
            let now = self.selector.stats(*ifindex);
            let last = self.seen.insert(*ifindex, now).unwrap_or_default();
            // Counters restart at zero when an interface comes back with its index.
            let delta = |n: u64, l: u64| if n >= l { n - l } else { n };
            let seen = delta(now.seen, last.seen);
            // Copies made and copies lost together: a batch the ring refuses moves its copies
            // from the one to the other, so `selected` alone may go down, never the sum.
            let taken = delta(now.taken(), last.taken());
            let full = delta(now.ring_full, last.ring_full);
            i.counters.captured.fetch_add(seen, Relaxed);
            i.counters
                .not_mirrored
                .fetch_add(seen.saturating_sub(taken), Relaxed);
            i.counters.ring_drops.fetch_add(full, Relaxed);
        }
        self.seen.retain(|i, _| self.installed.contains_key(i));
    }
}

/// Sends one copy the kernel selected, with the plan of the generation that selected it.
fn forward(
    history: &VecDeque<(u32, HashMap<u32, Installed>)>,
    c: KernelCopy<'_>,
    forwarder: &mut Forwarder,
    scratch: &mut [u8],
) {
    let Some(installed) = history
        .iter()
        .rev()
        .find(|(g, _)| *g == c.generation)
        .and_then(|(_, m)| m.get(&c.ifindex))
    else {
        // Selected by a plan older than those kept (more than HISTORY installed while the
        // copy waited in the ring): which session it is for is not known any more. Lost, and
        // counted so on its interface while the agent still has it.
        if let Some(i) = history.iter().rev().find_map(|(_, m)| m.get(&c.ifindex)) {
            i.counters.send_drops.fetch_add(1, Relaxed);
        }
        return;
    };
    let plan = &installed.plan;
    let Some(session) = plan.mirror.sessions().get(c.session) else {
        // The program names only the plan's own sessions.
        installed.counters.send_drops.fetch_add(1, Relaxed);
        return;
    };
    let (data, _) = with_tag(c.data, c.wire_len, c.vlan, scratch);
    let copy_len = c.copy_len.min(data.len());
    let wanted = c.wire_len.min(usize::from(session.packet_length.get()));
    let m = Mirror {
        index: c.session,
        session,
        packet: c.packet,
        copy_len,
        clamped: copy_len < wanted,
        flow_hash: flow_hash(&c.packet),
    };
    pipeline::forward(forwarder, &m, data, &installed.counters);
}
