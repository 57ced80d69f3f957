//! `tmirror capture`: the collector, until SIGINT or SIGTERM; then per-VNI counters.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tmirror_collector::{
    CaptureConfig, Collector, FilesConfig, PcapngFiles, PcapngStream, TapSink,
};

#[derive(Args)]
pub struct CaptureArgs {
    /// UDP address to receive VXLAN on.
    #[arg(long, env = "TMIRROR_CAPTURE_LISTEN", default_value = "0.0.0.0:4789")]
    listen: SocketAddr,
    /// Directory for the pcapng files (vni-<VNI>-<n>.pcapng; a restart goes on after the
    /// highest n there, never writing over a file), or `-` for one live pcapng stream of
    /// every VNI on standard output (`tmirror capture --out - | tshark -r -`).
    #[arg(long, env = "TMIRROR_CAPTURE_OUT", required_unless_present = "tap")]
    out: Option<PathBuf>,
    /// Start a new file once one reaches this many MiB.
    #[arg(long, default_value_t = 64)]
    rotate_mb: u64,
    /// Also start a new file (at the next frame) once one is this many seconds old.
    #[arg(long)]
    rotate_seconds: Option<u64>,
    /// Keep at most this many files in the directory (the files being written count); the
    /// oldest are removed.
    #[arg(long)]
    keep_files: Option<usize>,
    /// Keep at most this many MiB of files in the directory; the oldest are removed.
    #[arg(long)]
    max_total_mb: Option<u64>,
    /// Keep only these VNIs (comma-separated or repeated); others are dropped and counted.
    #[arg(long = "vni", value_delimiter = ',')]
    vni: Vec<u32>,
    /// Receive workers (threads with SO_REUSEPORT sockets); a flow stays on one worker.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Serve Prometheus /metrics and /healthz on this address.
    #[arg(long, env = "TMIRROR_CAPTURE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Write each VNI's decapsulated frames to a TAP interface <PREFIX><VNI> (root; up to 7
    /// characters), for Zeek, Suricata or Packetbeat to sniff. Removed at exit.
    #[arg(long)]
    tap: Option<String>,
    /// Answer a load balancer's health checks on this address: TCP connections are accepted
    /// (TCP checks) and a UDP socket is bound (UDP_CONNECT checks see no port-unreachable).
    /// Point the health monitor's port here.
    #[arg(long, env = "TMIRROR_CAPTURE_HEALTH_LISTEN")]
    health_listen: Option<SocketAddr>,
}

/// Answers health checks on `addr` until the process ends: accepts and closes TCP
/// connections; holds a UDP socket so that datagrams are not refused.
fn answer_health_checks(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let tcp = std::net::TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("--health-listen {addr}: cannot listen: {e}"))?;
    let bound = tcp.local_addr()?;
    let udp = std::net::UdpSocket::bind(bound)
        .map_err(|e| anyhow::anyhow!("--health-listen {bound}: cannot bind UDP: {e}"))?;
    std::thread::Builder::new()
        .name("health".into())
        .spawn(move || {
            // Held, never read: its existence is the answer to UDP_CONNECT checks.
            let _udp = udp;
            for conn in tcp.incoming() {
                // Accepted is healthy; the checker closes its side. A failed accept (out of
                // descriptors) would fail again at once: not in a busy loop.
                if conn.is_err() {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        })?;
    Ok(bound)
}

pub fn run(args: CaptureArgs) -> anyhow::Result<()> {
    if let Some(bad) = args.vni.iter().find(|v| **v > 0xFF_FFFF) {
        anyhow::bail!("--vni {bad}: a VNI is at most 16777215");
    }
    if args.workers == 0 || args.workers > 256 {
        anyhow::bail!("--workers must be between 1 and 256");
    }
    if let Some(prefix) = &args.tap {
        tmirror_collector::check_prefix(prefix).map_err(anyhow::Error::msg)?;
    }
    let config = CaptureConfig {
        listen: args.listen,
        workers: args.workers,
        vni_allow: (!args.vni.is_empty()).then(|| args.vni.iter().copied().collect()),
        metrics_listen: args.metrics_listen,
        ..CaptureConfig::default()
    };
    let mut collector = Collector::bind(config)?;
    if let Some(addr) = args.health_listen {
        let bound = answer_health_checks(addr)?;
        tracing::info!(addr = %bound, "answering load-balancer health checks");
    }
    let to_stdout = args.out.as_deref() == Some(std::path::Path::new("-"));
    match &args.out {
        Some(_) if to_stdout => {
            collector.add_sink(Box::new(PcapngStream::new(std::io::stdout())?));
        }
        Some(dir) => {
            let files = PcapngFiles::create(FilesConfig {
                dir: dir.clone(),
                // Saturating: a size beyond u64 bytes is "no limit", not a wrapped small one.
                rotate_bytes: args.rotate_mb.max(1).saturating_mul(1 << 20),
                rotate_every: args.rotate_seconds.map(|s| Duration::from_secs(s.max(1))),
                keep_files: args.keep_files.map(|n| n.max(1)),
                max_total_bytes: args.max_total_mb.map(|m| m.max(1).saturating_mul(1 << 20)),
            })
            .map_err(|e| anyhow::anyhow!("cannot write capture files in {}: {e}", dir.display()))?;
            collector.add_sink(Box::new(files));
        }
        None => {}
    }
    if let Some(prefix) = &args.tap {
        let tap = TapSink::new(prefix, collector.metrics()).map_err(anyhow::Error::msg)?;
        collector.add_sink(Box::new(tap));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal ends the process at once: the first asks for a clean stop, which
        // waits for the writer, and a writer blocked on a stalled standard output never
        // returns.
        signal_hook::flag::register_conditional_shutdown(signal, 1, stop.clone())?;
        signal_hook::flag::register(signal, stop.clone())?;
    }
    if let Some(addr) = collector.metrics_addr() {
        tracing::info!(%addr, "metrics at http://{addr}/metrics");
    }
    tracing::info!(
        addr = %collector.local_addr(),
        out = ?args.out,
        tap = ?args.tap,
        workers = args.workers,
        "capturing VXLAN mirror traffic"
    );
    let report = collector.run(stop)?;
    if to_stdout {
        // Standard output is the pcapng stream.
        eprintln!("{report}");
    } else {
        println!("{report}");
    }
    Ok(())
}
