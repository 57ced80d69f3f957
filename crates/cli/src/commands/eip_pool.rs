//! `tmirror admin eip-pool ...`: the operator's elastic IP pools and the gateway host interface
//! each one's addresses live on (`docs/eips.md`).

use clap::Subcommand;
use serde_json::json;
use tmirror_client::{AdminClient, EipPool, EipPoolPut};

use super::Context;
use crate::error::CliError;
use crate::output::{self, fields, or_dash, Table};

#[derive(Subcommand)]
pub enum EipPoolCommand {
    /// Create or replace a pool: its addresses and the gateway host interface they live on
    Put {
        /// Pool id: what tenants give as publicip type, e.g. 5_bgp
        id: String,
        /// Address block, e.g. 198.51.100.0/24; repeat for several
        #[arg(long = "cidr", value_name = "CIDR", required = true)]
        cidrs: Vec<String>,
        /// The gateway host (`tmirror admin host list`) [default: bound to none]
        #[arg(long, value_name = "HOST", requires = "interface")]
        host: Option<String>,
        /// The gateway host's external interface, where the addresses are, e.g. eth0
        #[arg(long, value_name = "NAME", requires = "host")]
        interface: Option<String>,
    },
    /// List pools
    List,
    /// Delete a pool (refused while EIPs use it)
    Delete {
        /// Pool id
        id: String,
    },
}

pub fn run(ctx: &Context, a: &AdminClient, command: EipPoolCommand) -> Result<(), CliError> {
    match command {
        EipPoolCommand::Put {
            id,
            cidrs,
            host,
            interface,
        } => {
            let body = EipPoolPut {
                cidrs,
                host_id: host.unwrap_or_default(),
                interface_name: interface.unwrap_or_default(),
            };
            show(ctx, &ctx.call(a.eip_pool_put(&id, &body))?);
        }
        EipPoolCommand::List => {
            let all = ctx.call(a.eip_pool_list())?;
            if ctx.json() {
                output::print_json(&json!({ "eip_pools": all }));
            } else {
                let mut t = Table::new(vec!["ID", "CIDRS", "HOST", "INTERFACE"]);
                for p in &all {
                    t.row(vec![
                        p.id.clone(),
                        super::joined(&p.cidrs),
                        or_dash(Some(&p.host_id)),
                        or_dash(Some(&p.interface_name)),
                    ]);
                }
                output::print(&t.render());
            }
        }
        EipPoolCommand::Delete { id } => {
            ctx.call(a.eip_pool_delete(&id))?;
            if !ctx.json() {
                output::print(&format!("deleted elastic IP pool {id}\n"));
            }
        }
    }
    Ok(())
}

fn show(ctx: &Context, p: &EipPool) {
    if ctx.json() {
        output::print_json(p);
        return;
    }
    output::print(&fields(vec![
        ("id", p.id.clone()),
        ("cidrs", super::joined(&p.cidrs)),
        ("host_id", or_dash(Some(&p.host_id))),
        ("interface_name", or_dash(Some(&p.interface_name))),
        ("created_at", p.created_at.clone()),
    ]));
}
