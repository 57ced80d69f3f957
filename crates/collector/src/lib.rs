//! `tmirror capture`: the collector end of mirroring.
//!
//! Receives VXLAN datagrams, validates and decapsulates them with the packet engine, and
//! writes each inner Ethernet frame to `DIR/vni-<VNI>-<n>.pcapng`, one series of files per VNI
//! (that is, per session), rotated by size. Files are flushed whenever the socket goes quiet
//! and at least every 200 ms, so they can be read while the collector runs. Datagrams that are
//! not valid VXLAN are counted and dropped.

#![forbid(unsafe_code)]

mod writer;

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tmirror_packet::vxlan::decapsulate_payload;

pub use writer::VniWriter;

/// What `tmirror capture` needs.
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    /// UDP address to receive VXLAN on (default `0.0.0.0:4789`).
    pub listen: SocketAddr,
    /// Directory for the pcapng files (created if missing).
    pub out_dir: PathBuf,
    /// Start a new file once one reaches this many bytes.
    pub rotate_bytes: u64,
}

impl CaptureConfig {
    /// The defaults: all addresses, UDP 4789, 64 MiB files.
    pub fn new(out_dir: PathBuf) -> Self {
        CaptureConfig {
            listen: "0.0.0.0:4789".parse().expect("valid address"),
            out_dir,
            rotate_bytes: 64 << 20,
        }
    }
}

/// Counters of one VNI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VniCounters {
    pub packets: u64,
    /// Bytes of inner frames written.
    pub bytes: u64,
    /// Files written so far (the current one included).
    pub files: u32,
}

/// What a capture run saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureReport {
    pub per_vni: BTreeMap<u32, VniCounters>,
    /// Datagrams that were not valid VXLAN.
    pub invalid: u64,
}

impl std::fmt::Display for CaptureReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:>10}  {:>12}  {:>14}  {:>5}",
            "VNI", "PACKETS", "BYTES", "FILES"
        )?;
        for (vni, c) in &self.per_vni {
            writeln!(
                f,
                "{vni:>10}  {:>12}  {:>14}  {:>5}",
                c.packets, c.bytes, c.files
            )?;
        }
        write!(f, "invalid datagrams: {}", self.invalid)
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
    #[error("cannot write capture files in {dir}: {source}")]
    Output {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("receiving failed: {0}")]
    Receive(std::io::Error),
}

/// A bound collector.
pub struct Collector {
    socket: UdpSocket,
    config: CaptureConfig,
}

/// How long a receive waits before the collector flushes and checks for shutdown.
const TICK: Duration = Duration::from_millis(200);

impl Collector {
    /// Binds the socket (with a large receive buffer, so bursts are not dropped) and creates
    /// the output directory.
    pub fn bind(config: CaptureConfig) -> Result<Collector, CaptureError> {
        std::fs::create_dir_all(&config.out_dir).map_err(|source| CaptureError::Output {
            dir: config.out_dir.clone(),
            source,
        })?;
        let addr = config.listen;
        let bind = |addr: SocketAddr| -> std::io::Result<UdpSocket> {
            let domain = if addr.is_ipv4() {
                socket2::Domain::IPV4
            } else {
                socket2::Domain::IPV6
            };
            let s =
                socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
            // Best effort: the kernel caps it at net.core.rmem_max.
            let _ = s.set_recv_buffer_size(16 << 20);
            s.bind(&addr.into())?;
            let s: UdpSocket = s.into();
            s.set_read_timeout(Some(TICK))?;
            Ok(s)
        };
        let socket = bind(addr).map_err(|source| CaptureError::Bind { addr, source })?;
        Ok(Collector { socket, config })
    }

    /// The address the collector receives on.
    pub fn local_addr(&self) -> SocketAddr {
        self.socket
            .local_addr()
            .expect("a bound socket has an address")
    }

    /// Receives until `stop` is set, then flushes and closes every file.
    pub fn run(self, stop: Arc<AtomicBool>) -> Result<CaptureReport, CaptureError> {
        let mut report = CaptureReport::default();
        let mut writers: BTreeMap<u32, VniWriter> = BTreeMap::new();
        let mut buf = vec![0u8; 65536];
        let mut dirty = false;
        let mut last_flush = Instant::now();
        let out = |source| CaptureError::Output {
            dir: self.config.out_dir.clone(),
            source,
        };
        while !stop.load(Ordering::Relaxed) {
            match self.socket.recv_from(&mut buf) {
                Ok((n, _from)) => match decapsulate_payload(&buf[..n]) {
                    Ok(d) => {
                        let vni = d.vni.get();
                        let w = match writers.get_mut(&vni) {
                            Some(w) => w,
                            None => {
                                let w = VniWriter::create(
                                    &self.config.out_dir,
                                    vni,
                                    self.config.rotate_bytes,
                                )
                                .map_err(out)?;
                                writers.entry(vni).or_insert(w)
                            }
                        };
                        w.write(d.inner, SystemTime::now()).map_err(out)?;
                        let c = report.per_vni.entry(vni).or_default();
                        c.packets += 1;
                        c.bytes += d.inner.len() as u64;
                        c.files = w.files();
                        dirty = true;
                    }
                    Err(_) => report.invalid += 1,
                },
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    // The socket went quiet: make what we have readable.
                    if dirty {
                        for w in writers.values_mut() {
                            w.flush().map_err(out)?;
                        }
                        dirty = false;
                        last_flush = Instant::now();
                    }
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CaptureError::Receive(e)),
            }
            if dirty && last_flush.elapsed() >= TICK {
                for w in writers.values_mut() {
                    w.flush().map_err(out)?;
                }
                dirty = false;
                last_flush = Instant::now();
            }
        }
        for w in writers.values_mut() {
            w.flush().map_err(out)?;
        }
        Ok(report)
    }
}
