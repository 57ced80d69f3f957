//! `tmirror`: one binary for the control plane, the agent, the collector and the CLI.
//!
//! Thin by design: parse arguments, set up logging, build the runtime, call a library `run`.

mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tmirror",
    version,
    about = "Self-hostable VPC traffic mirroring"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (Huawei Cloud VPC v3 traffic-mirroring API and v1 ports).
    Serve(serve::ServeArgs),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TMIRROR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            init_logging();
            serve::run(args)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tmirror: {e:#}");
            ExitCode::from(1)
        }
    }
}
