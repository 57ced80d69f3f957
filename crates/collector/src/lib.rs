//! `tmirror capture`: the collector end of mirroring.
//!
//! One or more receive workers (threads, each with its own `SO_REUSEPORT` UDP socket) receive
//! VXLAN datagrams, validate and decapsulate them with the packet engine (only the I flag of
//! the header matters, RFC 7348: reserved bits are ignored), drop VNIs outside the allow list
//! and hand each inner Ethernet frame, with its VNI and outer source address, through a bounded
//! queue to one writer thread. The writer gives every frame to each [`FrameSink`]: the pcapng
//! file series per VNI ([`PcapngFiles`], rotated by size and age, with retention limits), a live
//! pcapng stream ([`PcapngStream`], `--out -`), TAP interfaces per VNI ([`TapSink`]). Sinks are
//! flushed after every batch of frames and at least every 200 ms, so files and pipes can be read
//! while the collector runs. Every drop is counted by reason ([`Metrics`], served on
//! `/metrics`).

#![forbid(unsafe_code)]

mod files;
pub mod metrics;
mod sink;
mod tap;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tmirror_packet::vxlan::decapsulate_payload;

pub use files::{FilesConfig, PcapngFiles};
pub use metrics::Metrics;
pub use sink::{interface_name, Frame, FrameSink, PcapngStream};
pub use tap::{check_prefix, TapSink, MAX_PREFIX_LEN};

use metrics::{reason, VniLabel, WorkerLabel};

/// How the collector receives.
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    /// UDP address to receive VXLAN on (default `0.0.0.0:4789`).
    pub listen: SocketAddr,
    /// Receive workers, each a thread with its own socket (`SO_REUSEPORT` when more than one).
    pub workers: usize,
    /// Only these VNIs are kept; `None`: every VNI.
    pub vni_allow: Option<BTreeSet<u32>>,
    /// Where to serve `/metrics` and `/healthz`; `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Frames the queue between the workers and the writer holds before it drops.
    pub queue: usize,
    /// Bytes of frames the queue holds before it drops (frames of up to 64 KiB: a queue of
    /// 65,536 of them alone would be 4 GiB, which a stalled reader of `--out -` and a sender
    /// of large datagrams would fill).
    pub queue_bytes: usize,
}

impl Default for CaptureConfig {
    /// All addresses, UDP 4789, one worker, every VNI, no metrics.
    fn default() -> Self {
        CaptureConfig {
            listen: "0.0.0.0:4789".parse().expect("valid address"),
            workers: 1,
            vni_allow: None,
            metrics_listen: None,
            queue: 65536,
            queue_bytes: 256 << 20,
        }
    }
}

/// Counters of one VNI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VniCounters {
    pub packets: u64,
    /// Bytes of inner frames written.
    pub bytes: u64,
}

/// What a capture run saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureReport {
    pub per_vni: BTreeMap<u32, VniCounters>,
    /// Datagrams that were not valid VXLAN.
    pub invalid: u64,
    /// Valid datagrams of a VNI outside the allow list.
    pub not_allowed: u64,
    /// Frames dropped because the writer fell behind.
    pub queue_full: u64,
    /// Datagrams each worker received.
    pub per_worker: Vec<u64>,
}

impl std::fmt::Display for CaptureReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:>10}  {:>12}  {:>14}", "VNI", "PACKETS", "BYTES")?;
        for (vni, c) in &self.per_vni {
            writeln!(f, "{vni:>10}  {:>12}  {:>14}", c.packets, c.bytes)?;
        }
        writeln!(f, "invalid datagrams: {}", self.invalid)?;
        writeln!(f, "not allowed VNI: {}", self.not_allowed)?;
        write!(f, "dropped, queue full: {}", self.queue_full)
    }
}

/// Why capture failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot receive on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("writing frames failed: {0}")]
    Output(std::io::Error),
    #[error("receiving failed: {0}")]
    Receive(std::io::Error),
}

/// A bound collector.
pub struct Collector {
    sockets: Vec<UdpSocket>,
    metrics_listener: Option<TcpListener>,
    metrics: Arc<Metrics>,
    sinks: Vec<Box<dyn FrameSink>>,
    config: CaptureConfig,
}

/// How long a receive waits before the worker checks for shutdown, and the longest a written
/// frame stays in a buffer.
const TICK: Duration = Duration::from_millis(200);
/// Most frames written between two flushes while the queue is never empty.
const BATCH: usize = 1024;

/// Receive buffer asked for each socket: tens of milliseconds of copies at a few Gbit/s.
const RECEIVE_BUFFER: usize = 16 << 20;

fn bind_udp(addr: SocketAddr, reuse_port: bool) -> std::io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    // Best effort: the kernel caps it at net.core.rmem_max (208 KiB by default, where a burst
    // of copies overflows it), which the operator is told how to raise.
    let _ = s.set_recv_buffer_size(RECEIVE_BUFFER);
    // The kernel reports twice the size it set, its bookkeeping included.
    static TOLD: std::sync::Once = std::sync::Once::new();
    if let Ok(got) = s.recv_buffer_size() {
        if got / 2 < RECEIVE_BUFFER {
            TOLD.call_once(|| {
                tracing::warn!(
                    asked = RECEIVE_BUFFER,
                    got = got / 2,
                    "the kernel capped the receive buffer (net.core.rmem_max): bursts of copies \
                 may be dropped before the collector reads them; raise it with \
                 `sysctl -w net.core.rmem_max=16777216`"
                )
            });
        }
    }
    s.bind(&addr.into())?;
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(TICK))?;
    Ok(s)
}

struct Item {
    vni: u32,
    source: IpAddr,
    at: SystemTime,
    data: Vec<u8>,
}

impl Collector {
    /// Binds the sockets of every worker (with a large receive buffer, so bursts are not
    /// dropped) and the metrics listener. Frames go nowhere until sinks are added.
    pub fn bind(config: CaptureConfig) -> Result<Collector, CaptureError> {
        let workers = config.workers.max(1);
        let reuse = workers > 1;
        let mut addr = config.listen;
        let mut sockets = Vec::with_capacity(workers);
        for _ in 0..workers {
            let s = bind_udp(addr, reuse).map_err(|source| CaptureError::Bind { addr, source })?;
            // With port 0 the first socket picks the port the others share.
            addr = s
                .local_addr()
                .map_err(|source| CaptureError::Bind { addr, source })?;
            sockets.push(s);
        }
        let metrics_listener = match config.metrics_listen {
            Some(addr) => {
                Some(metrics::bind(addr).map_err(|source| CaptureError::Metrics { addr, source })?)
            }
            None => None,
        };
        Ok(Collector {
            sockets,
            metrics_listener,
            metrics: Arc::new(Metrics::new()),
            sinks: Vec::new(),
            config,
        })
    }

    /// Adds a destination for frames; each frame goes to every sink, in the order added.
    pub fn add_sink(&mut self, sink: Box<dyn FrameSink>) {
        self.sinks.push(sink);
    }

    /// The counters (for a sink that counts its own drops, or to read them).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The address the collector receives on.
    pub fn local_addr(&self) -> SocketAddr {
        self.sockets[0]
            .local_addr()
            .expect("a bound socket has an address")
    }

    /// The address `/metrics` is served on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Receives until `stop` is set, then writes what is queued, closes every sink (files
    /// synced to disk) and returns (dropping the sinks: TAP interfaces removed).
    pub fn run(self, stop: Arc<AtomicBool>) -> Result<CaptureReport, CaptureError> {
        let Collector {
            sockets,
            metrics_listener,
            metrics,
            mut sinks,
            config,
        } = self;
        // Set on `stop` or when the writer fails.
        let halt = Arc::new(AtomicBool::new(false));
        let metrics_thread = match metrics_listener {
            Some(l) => Some(
                metrics::spawn(l, metrics.clone(), halt.clone()).map_err(CaptureError::Receive)?,
            ),
            None => None,
        };
        let (tx, rx) = std::sync::mpsc::sync_channel::<Item>(config.queue.max(1));
        let queue = Arc::new(QueueBytes {
            held: AtomicUsize::new(0),
            most: config.queue_bytes,
        });
        let allow = config.vni_allow.clone().map(Arc::new);
        let mut workers = Vec::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            let (tx, queue, allow, metrics, stop, halt) = (
                tx.clone(),
                queue.clone(),
                allow.clone(),
                metrics.clone(),
                stop.clone(),
                halt.clone(),
            );
            let handle = std::thread::Builder::new()
                .name(format!("capture-rx{i}"))
                .spawn(move || receive(i as u32, socket, tx, &queue, allow, &metrics, &stop, &halt))
                .map_err(CaptureError::Receive)?;
            workers.push(handle);
        }
        drop(tx);
        let written = write_all(&rx, &queue, &mut sinks, &metrics);
        halt.store(true, Ordering::Relaxed);
        drop(rx);
        // Closes the files and removes the TAP interfaces.
        drop(sinks);
        let mut receive_error = None;
        for w in workers {
            if let Ok(Err(e)) = w.join() {
                receive_error.get_or_insert(e);
            }
        }
        if let Some(t) = metrics_thread {
            let _ = t.join();
        }
        let per_vni = written?;
        if let Some(e) = receive_error {
            return Err(CaptureError::Receive(e));
        }
        let mut report = CaptureReport {
            invalid: metrics.dropped(reason::MALFORMED),
            not_allowed: metrics.dropped(reason::VNI_NOT_ALLOWED),
            queue_full: metrics.dropped(reason::QUEUE_FULL),
            per_vni,
            per_worker: Vec::new(),
        };
        for i in 0..config.workers.max(1) as u32 {
            report.per_worker.push(
                metrics
                    .worker_received
                    .get_or_create(&WorkerLabel { worker: i })
                    .get(),
            );
        }
        Ok(report)
    }
}

/// One worker: receives, decapsulates, filters and queues until told to stop.
/// The bytes of the frames in the queue, and the most it may hold.
struct QueueBytes {
    held: AtomicUsize,
    most: usize,
}

impl QueueBytes {
    /// Takes room for `n` bytes; false (nothing taken) when the queue holds too many.
    fn take(&self, n: usize) -> bool {
        let held = self.held.fetch_add(n, Ordering::Relaxed);
        if held + n > self.most && held > 0 {
            self.held.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn give_back(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::Relaxed);
    }
}

#[allow(clippy::too_many_arguments)]
fn receive(
    index: u32,
    socket: UdpSocket,
    tx: SyncSender<Item>,
    queue: &QueueBytes,
    allow: Option<Arc<BTreeSet<u32>>>,
    metrics: &Metrics,
    stop: &AtomicBool,
    halt: &AtomicBool,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 65536];
    let mine = metrics
        .worker_received
        .get_or_create(&WorkerLabel { worker: index })
        .clone();
    while !stop.load(Ordering::Relaxed) && !halt.load(Ordering::Relaxed) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        metrics.received.inc();
        mine.inc();
        let d = match decapsulate_payload(&buf[..n]) {
            Ok(d) => d,
            Err(_) => {
                metrics.drop_one(reason::MALFORMED);
                continue;
            }
        };
        let vni = d.vni.get();
        if allow.as_ref().is_some_and(|a| !a.contains(&vni)) {
            metrics.drop_one(reason::VNI_NOT_ALLOWED);
            continue;
        }
        metrics.accepted.get_or_create(&VniLabel { vni }).inc();
        let item = Item {
            vni,
            // A socket bound to [::] sees IPv4 senders as ::ffff:a.b.c.d.
            source: from.ip().to_canonical(),
            at: SystemTime::now(),
            data: d.inner.to_vec(),
        };
        let len = item.data.len();
        if !queue.take(len) {
            metrics.drop_one(reason::QUEUE_FULL);
            continue;
        }
        match tx.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                queue.give_back(len);
                metrics.drop_one(reason::QUEUE_FULL);
            }
            Err(TrySendError::Disconnected(_)) => return Ok(()),
        }
    }
    Ok(())
}

/// The sinks, each taking every frame until it fails: a failed one is said and left out, and
/// the others go on (a full disk does not stop the feed of an IDS, nor a closed standard
/// output the files). Once none is left, the collector stops with the first failure.
struct Outputs<'a> {
    sinks: &'a mut [Box<dyn FrameSink>],
    failed: Vec<bool>,
    first: Option<std::io::Error>,
    metrics: &'a Metrics,
}

/// What a failed output is replaced with: it takes nothing.
struct Ended;

impl FrameSink for Ended {
    fn write(&mut self, _: &Frame<'_>) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Outputs<'_> {
    /// Does `what` with every sink still taking frames.
    fn each(
        &mut self,
        mut what: impl FnMut(&mut dyn FrameSink) -> std::io::Result<()>,
    ) -> Result<(), CaptureError> {
        for i in 0..self.sinks.len() {
            if self.failed[i] {
                continue;
            }
            if let Err(e) = what(self.sinks[i].as_mut()) {
                self.failed[i] = true;
                // Closed now (its files, its descriptors), not at the end of the run.
                let failed = std::mem::replace(&mut self.sinks[i], Box::new(Ended));
                let left = self.failed.iter().filter(|f| !**f).count();
                tracing::error!(output = %failed.name(), error = %e, outputs_left = left,
                    "an output failed: it takes no more frames until the collector restarts \
                     (/healthz answers 503)");
                drop(failed);
                self.metrics.output_failures.inc();
                self.first.get_or_insert(e);
            }
        }
        if !self.failed.is_empty() && self.failed.iter().all(|f| *f) {
            let e = self
                .first
                .take()
                .unwrap_or_else(|| std::io::Error::other("every output failed"));
            return Err(CaptureError::Output(e));
        }
        Ok(())
    }
}

/// The writer: every queued frame to every sink, flushing after each batch, until every
/// worker has stopped and the queue is empty.
fn write_all(
    rx: &Receiver<Item>,
    queue: &QueueBytes,
    sinks: &mut [Box<dyn FrameSink>],
    metrics: &Metrics,
) -> Result<BTreeMap<u32, VniCounters>, CaptureError> {
    let mut per_vni: BTreeMap<u32, VniCounters> = BTreeMap::new();
    let mut dirty = false;
    let mut last_flush = Instant::now();
    let mut outputs = Outputs {
        failed: vec![false; sinks.len()],
        sinks,
        first: None,
        metrics,
    };
    let sinks = &mut outputs;
    let mut write = |item: Item, sinks: &mut Outputs<'_>| -> Result<(), CaptureError> {
        queue.give_back(item.data.len());
        let frame = Frame {
            vni: item.vni,
            source: item.source,
            at: item.at,
            data: &item.data,
        };
        sinks.each(|s| s.write(&frame))?;
        let l = VniLabel { vni: item.vni };
        metrics.written_frames.get_or_create(&l).inc();
        metrics
            .written_bytes
            .get_or_create(&l)
            .inc_by(item.data.len() as u64);
        let c = per_vni.entry(item.vni).or_default();
        c.packets += 1;
        c.bytes += item.data.len() as u64;
        Ok(())
    };
    let flush = |sinks: &mut Outputs<'_>| sinks.each(|s| s.flush());
    loop {
        match rx.recv_timeout(TICK) {
            Ok(item) => {
                write(item, sinks)?;
                dirty = true;
                let mut empty = false;
                for _ in 1..BATCH {
                    match rx.try_recv() {
                        Ok(item) => write(item, sinks)?,
                        Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => {
                            empty = true;
                            break;
                        }
                    }
                }
                // The queue is empty: the batch is over, make it readable now. Under
                // continuous load, at least every TICK.
                if empty || last_flush.elapsed() >= TICK {
                    flush(sinks)?;
                    dirty = false;
                    last_flush = Instant::now();
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if dirty {
                    flush(sinks)?;
                    dirty = false;
                    last_flush = Instant::now();
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    sinks.each(|s| s.close())?;
    Ok(per_vni)
}
