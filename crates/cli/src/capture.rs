//! `tmirror capture`: the collector, until SIGINT or SIGTERM; then per-VNI counters.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Args;
use tmirror_collector::{CaptureConfig, Collector};

#[derive(Args)]
pub struct CaptureArgs {
    /// UDP address to receive VXLAN on.
    #[arg(long, env = "TMIRROR_CAPTURE_LISTEN", default_value = "0.0.0.0:4789")]
    listen: SocketAddr,
    /// Directory for the pcapng files: vni-<VNI>-<n>.pcapng.
    #[arg(long, env = "TMIRROR_CAPTURE_OUT")]
    out: PathBuf,
    /// Start a new file once one reaches this many MiB.
    #[arg(long, default_value_t = 64)]
    rotate_mb: u64,
}

pub fn run(args: CaptureArgs) -> anyhow::Result<()> {
    let config = CaptureConfig {
        listen: args.listen,
        out_dir: args.out.clone(),
        rotate_bytes: args.rotate_mb.max(1) << 20,
    };
    let collector = Collector::bind(config)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    tracing::info!(addr = %collector.local_addr(), out = %args.out.display(), "capturing VXLAN mirror traffic");
    let report = collector.run(stop)?;
    println!("{report}");
    Ok(())
}
