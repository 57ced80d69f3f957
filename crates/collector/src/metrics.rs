//! The collector's counters, exposed as Prometheus `/metrics` (OpenMetrics text, from the
//! `prometheus-client` crate) next to `/healthz` by a small HTTP server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VniLabel {
    pub vni: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabel {
    pub worker: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// Why a datagram or frame was dropped.
pub mod reason {
    /// Valid VXLAN whose VNI is not in the allow list.
    pub const VNI_NOT_ALLOWED: &str = "vni_not_allowed";
    /// Not VXLAN: too short, the I flag clear, or no inner frame.
    pub const MALFORMED: &str = "malformed";
    /// The writer fell behind and the queue between the receive workers and it was full.
    pub const QUEUE_FULL: &str = "queue_full";
    /// A TAP interface could not be created or written.
    pub const TAP_ERROR: &str = "tap_error";
    pub const ALL: [&str; 4] = [VNI_NOT_ALLOWED, MALFORMED, QUEUE_FULL, TAP_ERROR];
}

/// Every counter of a collector. Label values per VNI are created only for VNIs that pass the
/// allow list, so a sender cannot make the exposition grow with VNIs that are dropped.
pub struct Metrics {
    registry: Registry,
    /// Datagrams received, valid or not.
    pub received: Counter,
    /// Datagrams received by each worker.
    pub worker_received: Family<WorkerLabel, Counter>,
    /// Frames accepted (valid, allowed) per VNI, before the queue to the writer.
    pub accepted: Family<VniLabel, Counter>,
    /// Frames written to every sink, per VNI.
    pub written_frames: Family<VniLabel, Counter>,
    /// Bytes of inner frames written, per VNI.
    pub written_bytes: Family<VniLabel, Counter>,
    /// Drops by reason.
    pub dropped: Family<ReasonLabel, Counter>,
    /// Outputs that failed (and take no more frames).
    pub output_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tmirror_capture");
        let received = Counter::default();
        let worker_received = Family::<WorkerLabel, Counter>::default();
        let accepted = Family::<VniLabel, Counter>::default();
        let written_frames = Family::<VniLabel, Counter>::default();
        let written_bytes = Family::<VniLabel, Counter>::default();
        let dropped = Family::<ReasonLabel, Counter>::default();
        let output_failures = Counter::default();
        registry.register(
            "output_failures",
            "Outputs (files, pcapng stream, TAP feed) that failed and take no more frames; the \
             others go on, and the collector stops once none is left",
            output_failures.clone(),
        );
        registry.register(
            "received_datagrams",
            "UDP datagrams received, valid VXLAN or not",
            received.clone(),
        );
        registry.register(
            "worker_received_datagrams",
            "UDP datagrams received by each receive worker",
            worker_received.clone(),
        );
        registry.register(
            "received_frames",
            "Valid VXLAN frames of an allowed VNI received, per VNI",
            accepted.clone(),
        );
        registry.register(
            "written_frames",
            "Inner frames written to every output, per VNI",
            written_frames.clone(),
        );
        registry.register(
            "written_bytes",
            "Bytes of inner frames written, per VNI",
            written_bytes.clone(),
        );
        registry.register(
            "dropped",
            "Datagrams or frames dropped, by reason (vni_not_allowed, malformed, queue_full, tap_error)",
            dropped.clone(),
        );
        for r in reason::ALL {
            let _ = dropped.get_or_create(&ReasonLabel { reason: r });
        }
        Metrics {
            registry,
            received,
            worker_received,
            accepted,
            written_frames,
            written_bytes,
            dropped,
            output_failures,
        }
    }

    /// Counts one drop.
    pub fn drop_one(&self, reason: &'static str) {
        self.dropped.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Drops counted for `reason` so far.
    pub fn dropped(&self, reason: &'static str) -> u64 {
        self.dropped.get_or_create(&ReasonLabel { reason }).get()
    }

    /// The exposition, OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Serves `/metrics` and `/healthz` on `listener` until `stop` is set: one request per
/// connection, one connection at a time, a 2 s limit to send the request. It is for a
/// Prometheus scraper on a trusted network, like the agent's.
pub(crate) fn serve(listener: TcpListener, metrics: Arc<Metrics>, stop: Arc<AtomicBool>) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((s, _)) => {
                let _ = answer(s, &metrics);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn answer(mut s: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = req.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        // An output that failed (a full disk) takes no frames until the collector restarts:
        // said here, so that a supervisor or a load balancer's check sees it.
        ("GET", "/healthz") if metrics.output_failures.get() > 0 => (
            "503 Service Unavailable",
            "text/plain",
            format!(
                "{} output(s) failed and take no frames until the collector restarts\n",
                metrics.output_failures.get()
            ),
        ),
        ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".to_owned()),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_owned()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_owned(),
        ),
    };
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    s.flush()
}

/// Binds the metrics listener.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// Serves in a thread of its own.
pub(crate) fn spawn(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("capture-metrics".into())
        .spawn(move || serve(listener, metrics, stop))
}
