//! `tmirror eip ...`: elastic IPs (Huawei EIP v1, `docs/eips.md`), the sources of `eip`
//! sessions.

use clap::{Args, Subcommand};
use tmirror_client::{Eip, EipCreate};

use super::{ClientOpts, Context};
use crate::error::CliError;
use crate::output::{self, fields, or_dash, Table};

/// Elastic IPs: public addresses from the operator's pools, on a gateway host's interface.
#[derive(Args)]
pub struct EipArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub command: EipCommand,
}

#[derive(Subcommand)]
pub enum EipCommand {
    /// Allocate an elastic IP from a pool
    Create {
        /// The pool (publicip type), e.g. 5_bgp (`tmirror admin eip-pool list`)
        #[arg(long, value_name = "POOL")]
        pool: String,
        /// A free address of the pool [default: the pool's first free one]
        #[arg(long, value_name = "ADDRESS")]
        ip_address: Option<String>,
        /// The port to associate it with
        #[arg(long, value_name = "PORT_ID")]
        port: Option<String>,
        /// Name (alias)
        #[arg(long)]
        name: Option<String>,
        /// Bandwidth in Mbit/s, 1-2000: kept, not enforced
        #[arg(long, default_value_t = 1)]
        bandwidth_size: u32,
    },
    /// Show one elastic IP
    Show {
        /// EIP id
        id: String,
    },
    /// List the project's elastic IPs (every page)
    List,
    /// Associate an elastic IP with a port (the gateway translates it to the port's address)
    Associate {
        /// EIP id
        id: String,
        /// The port
        #[arg(long, value_name = "PORT_ID")]
        port: String,
    },
    /// Dissociate an elastic IP from its port
    Dissociate {
        /// EIP id
        id: String,
    },
    /// Release elastic IPs (refused while a session mirrors one)
    Delete {
        /// EIP ids
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

pub fn run(ctx: &Context, command: EipCommand) -> Result<(), CliError> {
    let c = &ctx.client;
    match command {
        EipCommand::Create {
            pool,
            ip_address,
            port,
            name,
            bandwidth_size,
        } => {
            let body = EipCreate {
                pool,
                ip_address,
                port_id: port,
                name,
                bandwidth_size,
            };
            show(ctx, &ctx.call(c.eip_create(&body))?);
        }
        EipCommand::Show { id } => show(ctx, &ctx.call(c.eip_show(&id))?),
        EipCommand::List => {
            let all = ctx.call(c.eip_list_all())?;
            if ctx.json() {
                output::print_json(&serde_json::json!({ "publicips": all }));
            } else {
                output::print(&table(&all));
            }
        }
        EipCommand::Associate { id, port } => {
            show(ctx, &ctx.call(c.eip_associate(&id, Some(&port)))?)
        }
        EipCommand::Dissociate { id } => show(ctx, &ctx.call(c.eip_associate(&id, None))?),
        EipCommand::Delete { ids } => {
            for id in ids {
                ctx.call(c.eip_delete(&id))?;
                if !ctx.json() {
                    output::print(&format!("released elastic IP {id}\n"));
                }
            }
        }
    }
    Ok(())
}

fn show(ctx: &Context, e: &Eip) {
    if ctx.json() {
        output::print_json(e);
        return;
    }
    output::print(&fields(vec![
        ("id", e.id.clone()),
        ("public_ip_address", e.public_ip_address.clone()),
        ("type", e.pool.clone()),
        ("status", e.status.clone()),
        ("alias", or_dash(e.alias.as_deref())),
        ("port_id", or_dash(e.port_id.as_deref())),
        (
            "private_ip_address",
            or_dash(e.private_ip_address.as_deref()),
        ),
        ("bandwidth_size", e.bandwidth_size.to_string()),
        ("create_time", e.create_time.clone()),
    ]));
}

fn table(eips: &[Eip]) -> String {
    let mut t = Table::new(vec!["ID", "ADDRESS", "TYPE", "STATUS", "PORT", "ALIAS"]);
    for e in eips {
        t.row(vec![
            e.id.clone(),
            e.public_ip_address.clone(),
            e.pool.clone(),
            e.status.clone(),
            or_dash(e.port_id.as_deref()),
            or_dash(e.alias.as_deref()),
        ]);
    }
    t.render()
}
