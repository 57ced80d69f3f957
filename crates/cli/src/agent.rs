//! `tmirror agent`: the host agent, until SIGINT or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use tmirror_agent::{AgentOptions, CaptureChoice, MirrorConfig, SendMode, Underlay};
use tmirror_client::AgentCredential;

#[derive(Args)]
pub struct AgentArgs {
    /// This host's credential: the JSON {"host_id", "token", "endpoint"} the operator got when
    /// enrolling the host (POST /admin/v1/hosts, `tmirror admin host create HOST -o json`).
    /// Mode 0600: it is refused while group or others have any access.
    #[arg(long, env = "TMIRROR_CREDENTIAL_FILE")]
    credential_file: PathBuf,
    /// Control-plane server (`http://HOST:PORT`); repeat it for fail-over, tried in order.
    /// Default: the credential's endpoint.
    #[arg(long = "server", env = "TMIRROR_SERVER", value_delimiter = ',')]
    servers: Vec<String>,
    /// The name ports are bound to with `binding:host_id`. Default: the credential's host;
    /// if given, it must be that host (a credential acts for its own host only).
    #[arg(long, env = "TMIRROR_HOST_ID")]
    host_id: Option<String>,
    /// Outer source address of the copies: at most one IPv4 and one IPv6 address (repeat the
    /// option, or separate with commas), each for the targets of its family; default: the
    /// kernel's choice per target (the preferred source of its route).
    #[arg(long, env = "TMIRROR_UNDERLAY_IP", value_delimiter = ',')]
    underlay_ip: Vec<IpAddr>,
    /// MTU of the path to the collectors: copies are cut to MTU - 36 bytes (IPv4 collectors)
    /// or MTU - 56 (IPv6), never fragmented.
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
    /// AF_PACKET back-end: the capture ring of each interface, in MiB (blocks of 1 MiB).
    #[arg(long, default_value_t = 64)]
    ring_mb: u32,
    /// eBPF back-end: the one ring of selected copies, shared by all interfaces, in MiB (a
    /// power of two); a larger ring rides out longer pauses of the drain thread.
    #[arg(long, env = "TMIRROR_KERNEL_RING_MB", default_value_t = 32, value_parser = kernel_ring_mb)]
    kernel_ring_mb: u32,
    /// eBPF back-end: how many interfaces it captures; more are captured with AF_PACKET (1 to
    /// 4096). Its plans have room for 256, 1024 or 4096 (the smallest that holds this many),
    /// 10 KiB of kernel memory per interface of room, twice while the sessions change.
    #[arg(long, env = "TMIRROR_KERNEL_MAX_INTERFACES", default_value_t = tmirror_agent::sys::bpf::KERNEL_INTERFACES, value_parser = kernel_max_interfaces)]
    kernel_max_interfaces: u32,
    /// How copies leave: `raw` (raw IPv4 socket), `packet` (Ethernet frames by AF_PACKET to the
    /// underlay device), `packet-bypass` (the same, past its qdisc); see docs/dataplane.md.
    #[arg(long, env = "TMIRROR_SEND_MODE", default_value_t = SendMode::default())]
    send_mode: SendMode,
    /// How frames are captured: `ebpf` (selection in the kernel, one ring for all
    /// interfaces), `af-packet` (a ring per interface), `auto` (ebpf when the kernel offers
    /// it, else af-packet); see docs/dataplane.md.
    #[arg(long, env = "TMIRROR_CAPTURE", default_value_t = CaptureChoice::default())]
    capture: CaptureChoice,
    /// Certificate authority (PEM) to trust for an https:// server besides the system's roots,
    /// e.g. a self-signed server's DATA_DIR/tls-cert.pem.
    #[arg(long, env = "TMIRROR_CA_FILE", value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Longest wait of one long-poll, in seconds.
    #[arg(long, default_value_t = 25, hide = true)]
    poll_wait_secs: u64,
}

/// `--kernel-ring-mb`: refused at once if the kernel could not size a ring so.
fn kernel_ring_mb(s: &str) -> Result<u32, String> {
    const GIVE: &str = "give a power of two from 1 to 1024 (16, 32, 64, ...)";
    let mb: u32 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of MiB: {GIVE}"))?;
    if !tmirror_agent::kernel::ring_mib_ok(mb) {
        return Err(format!("{mb} MiB: {GIVE}"));
    }
    Ok(mb)
}

/// `--kernel-max-interfaces`: refused at once outside what the program takes.
fn kernel_max_interfaces(s: &str) -> Result<u32, String> {
    let n: u32 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of interfaces"))?;
    tmirror_agent::kernel::check_interfaces(n)?;
    Ok(n)
}

pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let credential = AgentCredential::load(&args.credential_file)?;
    let file = args.credential_file.display();
    let host_id = match args.host_id {
        Some(h) if h != credential.host_id => bail!(
            "--host-id {h} is not the host of the credential in {file} ({}): a host's credential \
             acts only for that host; enrol {h} for its own credential, or leave out --host-id",
            credential.host_id
        ),
        _ => credential.host_id.clone(),
    };
    let servers = if !args.servers.is_empty() {
        args.servers
    } else if let Some(endpoint) = credential.endpoint.clone() {
        vec![endpoint]
    } else {
        bail!("{file} names no endpoint: give the control plane with --server https://HOST:PORT")
    };
    std::fs::create_dir_all(&args.state_dir).with_context(|| {
        format!(
            "cannot create the state directory {}",
            args.state_dir.display()
        )
    })?;
    let underlay = Underlay::from_addresses(&args.underlay_ip)
        .map_err(|e| anyhow::anyhow!("--underlay-ip: {e}"))?;
    let mut mirror = MirrorConfig {
        underlay,
        underlay_mtu: args.underlay_mtu,
        send_mode: args.send_mode,
        capture: args.capture,
        ..MirrorConfig::default()
    };
    mirror.ring.block_count = args.ring_mb.max(1);
    mirror.kernel_ring_bytes = (args.kernel_ring_mb as usize) << 20;
    mirror.kernel_interfaces = args.kernel_max_interfaces;
    let options = AgentOptions {
        servers,
        token: credential.token,
        host_id,
        state_dir: args.state_dir,
        metrics_listen: args.metrics_listen,
        mirror,
        poll_wait: Duration::from_secs(args.poll_wait_secs.max(1)),
        transport: tmirror_client::Transport {
            ca_file: args.ca_file,
        },
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

#[cfg(test)]
mod tests {
    use super::{kernel_max_interfaces, kernel_ring_mb};

    #[test]
    fn kernel_ring_sizes_the_kernel_cannot_take_are_refused_with_what_to_give() {
        assert_eq!(kernel_ring_mb("32"), Ok(32));
        assert_eq!(kernel_ring_mb("1"), Ok(1));
        for bad in ["0", "24", "2048"] {
            let e = kernel_ring_mb(bad).unwrap_err();
            assert!(e.contains("power of two from 1 to 1024"), "{bad}: {e}");
        }
        assert!(kernel_ring_mb("lots").unwrap_err().contains("not a number"));
    }

    #[test]
    fn kernel_interface_counts_the_program_cannot_take_are_refused() {
        assert_eq!(kernel_max_interfaces("256"), Ok(256));
        assert_eq!(kernel_max_interfaces("4096"), Ok(4096));
        for bad in ["0", "4097"] {
            let e = kernel_max_interfaces(bad).unwrap_err();
            assert!(e.contains("from 1 to 4096"), "{bad}: {e}");
        }
        assert!(kernel_max_interfaces("all")
            .unwrap_err()
            .contains("not a number"));
    }
}
