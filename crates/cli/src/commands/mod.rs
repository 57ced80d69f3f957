//! The resource commands: `tmirror session|filter|rule|port ...`, talking to the Huawei face
//! through [`tmirror_client`], and `tmirror admin ...` and `tmirror host ...`, talking to the
//! admin API.
//!
//! Where the client gets its endpoint and credential (first match wins):
//! - credentials: `--credentials FILE`, `$TMIRROR_CREDENTIALS`,
//!   `<data-dir>/admin-credentials.json` with `--data-dir`, `$TMIRROR_DATA_DIR`, `./tmirror-data`;
//! - endpoint: `--endpoint URL`, `$TMIRROR_ENDPOINT`, the credentials file's `endpoint`,
//!   `http://127.0.0.1:9696`.

pub mod admin;
pub mod eip;
pub mod eip_pool;
pub mod filter;
pub mod host;
pub mod lb;
pub mod port;
pub mod rule;
pub mod session;

use std::future::Future;
use std::path::PathBuf;

use clap::Args;
use tmirror_client::{Client, ClientError, Credentials, ListOptions, Transport};

use crate::error::CliError;
use crate::output::Format;

/// Default data directory, the same as `tmirror serve`'s.
const DEFAULT_DATA_DIR: &str = "./tmirror-data";
/// Default endpoint, `tmirror serve`'s default listen address.
const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:9696";
/// The file `tmirror serve` writes into its data directory.
const ADMIN_CREDENTIALS_FILE: &str = "admin-credentials.json";

/// Options of every client command. Accepted both before the resource (`tmirror --output json
/// session list`) and after it (`tmirror session list --output json`); the later one wins.
///
/// Environment variables are read here rather than by clap, so that a flag given before the
/// resource is not overridden by the environment through the later copy.
#[derive(Args, Clone, Debug, Default)]
pub struct ClientOpts {
    /// Server URL [env: TMIRROR_ENDPOINT; default: the credentials file's endpoint]
    #[arg(
        long,
        value_name = "URL",
        global = true,
        help_heading = "Client options"
    )]
    pub endpoint: Option<String>,
    /// Credentials file [env: TMIRROR_CREDENTIALS; default: DATA_DIR/admin-credentials.json]
    #[arg(
        long,
        alias = "credentials-file",
        value_name = "FILE",
        global = true,
        help_heading = "Client options"
    )]
    pub credentials: Option<PathBuf>,
    /// Data directory of a local `tmirror serve`, where its admin credentials are
    /// [env: TMIRROR_DATA_DIR; default: ./tmirror-data]
    #[arg(
        long,
        value_name = "DIR",
        global = true,
        help_heading = "Client options"
    )]
    pub data_dir: Option<PathBuf>,
    /// Certificate authority (PEM) to trust for an https:// server besides the system's roots,
    /// e.g. a self-signed server's DATA_DIR/tls-cert.pem [env: TMIRROR_CA_FILE]
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        help_heading = "Client options"
    )]
    pub ca_file: Option<PathBuf>,
    /// table (for people) or json (the API's body, for scripts) [default: table]
    #[arg(
        long,
        short = 'o',
        value_enum,
        global = true,
        help_heading = "Client options"
    )]
    pub output: Option<Format>,
}

/// The same options for the top level, where they must not be `global` (that would hand
/// them to `tmirror serve`, whose own `--data-dir` means something else).
#[derive(Args, Clone, Debug, Default)]
pub struct TopClientOpts {
    /// Server URL, for the resource commands (see `tmirror session --help`)
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Credentials file, for the resource commands
    #[arg(long, alias = "credentials-file", value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Data directory whose admin-credentials.json the resource commands use
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Certificate authority (PEM) the resource commands trust for an https:// server
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Output of the resource commands: table or json
    #[arg(long, short = 'o', value_enum)]
    pub output: Option<Format>,
}

impl TopClientOpts {
    /// Whether any was given (they mean nothing to `tmirror serve`).
    pub fn any(&self) -> bool {
        self.endpoint.is_some()
            || self.credentials.is_some()
            || self.data_dir.is_some()
            || self.ca_file.is_some()
            || self.output.is_some()
    }
}

impl ClientOpts {
    /// Fills what this copy lacks from the top-level copy.
    pub fn merge(self, top: &TopClientOpts) -> ClientOpts {
        ClientOpts {
            endpoint: self.endpoint.or_else(|| top.endpoint.clone()),
            credentials: self.credentials.or_else(|| top.credentials.clone()),
            data_dir: self.data_dir.or_else(|| top.data_dir.clone()),
            ca_file: self.ca_file.or_else(|| top.ca_file.clone()),
            output: self.output.or(top.output),
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// What a command runs with: a client and the output format.
pub struct Context {
    pub client: Client,
    pub format: Format,
    credentials_path: PathBuf,
    /// Single-threaded: a command makes one call or a few in sequence, and a thread pool
    /// would only cost start-up time.
    runtime: tokio::runtime::Runtime,
}

impl Context {
    /// Loads the credential and builds the client.
    pub fn new(opts: ClientOpts) -> Result<Context, CliError> {
        let credentials_path = opts
            .credentials
            .or_else(|| env("TMIRROR_CREDENTIALS").map(PathBuf::from))
            .unwrap_or_else(|| {
                opts.data_dir
                    .or_else(|| env("TMIRROR_DATA_DIR").map(PathBuf::from))
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
                    .join(ADMIN_CREDENTIALS_FILE)
            });
        let file = Credentials::load(&credentials_path)?;
        let endpoint = opts
            .endpoint
            .or_else(|| env("TMIRROR_ENDPOINT"))
            .or(file.endpoint)
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let transport = Transport {
            ca_file: opts
                .ca_file
                .or_else(|| env("TMIRROR_CA_FILE").map(PathBuf::from)),
        };
        let client =
            Client::with_transport(&endpoint, file.credentials, &transport).map_err(|source| {
                CliError::Client {
                    source,
                    credentials: credentials_path.clone(),
                }
            })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds");
        Ok(Context {
            client,
            format: opts.output.unwrap_or_default(),
            credentials_path,
            runtime,
        })
    }

    /// Runs one client call to completion, tagging a failure with the credentials' origin.
    pub fn call<T, F: Future<Output = Result<T, ClientError>>>(&self, f: F) -> Result<T, CliError> {
        self.runtime.block_on(f).map_err(|source| CliError::Client {
            source,
            credentials: self.credentials_path.clone(),
        })
    }

    pub fn json(&self) -> bool {
        self.format == Format::Json
    }
}

/// Paging flags of every list command.
#[derive(Args, Clone, Debug, Default)]
pub struct Paging {
    /// Items per page (server default and maximum: 2000)
    #[arg(long)]
    pub limit: Option<u32>,
    /// Start after the item with this id (a page's next_marker)
    #[arg(long)]
    pub marker: Option<String>,
    /// Fetch every page, following next_marker
    #[arg(long)]
    pub all: bool,
}

impl Paging {
    /// List options with these paging flags and `filters` (`(query key, values)`).
    pub fn options(&self, filters: &[(&str, &[String])]) -> ListOptions {
        let mut opts = ListOptions {
            limit: self.limit,
            marker: self.marker.clone(),
            filters: Vec::new(),
        };
        for (key, values) in filters {
            for v in *values {
                opts = opts.filter(*key, v.clone());
            }
        }
        opts
    }
}

/// Comma-joined ids for a table cell, `-` for none.
pub fn joined(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(",")
    }
}

/// A usage error for an update without a single field to change.
pub fn nothing_to_update(kind: &str) -> CliError {
    CliError::Usage(format!(
        "nothing to update: give at least one field to change (see `tmirror {kind} update --help`)"
    ))
}
