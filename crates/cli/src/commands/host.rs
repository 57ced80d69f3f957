//! `tmirror host ...`: the fleet at a glance (operator). Whether each host's agent is
//! connected, which generation of its desired state it applied and how far behind that is,
//! which of its interfaces it captures, and what it dropped — from the agents' last reports
//! (`GET /admin/v1/hosts`). Enrolling and removing hosts is `tmirror admin host`.

use clap::{Args, Subcommand};
use serde_json::json;
use tmirror_client::{AdminClient, Host, InterfaceStatus};

use super::{ClientOpts, Context};
use crate::error::CliError;
use crate::output::{self, fields, or_dash, Table};

/// The fleet: hosts, their agents' state, lag, capturing interfaces and drops (operator)
#[derive(Args)]
pub struct HostArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub command: HostCommand,
}

#[derive(Subcommand)]
pub enum HostCommand {
    /// Every enrolled host: connected, applied generation, lag, interfaces capturing, drops
    List,
    /// One host, with each of its interfaces' state and counters
    Show {
        /// Host id (`tmirror host list`)
        host_id: String,
    },
}

pub fn run(ctx: &Context, command: HostCommand) -> Result<(), CliError> {
    let admin = AdminClient::from(ctx.client.clone());
    match command {
        HostCommand::List => {
            let hosts = ctx.call(admin.host_list())?;
            if ctx.json() {
                output::print_json(&json!({ "hosts": hosts }));
            } else {
                output::print(&table(&hosts));
            }
        }
        HostCommand::Show { host_id } => {
            let host = ctx.call(admin.host_show(&host_id))?;
            if ctx.json() {
                output::print_json(&host);
            } else {
                output::print(&show(&host));
            }
        }
    }
    Ok(())
}

fn connection(h: &Host) -> String {
    match &h.agent {
        None => "never seen".into(),
        Some(a) if a.connected => "connected".into(),
        Some(_) => "disconnected".into(),
    }
}

/// `capturing/reported`, e.g. `2/3`.
fn capturing(interfaces: &[InterfaceStatus]) -> String {
    let n = interfaces.iter().filter(|i| i.state == "capturing").count();
    format!("{n}/{}", interfaces.len())
}

fn table(hosts: &[Host]) -> String {
    let mut t = Table::new(vec![
        "HOST_ID",
        "ENABLED",
        "AGENT",
        "GENERATION",
        "LAG",
        "CAPTURING",
        "DROPS",
        "LAST_SEEN",
    ]);
    for h in hosts {
        let agent = h.agent.as_ref();
        let interfaces = agent.map(|a| a.interface_status()).unwrap_or_default();
        t.row(vec![
            h.host_id.clone(),
            h.enabled.to_string(),
            connection(h),
            or_dash(agent.map(|a| a.applied_generation.to_string()).as_deref()),
            or_dash(agent.and_then(|a| a.lag).map(|l| l.to_string()).as_deref()),
            if agent.is_some() {
                capturing(&interfaces)
            } else {
                "-".into()
            },
            or_dash(
                agent
                    .map(|_| interfaces.iter().map(InterfaceStatus::drops).sum::<u64>())
                    .map(|d| d.to_string())
                    .as_deref(),
            ),
            or_dash(agent.map(|a| a.last_seen.as_str())),
        ]);
    }
    t.render()
}

fn show(h: &Host) -> String {
    let mut pairs = vec![
        ("host_id", h.host_id.clone()),
        ("enabled", h.enabled.to_string()),
        ("agent", connection(h)),
    ];
    let Some(a) = &h.agent else {
        return fields(pairs);
    };
    let interfaces = a.interface_status();
    pairs.extend([
        ("last_seen", a.last_seen.clone()),
        ("applied_generation", a.applied_generation.to_string()),
        ("lag", or_dash(a.lag.map(|l| l.to_string()).as_deref())),
        ("capturing", capturing(&interfaces)),
        (
            "drops",
            interfaces
                .iter()
                .map(InterfaceStatus::drops)
                .sum::<u64>()
                .to_string(),
        ),
    ]);
    let mut out = fields(pairs);
    if !interfaces.is_empty() {
        let mut t = Table::new(vec![
            "INTERFACE",
            "STATE",
            "CAPTURED",
            "MIRRORED",
            "NOT_MIRRORED",
            "RING_DROPS",
            "SEND_DROPS",
        ]);
        for i in &interfaces {
            t.row(vec![
                i.interface.clone(),
                i.state.clone(),
                i.captured.to_string(),
                i.mirrored.to_string(),
                i.not_mirrored.to_string(),
                i.ring_drops.to_string(),
                i.send_drops.to_string(),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    out
}
