//! `tmirror serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tmirror_server::service::Limits;
use tmirror_server::ServeConfig;
use tmirror_store::MasterKey;

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
    /// The audit log: one JSON line per change and per refused signature ("-": standard
    /// error). Default: audit.log in the data directory.
    #[arg(long, env = "TMIRROR_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
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
        },
        audit_log: args.audit_log,
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

    fn limits(args: &[&str]) -> Limits {
        let mut argv = vec!["serve"];
        argv.extend_from_slice(args);
        config(Cli::try_parse_from(argv).unwrap().serve)
            .unwrap()
            .limits
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
