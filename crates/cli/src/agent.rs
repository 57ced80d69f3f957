//! `tmirror agent`: the host agent, until SIGINT or SIGTERM.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tmirror_agent::{AgentOptions, MirrorConfig, SendMode};

#[derive(Args)]
pub struct AgentArgs {
    /// Control-plane server (`http://HOST:PORT`); repeat it for fail-over, tried in order.
    #[arg(
        long = "server",
        env = "TMIRROR_SERVER",
        value_delimiter = ',',
        required = true
    )]
    servers: Vec<String>,
    /// File holding the agent token (the server writes it to <data-dir>/agent-token).
    #[arg(long, env = "TMIRROR_AGENT_TOKEN_FILE")]
    token_file: PathBuf,
    /// The name ports are bound to with `binding:host_id`; default: the host name.
    #[arg(long, env = "TMIRROR_HOST_ID")]
    host_id: Option<String>,
    /// Outer source address of the copies; default: the kernel's choice per target.
    #[arg(long, env = "TMIRROR_UNDERLAY_IP")]
    underlay_ip: Option<Ipv4Addr>,
    /// MTU of the path to the collectors: copies are cut to MTU - 36 bytes, never fragmented.
    #[arg(long, env = "TMIRROR_UNDERLAY_MTU", default_value_t = 1500)]
    underlay_mtu: u16,
    /// Where the last desired state is kept, to go on mirroring while no server answers.
    #[arg(
        long,
        env = "TMIRROR_STATE_DIR",
        default_value = "/var/lib/tmirror-agent"
    )]
    state_dir: PathBuf,
    /// Address for /metrics (Prometheus) and /healthz; none by default.
    #[arg(long, env = "TMIRROR_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Capture ring per interface, in MiB (blocks of 1 MiB).
    #[arg(long, default_value_t = 64)]
    ring_mb: u32,
    /// How copies leave: `raw` (raw IPv4 socket), `packet` (Ethernet frames by AF_PACKET to the
    /// underlay device), `packet-bypass` (the same, past its qdisc); see docs/dataplane.md.
    #[arg(long, env = "TMIRROR_SEND_MODE", default_value_t = SendMode::default())]
    send_mode: SendMode,
    /// Longest wait of one long-poll, in seconds.
    #[arg(long, default_value_t = 25, hide = true)]
    poll_wait_secs: u64,
}

pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(&args.token_file)
        .with_context(|| {
            format!(
                "cannot read the agent token from {} (copy <data-dir>/agent-token from the server)",
                args.token_file.display()
            )
        })?
        .trim()
        .to_string();
    if token.is_empty() {
        anyhow::bail!(
            "{} is empty: copy <data-dir>/agent-token from the server",
            args.token_file.display()
        );
    }
    std::fs::create_dir_all(&args.state_dir).with_context(|| {
        format!(
            "cannot create the state directory {}",
            args.state_dir.display()
        )
    })?;
    let mut mirror = MirrorConfig {
        underlay_ip: args.underlay_ip,
        underlay_mtu: args.underlay_mtu,
        send_mode: args.send_mode,
        ..MirrorConfig::default()
    };
    mirror.ring.block_count = args.ring_mb.max(1);
    let options = AgentOptions {
        servers: args.servers,
        token,
        host_id: args.host_id.unwrap_or_else(tmirror_agent::default_host_id),
        state_dir: args.state_dir,
        metrics_listen: args.metrics_listen,
        mirror,
        poll_wait: Duration::from_secs(args.poll_wait_secs.max(1)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime
        .block_on(tmirror_agent::run(
            options,
            tmirror_server::shutdown_signal(),
        ))
        .map_err(anyhow::Error::msg)
}
