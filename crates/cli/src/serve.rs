//! `tmirror serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use tmirror_server::service::Limits;
use tmirror_server::ServeConfig;

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
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig {
        listen: args.listen,
        data_dir: args.data_dir,
        database_url: args.database_url,
        region: args.region,
        limits: Limits {
            sources_per_session: args.max_sources_per_session,
            sessions_per_source: args.max_sessions_per_source,
            rules_per_direction: args.max_rules_per_direction,
        },
        ..ServeConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(tmirror_server::run(config))
}
