//! `tmirror lb ...`: load balancers as mirror targets (the Huawei ELB v3 subset,
//! `docs/load-balancers.md`): a load balancer, its UDP pool, members and a health monitor.
//! A session aims at one with `session create --target LB_ID --target-type elb`.

use clap::{Args, Subcommand};
use tmirror_client::{
    LbMember, LbUpdate, LoadBalancer, MemberUpdate, Monitor, MonitorCreate, MonitorUpdate,
};

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
    /// Show a load balancer: its state, pool, health monitor and members with their health
    Show {
        /// Load balancer id
        id: String,
    },
    /// Change a load balancer's name, description or admin state
    Update {
        /// Load balancer id
        id: String,
        /// Name
        #[arg(long)]
        name: Option<String>,
        /// Description
        #[arg(long)]
        description: Option<String>,
        /// Enable (`--enabled`) or disable (`--enabled=false`: no member takes flows)
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        enabled: Option<bool>,
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
    /// Change a member's weight or admin state
    MemberUpdate {
        #[arg(long, value_name = "POOL_ID")]
        pool: String,
        /// Member id
        id: String,
        /// 0-100; 0 takes no new flows
        #[arg(long)]
        weight: Option<u8>,
        /// Enable (`--enabled`) or disable (`--enabled=false`: it takes no flows)
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        enabled: Option<bool>,
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
    /// Change a health monitor (its id: `lb show` prints it); the members' health starts over
    MonitorUpdate {
        /// Health monitor id
        id: String,
        /// TCP or UDP_CONNECT
        #[arg(long = "type")]
        kind: Option<String>,
        /// Seconds between checks, 1-50
        #[arg(long)]
        delay: Option<u32>,
        /// Seconds a check may take, 1-50, at most the delay
        #[arg(long)]
        timeout: Option<u32>,
        /// Successes to mark a member ONLINE, 1-10
        #[arg(long)]
        max_retries: Option<u32>,
        /// Failures to mark a member OFFLINE, 1-10
        #[arg(long)]
        max_retries_down: Option<u32>,
        /// The port checked
        #[arg(long)]
        monitor_port: Option<u16>,
        /// Enable (`--enabled`) or disable (`--enabled=false`: no check runs, members are
        /// taken as healthy)
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        enabled: Option<bool>,
    },
    /// Delete a health monitor: no check runs, members are taken as healthy
    MonitorDelete {
        /// Health monitor id
        id: String,
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
        LbCommand::Show { id } => show(ctx, &id)?,
        LbCommand::Update {
            id,
            name,
            description,
            enabled,
        } => {
            let u = LbUpdate {
                name,
                description,
                admin_state_up: enabled,
            };
            if u.name.is_none() && u.description.is_none() && u.admin_state_up.is_none() {
                return Err(nothing("--name, --description or --enabled"));
            }
            ctx.call(c.lb_update(&id, &u))?;
            show(ctx, &id)?;
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
        LbCommand::MemberUpdate {
            pool,
            id,
            weight,
            enabled,
        } => {
            if weight.is_none() && enabled.is_none() {
                return Err(nothing("--weight or --enabled"));
            }
            let u = MemberUpdate {
                weight,
                admin_state_up: enabled,
            };
            let m = ctx.call(c.member_update(&pool, &id, &u))?;
            if ctx.json() {
                output::print_json(&m);
            } else {
                output::print(&table(&[m]));
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
                output::print(&monitor_fields(&m));
            }
        }
        LbCommand::MonitorUpdate {
            id,
            kind,
            delay,
            timeout,
            max_retries,
            max_retries_down,
            monitor_port,
            enabled,
        } => {
            let u = MonitorUpdate {
                kind,
                delay,
                timeout,
                max_retries,
                max_retries_down,
                monitor_port,
                admin_state_up: enabled,
            };
            if serde_json::to_value(&u).is_ok_and(|v| v == serde_json::json!({})) {
                return Err(nothing("one of the monitor's settings"));
            }
            let m = ctx.call(c.monitor_update(&id, &u))?;
            if ctx.json() {
                output::print_json(&m);
            } else {
                output::print(&monitor_fields(&m));
            }
        }
        LbCommand::MonitorDelete { id } => {
            ctx.call(c.monitor_delete(&id))?;
            if !ctx.json() {
                output::print(&format!("deleted health monitor {id}\n"));
            }
        }
    }
    Ok(())
}

/// An update that would change nothing makes no request.
fn nothing(what: &str) -> CliError {
    CliError::Usage(format!("nothing to change: give {what}"))
}

/// A load balancer with its pool, monitor and members: what `lb show` and `lb update` print.
fn show(ctx: &Context, id: &str) -> Result<(), CliError> {
    let c = &ctx.client;
    let lb: LoadBalancer = ctx.call(c.lb_show(id))?;
    let pool = match lb.pools.first() {
        Some(p) => Some(ctx.call(c.pool_show(&p.id))?),
        None => None,
    };
    let monitor: Option<Monitor> = match pool.as_ref().and_then(|p| p.healthmonitor_id.as_ref()) {
        Some(m) => Some(ctx.call(c.monitor_show(m))?),
        None => None,
    };
    let members = match &pool {
        Some(p) => ctx.call(c.member_list(&p.id))?,
        None => Vec::new(),
    };
    if ctx.json() {
        output::print_json(&serde_json::json!({
            "id": lb.id,
            "name": lb.name,
            "description": lb.description,
            "admin_state_up": lb.admin_state_up,
            "operating_status": lb.operating_status,
            "pool_id": pool.as_ref().map(|p| &p.id),
            "healthmonitor": monitor,
            "members": members,
        }));
        return Ok(());
    }
    let mut out = fields(vec![
        ("id", lb.id),
        ("name", lb.name),
        ("description", lb.description),
        ("admin_state_up", lb.admin_state_up.to_string()),
        ("operating_status", lb.operating_status),
        ("pool_id", pool.map(|p| p.id).unwrap_or_else(|| "-".into())),
        (
            "healthmonitor",
            monitor
                .as_ref()
                .map(monitor_line)
                .unwrap_or_else(|| "none".into()),
        ),
    ]);
    out.push('\n');
    out.push_str(&table(&members));
    output::print(&out);
    Ok(())
}

/// `ID TYPE every DELAY s, timeout T s, up after N, down after M[, port P][, disabled]`.
fn monitor_line(m: &Monitor) -> String {
    let mut s = format!(
        "{} {} every {} s, timeout {} s, up after {}, down after {}",
        m.id, m.kind, m.delay, m.timeout, m.max_retries, m.max_retries_down
    );
    if let Some(p) = m.monitor_port {
        s.push_str(&format!(", port {p}"));
    }
    if !m.admin_state_up {
        s.push_str(", disabled");
    }
    s
}

fn monitor_fields(m: &Monitor) -> String {
    fields(vec![
        ("id", m.id.clone()),
        ("type", m.kind.clone()),
        ("delay", m.delay.to_string()),
        ("timeout", m.timeout.to_string()),
        ("max_retries", m.max_retries.to_string()),
        ("max_retries_down", m.max_retries_down.to_string()),
        (
            "monitor_port",
            m.monitor_port
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        ("admin_state_up", m.admin_state_up.to_string()),
    ])
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
