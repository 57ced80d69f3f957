//! `tmirror serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use tmirror_server::config::{ConnectionLimits, TlsMode};
use tmirror_server::service::Limits;
use tmirror_server::throttle::{Rate, ThrottleConfig};
use tmirror_server::{ServeConfig, UnboundPorts};
use tmirror_store::MasterKey;

/// `--unbound-ports`: the command line's spelling of [`UnboundPorts`].
#[derive(Clone, Copy, Debug, ValueEnum)]
enum UnboundPortsArg {
    ByInterface,
    Nowhere,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TMIRROR_LISTEN", default_value = "127.0.0.1:9696")]
    listen: SocketAddr,
    /// Directory for the embedded database and the generated credentials.
    #[arg(long, env = "TMIRROR_DATA_DIR", default_value = "./tmirror-data")]
    data_dir: PathBuf,
    /// Database URL; default: SQLite in the data directory (sqlite:DATA_DIR/tmirror.db).
    #[arg(long, env = "TMIRROR_DATABASE_URL")]
    database_url: Option<String>,
    /// Region name the server answers for.
    #[arg(long, env = "TMIRROR_REGION", default_value = "local-1")]
    region: String,
    /// Most source ports in one session.
    #[arg(long, env = "TMIRROR_MAX_SOURCES_PER_SESSION", default_value_t = Limits::default().sources_per_session)]
    max_sources_per_session: u32,
    /// Most sessions one source port may belong to.
    #[arg(long, env = "TMIRROR_MAX_SESSIONS_PER_SOURCE", default_value_t = Limits::default().sessions_per_source)]
    max_sessions_per_source: u32,
    /// Most rules per direction of a filter.
    #[arg(long, env = "TMIRROR_MAX_RULES_PER_DIRECTION", default_value_t = Limits::default().rules_per_direction)]
    max_rules_per_direction: u32,
    /// Most traffic mirror sessions one project may hold.
    #[arg(long, env = "TMIRROR_MAX_SESSIONS_PER_PROJECT", default_value_t = Limits::default().sessions_per_project)]
    max_sessions_per_project: u32,
    /// Most traffic mirror filters one project may hold.
    #[arg(long, env = "TMIRROR_MAX_FILTERS_PER_PROJECT", default_value_t = Limits::default().filters_per_project)]
    max_filters_per_project: u32,
    /// Most ports one project may hold.
    #[arg(long, env = "TMIRROR_MAX_PORTS_PER_PROJECT", default_value_t = Limits::default().ports_per_project)]
    max_ports_per_project: u32,
    /// Most load balancers one project may hold.
    #[arg(long, env = "TMIRROR_MAX_LOAD_BALANCERS_PER_PROJECT", default_value_t = Limits::default().load_balancers_per_project)]
    max_load_balancers_per_project: u32,
    /// Most members one load balancer may hold.
    #[arg(long, env = "TMIRROR_MAX_MEMBERS_PER_LOAD_BALANCER", default_value_t = Limits::default().members_per_load_balancer)]
    max_members_per_load_balancer: u32,
    /// Most elastic IPs one project may hold.
    #[arg(long, env = "TMIRROR_MAX_EIPS_PER_PROJECT", default_value_t = Limits::default().eips_per_project)]
    max_eips_per_project: u32,
    /// The audit log: one JSON line per change and per refused signature ("-": standard
    /// error). Default: audit.log in the data directory.
    #[arg(long, env = "TMIRROR_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(
        long,
        env = "TMIRROR_TLS_CERT",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "TMIRROR_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate kept in the data directory (tls-cert.pem,
    /// made at the first start); clients trust it with --ca-file DATA_DIR/tls-cert.pem.
    #[arg(long, env = "TMIRROR_TLS_SELF_SIGNED")]
    tls_self_signed: bool,
    /// Allow plain HTTP on a non-loopback address (a TLS proxy or a private network protects
    /// this hop).
    #[arg(long, env = "TMIRROR_INSECURE_HTTP")]
    insecure_http: bool,
    /// Serve Prometheus metrics on this address (/metrics; plain HTTP: loopback or a
    /// management network, as they name every tenant's sessions and every host).
    #[arg(long, env = "TMIRROR_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Where a port bound to no host is captured: by-interface (by whichever host's agent
    /// reports the port's interface, which any host token can claim) or nowhere (until the
    /// operator binds it: a host token then reaches only the ports bound to its host). Every
    /// server of a deployment must say the same.
    #[arg(long, env = "TMIRROR_UNBOUND_PORTS", value_enum, default_value_t = UnboundPortsArg::ByInterface)]
    unbound_ports: UnboundPortsArg,
    /// Most connections open at once.
    #[arg(long, env = "TMIRROR_MAX_CONNECTIONS", default_value_t = ConnectionLimits::default().max_connections)]
    max_connections: usize,
    /// Most connections open at once from one client address.
    #[arg(long, env = "TMIRROR_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = ConnectionLimits::default().max_per_address)]
    max_connections_per_address: usize,
    /// Seconds a connection gets to send a request's headers (also the keep-alive time-out).
    #[arg(long, env = "TMIRROR_HEADER_READ_TIMEOUT", default_value_t = ConnectionLimits::default().header_read_timeout.as_secs())]
    header_read_timeout: u64,
    /// Requests per second one credential may sign (after its signature is verified; 0: no
    /// limit). Huawei face: 429 APIGW.0308; Alibaba face: 400 Throttling.User; admin API: 429.
    #[arg(long, env = "TMIRROR_RATE_PER_KEY", default_value_t = ThrottleConfig::default().per_key.rate)]
    rate_per_key: u32,
    /// Requests one credential may send at once before --rate-per-key applies.
    #[arg(long, env = "TMIRROR_BURST_PER_KEY", default_value_t = ThrottleConfig::default().per_key.burst)]
    burst_per_key: u32,
    /// Requests per second from one client address (IPv6: one /64), before any signature is
    /// looked at; health checks and the agent API are not counted (0: no limit).
    #[arg(long, env = "TMIRROR_RATE_PER_ADDRESS", default_value_t = ThrottleConfig::default().per_address.rate)]
    rate_per_address: u32,
    /// Requests one client address may send at once before --rate-per-address applies.
    #[arg(long, env = "TMIRROR_BURST_PER_ADDRESS", default_value_t = ThrottleConfig::default().per_address.burst)]
    burst_per_address: u32,
    /// Failed authentications per minute from one client address (and at once); past them,
    /// every request from the address is refused, unverified, until one comes back (0: no
    /// limit).
    #[arg(long, env = "TMIRROR_AUTH_FAILURES_PER_ADDRESS", default_value_t = ThrottleConfig::default().auth_failures.rate)]
    auth_failures_per_address: u32,
    #[command(flatten)]
    keys: MasterKeyArgs,
}

/// Where the master key that encrypts credentials' secrets at rest comes from (`serve` and
/// `master-key rotate`). `TMIRROR_MASTER_KEY` (base64 of 32 bytes) is read from the
/// environment only: a flag would show the key to every user in `ps`.
#[derive(Args, Clone, Debug, Default)]
pub struct MasterKeyArgs {
    /// File holding the master key that encrypts the credentials' secret keys (base64 of 32
    /// random bytes). Default: the TMIRROR_MASTER_KEY variable, else master.key in the data
    /// directory, created at first start. Servers sharing one database need the same key.
    #[arg(long, env = "TMIRROR_MASTER_KEY_FILE", value_name = "FILE")]
    master_key_file: Option<PathBuf>,
    /// A further master key that decrypts but never encrypts, for a key rotation (repeatable).
    #[arg(
        long,
        env = "TMIRROR_ACCEPT_MASTER_KEY_FILES",
        value_name = "FILE",
        value_delimiter = ','
    )]
    accept_master_key_file: Vec<PathBuf>,
}

/// The variable that may hold the master key itself.
pub const MASTER_KEY_ENV: &str = "TMIRROR_MASTER_KEY";

impl MasterKeyArgs {
    /// Fills the key settings of `config`.
    pub fn apply(self, config: &mut ServeConfig) -> anyhow::Result<()> {
        config.master_key = match std::env::var(MASTER_KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => Some(
                MasterKey::from_base64(&text)
                    .with_context(|| format!("{MASTER_KEY_ENV} does not hold a master key"))?,
            ),
            _ => None,
        };
        config.master_key_file = self.master_key_file;
        config.accept_master_key_files = self.accept_master_key_file;
        Ok(())
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = config(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(tmirror_server::run(config))
}

/// The server's configuration from the flags (and their `TMIRROR_*` variables).
fn config(args: ServeArgs) -> anyhow::Result<ServeConfig> {
    let mut config = ServeConfig {
        listen: args.listen,
        data_dir: args.data_dir,
        database_url: args.database_url,
        region: args.region,
        limits: Limits {
            sources_per_session: args.max_sources_per_session,
            sessions_per_source: args.max_sessions_per_source,
            rules_per_direction: args.max_rules_per_direction,
            sessions_per_project: args.max_sessions_per_project,
            filters_per_project: args.max_filters_per_project,
            ports_per_project: args.max_ports_per_project,
            load_balancers_per_project: args.max_load_balancers_per_project,
            members_per_load_balancer: args.max_members_per_load_balancer,
            eips_per_project: args.max_eips_per_project,
        },
        audit_log: args.audit_log,
        tls: match (args.tls_cert, args.tls_key, args.tls_self_signed) {
            (Some(cert), Some(key), _) => TlsMode::Files { cert, key },
            (_, _, true) => TlsMode::SelfSigned,
            _ => TlsMode::Off,
        },
        insecure_http: args.insecure_http,
        metrics_listen: args.metrics_listen,
        unbound_ports: match args.unbound_ports {
            UnboundPortsArg::ByInterface => UnboundPorts::ByInterface,
            UnboundPortsArg::Nowhere => UnboundPorts::Nowhere,
        },
        throttle: ThrottleConfig {
            per_key: Rate::per_second(args.rate_per_key, args.burst_per_key),
            per_address: Rate::per_second(args.rate_per_address, args.burst_per_address),
            auth_failures: Rate::per_minute(args.auth_failures_per_address),
        },
        connections: ConnectionLimits {
            max_connections: args.max_connections,
            max_per_address: args.max_connections_per_address,
            header_read_timeout: std::time::Duration::from_secs(args.header_read_timeout),
            ..ConnectionLimits::default()
        },
        ..ServeConfig::default()
    };
    args.keys.apply(&mut config)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parsed(args: &[&str]) -> ServeConfig {
        let mut argv = vec!["serve"];
        argv.extend_from_slice(args);
        config(Cli::try_parse_from(argv).unwrap().serve).unwrap()
    }

    fn limits(args: &[&str]) -> Limits {
        parsed(args).limits
    }

    #[test]
    fn throttling_defaults_to_the_servers_and_each_flag_sets_its_own() {
        // The test process has no TMIRROR_RATE_*, TMIRROR_BURST_* or TMIRROR_AUTH_* variables.
        assert_eq!(parsed(&[]).throttle, ThrottleConfig::default());
        let set = parsed(&[
            "--rate-per-key=1",
            "--burst-per-key=2",
            "--rate-per-address=3",
            "--burst-per-address=4",
            "--auth-failures-per-address=5",
        ])
        .throttle;
        assert_eq!(
            set,
            ThrottleConfig {
                per_key: Rate::per_second(1, 2),
                per_address: Rate::per_second(3, 4),
                auth_failures: Rate::per_minute(5),
            }
        );
    }

    #[test]
    fn unbound_ports_are_captured_by_interface_unless_said_otherwise() {
        // The test process has no TMIRROR_UNBOUND_PORTS variable.
        assert_eq!(parsed(&[]).unbound_ports, UnboundPorts::ByInterface);
        assert_eq!(
            parsed(&["--unbound-ports=nowhere"]).unbound_ports,
            UnboundPorts::Nowhere
        );
        assert!(Cli::try_parse_from(["serve", "--unbound-ports=anywhere"]).is_err());
    }

    #[test]
    fn quotas_default_to_the_servers_and_each_flag_sets_its_own() {
        // The test process has no TMIRROR_MAX_* variables of its own.
        assert_eq!(limits(&[]), Limits::default());
        let set = limits(&[
            "--max-sources-per-session=1",
            "--max-sessions-per-source=2",
            "--max-rules-per-direction=3",
            "--max-sessions-per-project=4",
            "--max-filters-per-project=5",
            "--max-ports-per-project=6",
            "--max-load-balancers-per-project=7",
            "--max-members-per-load-balancer=8",
            "--max-eips-per-project=9",
        ]);
        assert_eq!(
            set,
            Limits {
                sources_per_session: 1,
                sessions_per_source: 2,
                rules_per_direction: 3,
                sessions_per_project: 4,
                filters_per_project: 5,
                ports_per_project: 6,
                load_balancers_per_project: 7,
                members_per_load_balancer: 8,
                eips_per_project: 9,
            }
        );
    }

    #[test]
    fn master_key_files_are_passed_on() {
        let c = config(
            Cli::try_parse_from([
                "serve",
                "--master-key-file=/k/new.key",
                "--accept-master-key-file=/k/old.key",
                "--accept-master-key-file=/k/older.key",
            ])
            .unwrap()
            .serve,
        )
        .unwrap();
        assert_eq!(c.master_key_file, Some(PathBuf::from("/k/new.key")));
        assert_eq!(
            c.accept_master_key_files,
            [PathBuf::from("/k/old.key"), PathBuf::from("/k/older.key")]
        );
    }
}
