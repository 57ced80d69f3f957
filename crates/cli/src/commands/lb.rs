//! `tmirror lb ...`: load balancers as mirror targets (the Huawei ELB v3 subset,
//! `docs/load-balancers.md`): a load balancer, its UDP pool, members and a health monitor.
//! A session aims at one with `session create --target LB_ID --target-type elb`.

use clap::{Args, Subcommand};
use tmirror_client::{LbMember, MonitorCreate};

use super::{ClientOpts, Context};
use crate::error::CliError;
use crate::output::{self, fields};

/// Load balancers: collectors sharing a session's copies, each flow to one member.
#[derive(Args)]
pub struct LbArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub command: LbCommand,
}

#[derive(Subcommand)]
pub enum LbCommand {
    /// Create a load balancer and its UDP pool; prints both ids
    Create {
        /// Name
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Delete a load balancer (refused while a session aims at it or its pool has members)
    Delete {
        /// Load balancer id
        id: String,
        /// Its pool id, deleted first
        #[arg(long, value_name = "POOL_ID")]
        pool: Option<String>,
    },
    /// Add a member (an address of one of the project's ports) to a pool
    MemberAdd {
        #[arg(long, value_name = "POOL_ID")]
        pool: String,
        /// The member's address
        #[arg(long)]
        address: String,
        /// UDP port its copies go to [default: 4789]
        #[arg(long)]
        port: Option<u16>,
        /// 0-100; 0 takes no flows [default: 1]
        #[arg(long)]
        weight: Option<u8>,
    },
    /// List a pool's members with their health
    MemberList {
        #[arg(long, value_name = "POOL_ID")]
        pool: String,
    },
    /// Remove a member from a pool: its flows move to the others
    MemberRemove {
        #[arg(long, value_name = "POOL_ID")]
        pool: String,
        /// Member id
        id: String,
    },
    /// Set a pool's health monitor
    MonitorCreate {
        #[arg(long, value_name = "POOL_ID")]
        pool: String,
        /// TCP or UDP_CONNECT
        #[arg(long = "type", default_value = "TCP")]
        kind: String,
        /// Seconds between checks, 1-50
        #[arg(long, default_value_t = 10)]
        delay: u32,
        /// Seconds a check may take, 1-50, at most the delay
        #[arg(long, default_value_t = 5)]
        timeout: u32,
        /// Successes to mark a member ONLINE, 1-10
        #[arg(long, default_value_t = 3)]
        max_retries: u32,
        /// Failures to mark a member OFFLINE, 1-10
        #[arg(long, default_value_t = 3)]
        max_retries_down: u32,
        /// The port checked [default: each member's]
        #[arg(long)]
        monitor_port: Option<u16>,
    },
}

pub fn run(ctx: &Context, command: LbCommand) -> Result<(), CliError> {
    let c = &ctx.client;
    match command {
        LbCommand::Create { name } => {
            let lb = ctx.call(c.lb_create(&name))?;
            let pool = ctx.call(c.pool_create(&lb.id))?;
            if ctx.json() {
                output::print_json(&serde_json::json!({
                    "id": lb.id, "name": lb.name, "pool_id": pool.id,
                }));
            } else {
                output::print(&fields(vec![
                    ("id", lb.id),
                    ("name", lb.name),
                    ("pool_id", pool.id),
                ]));
            }
        }
        LbCommand::Delete { id, pool } => {
            if let Some(pool) = pool {
                ctx.call(c.pool_delete(&pool))?;
            }
            ctx.call(c.lb_delete(&id))?;
            if !ctx.json() {
                output::print(&format!("deleted load balancer {id}\n"));
            }
        }
        LbCommand::MemberAdd {
            pool,
            address,
            port,
            weight,
        } => {
            let m = ctx.call(c.member_create(&pool, &address, port, weight))?;
            if ctx.json() {
                output::print_json(&m);
            } else {
                output::print(&table(&[m]));
            }
        }
        LbCommand::MemberList { pool } => {
            let members = ctx.call(c.member_list(&pool))?;
            if ctx.json() {
                output::print_json(&serde_json::json!({ "members": members }));
            } else {
                output::print(&table(&members));
            }
        }
        LbCommand::MemberRemove { pool, id } => {
            ctx.call(c.member_delete(&pool, &id))?;
            if !ctx.json() {
                output::print(&format!("removed member {id}\n"));
            }
        }
        LbCommand::MonitorCreate {
            pool,
            kind,
            delay,
            timeout,
            max_retries,
            max_retries_down,
            monitor_port,
        } => {
            let m = ctx.call(c.monitor_create(&MonitorCreate {
                pool_id: pool,
                kind,
                delay,
                timeout,
                max_retries,
                max_retries_down,
                monitor_port,
            }))?;
            if ctx.json() {
                output::print_json(&m);
            } else {
                output::print(&fields(vec![("id", m.id)]));
            }
        }
    }
    Ok(())
}

fn table(members: &[LbMember]) -> String {
    let mut out = String::from("ID  ADDRESS  PORT  WEIGHT  STATUS\n");
    for m in members {
        out.push_str(&format!(
            "{}  {}  {}  {}  {}\n",
            m.id, m.address, m.protocol_port, m.weight, m.operating_status
        ));
    }
    out
}
