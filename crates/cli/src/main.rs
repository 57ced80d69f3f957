//! `tmirror`: one binary for the control plane, the agent, the collector and the CLI.
//!
//! Thin by design: parse arguments, set up logging, build the runtime, call a library `run`
//! (`serve`) or a command module (`session`, `filter`, `rule`, `port`, `admin`; see
//! [`commands`]).

mod agent;
mod capture;
mod commands;
mod demo;
mod error;
mod master_key;
mod output;
mod serve;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};

use commands::{
    admin, eip, filter, host, lb, port, rule, session, ClientOpts, Context, TopClientOpts,
};
use error::CliError;

#[derive(Parser)]
#[command(
    name = "tmirror",
    version,
    about = "Self-hostable VPC traffic mirroring"
)]
struct Cli {
    #[command(flatten)]
    client: TopClientOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (Huawei Cloud VPC v3 traffic-mirroring API and v1 ports).
    Serve(serve::ServeArgs),
    /// The master key that encrypts credentials' secrets at rest: generate one, rotate it
    MasterKey(master_key::MasterKeyArgs),
    /// Run the host agent: mirror this host's source interfaces as the control plane says.
    Agent(agent::AgentArgs),
    /// Receive VXLAN mirror traffic and write the inner frames to pcapng, per VNI.
    Capture(capture::CaptureArgs),
    /// Build a small cloud in network namespaces and watch tmirror mirror it (root)
    Demo(demo::DemoArgs),
    /// Traffic mirror sessions
    Session(session::SessionArgs),
    /// Traffic mirror filters
    Filter(filter::FilterArgs),
    /// Traffic mirror filter rules
    Rule(rule::RuleArgs),
    /// Ports (ENIs): mirror sources and targets
    Port(port::PortArgs),
    /// Elastic IPs: public addresses on a gateway host, sources of `eip` sessions
    Eip(eip::EipArgs),
    /// Load balancers: collectors sharing a session's copies (`--target-type elb`)
    Lb(lb::LbArgs),
    /// Projects, credentials, agent hosts, networks and port bindings (operator, project admin)
    Admin(admin::AdminArgs),
    /// The fleet: hosts, their agents' state, lag, capturing interfaces and drops (operator)
    Host(host::HostArgs),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TMIRROR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log redirected to a file (a unit's journal, an agent's
    // log beside a test) stays plain text that grep and readers see as written.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// Builds the context from the merged client options and runs one resource command.
fn client_command(
    top: &TopClientOpts,
    opts: ClientOpts,
    run: impl FnOnce(&Context) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let ctx = Context::new(opts.merge(top))?;
    run(&ctx)
}

/// The exit of a long-running command: 0, or 1 after saying why on stderr.
fn exit_code(name: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// mimalloc for every allocation of the process: with glibc's allocator, `malloc` and `free`
/// were 28 % of the user-space instructions of an Alibaba describe on the server (callgrind)
/// and a fifth of a Huawei show's; "override" takes SQLite's C allocations along
/// (docs/performance.md, "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let top = &cli.client;
    let result = match cli.command {
        Command::Serve(args) => {
            if top.any() {
                Cli::command()
                    .error(
                        ErrorKind::ArgumentConflict,
                        "--endpoint, --credentials, --data-dir and --output before `serve` are \
                         client options; give serve's own options after it: `tmirror serve --data-dir DIR`",
                    )
                    .exit();
            }
            init_logging();
            return exit_code("tmirror", serve::run(args));
        }
        Command::MasterKey(args) => {
            if top.any() {
                Cli::command()
                    .error(
                        ErrorKind::ArgumentConflict,
                        "give master-key's options after it: `tmirror master-key rotate --data-dir DIR …`",
                    )
                    .exit();
            }
            init_logging();
            return exit_code("tmirror master-key", master_key::run(args));
        }
        Command::Agent(args) => {
            init_logging();
            return exit_code("tmirror", agent::run(args));
        }
        Command::Demo(args) => return exit_code("tmirror demo", demo::run(args)),
        Command::Capture(args) => {
            init_logging();
            return exit_code("tmirror", capture::run(args));
        }
        Command::Session(a) => client_command(top, a.opts, |c| session::run(c, a.command)),
        Command::Filter(a) => client_command(top, a.opts, |c| filter::run(c, a.command)),
        Command::Rule(a) => client_command(top, a.opts, |c| rule::run(c, a.command)),
        Command::Port(a) => client_command(top, a.opts, |c| port::run(c, a.command)),
        Command::Eip(a) => client_command(top, a.opts, |c| eip::run(c, a.command)),
        Command::Lb(a) => client_command(top, a.opts, |c| lb::run(c, a.command)),
        Command::Admin(a) => client_command(top, a.opts, |c| admin::run(c, a.command)),
        Command::Host(a) => client_command(top, a.opts, |c| host::run(c, a.command)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Same exit code and look as clap's own usage errors.
        Err(CliError::Usage(message)) => Cli::command()
            .error(ErrorKind::MissingRequiredArgument, message)
            .exit(),
        Err(e) => {
            eprintln!("tmirror: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(1)
        }
    }
}
