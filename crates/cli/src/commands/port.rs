//! `tmirror port ...`: v1 ports, the ENIs that sessions mirror (sources) and send to (`eni`
//! targets). Besides Huawei's fields a port records where the agent captures it:
//! `binding:host_id` and `binding:profile` `{interface_name, capture_side}`.

use clap::{Args, Subcommand};
use tmirror_client::{
    BindingProfileOption, CaptureSide, FixedIpOption, Page, Port, PortCreate, PortUpdate,
};

use super::{joined, nothing_to_update, ClientOpts, Context, Paging};
use crate::error::CliError;
use crate::output::{self, fields, list_json, or_dash, Table};

/// Ports (ENIs): the interfaces sessions mirror and mirror to.
#[derive(Args)]
pub struct PortArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub command: PortCommand,
}

#[derive(Subcommand)]
pub enum PortCommand {
    /// Create a port
    Create(Create),
    /// Show one port
    Show {
        /// Port id
        id: String,
    },
    /// List ports (filters are exact matches; repeat a flag for "any of")
    List(List),
    /// Change fields of a port
    Update(Update),
    /// Delete ports (refused while a session uses one)
    Delete {
        /// Port ids
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[derive(Args)]
pub struct Create {
    /// Network id (network_id)
    #[arg(long)]
    network_id: String,
    /// Name
    #[arg(long)]
    name: Option<String>,
    /// The port's fixed IP address (fixed_ips[0].ip_address; tmirror has no IPAM)
    #[arg(long, value_name = "ADDRESS")]
    ip: Option<String>,
    /// Subnet of the fixed IP (fixed_ips[0].subnet_id)
    #[arg(long)]
    subnet_id: Option<String>,
    /// e.g. the instance id (device_id)
    #[arg(long)]
    device_id: Option<String>,
    /// "", neutron:VIP_PORT or compute:<zone> (device_owner)
    #[arg(long)]
    device_owner: Option<String>,
    /// Security group id; repeat for several (security_groups)
    #[arg(long = "security-group", value_name = "ID")]
    security_groups: Vec<String>,
    /// Agent host that owns the interface (binding:host_id)
    #[arg(long)]
    host_id: Option<String>,
    /// Interface name on that host, e.g. tap0 or veth0 (binding:profile.interface_name)
    #[arg(long)]
    interface_name: Option<String>,
    /// Capture on the host end of the interface or as the guest sees it
    /// (binding:profile.capture_side) [server default: host]
    #[arg(long, value_parser = capture_side)]
    capture_side: Option<CaptureSide>,
}

#[derive(Args)]
pub struct List {
    #[command(flatten)]
    paging: Paging,
    /// Port id
    #[arg(long)]
    id: Vec<String>,
    /// Name
    #[arg(long)]
    name: Vec<String>,
    /// Network id (network_id)
    #[arg(long)]
    network_id: Vec<String>,
    /// MAC address (mac_address)
    #[arg(long)]
    mac_address: Vec<String>,
    /// Device id, e.g. the instance (device_id)
    #[arg(long)]
    device_id: Vec<String>,
    /// Device owner (device_owner)
    #[arg(long)]
    device_owner: Vec<String>,
    /// ACTIVE, BUILD or DOWN
    #[arg(long)]
    status: Vec<String>,
    /// binding:host_id
    #[arg(long)]
    host_id: Vec<String>,
    /// Fixed IP address (fixed_ips=ip_address=ADDRESS)
    #[arg(long, value_name = "ADDRESS")]
    ip: Vec<String>,
    /// Fixed IP subnet (fixed_ips=subnet_id=ID)
    #[arg(long)]
    subnet_id: Vec<String>,
}

#[derive(Args)]
pub struct Update {
    /// Port id
    id: String,
    /// Name
    #[arg(long)]
    name: Option<String>,
    /// Device id, e.g. the instance (device_id)
    #[arg(long)]
    device_id: Option<String>,
    /// Device owner (device_owner)
    #[arg(long)]
    device_owner: Option<String>,
    /// Security group id; repeat for several; replaces the list
    #[arg(long = "security-group", value_name = "ID")]
    security_groups: Vec<String>,
    /// binding:host_id
    #[arg(long)]
    host_id: Option<String>,
    /// binding:profile.interface_name ("" clears it); the other profile field is kept
    #[arg(long)]
    interface_name: Option<String>,
    /// binding:profile.capture_side; the other profile field is kept
    #[arg(long, value_parser = capture_side)]
    capture_side: Option<CaptureSide>,
}

fn capture_side(s: &str) -> Result<CaptureSide, String> {
    s.parse().map_err(|e: tmirror_model::InvalidValue| e.0)
}

fn non_empty(v: Vec<String>) -> Option<Vec<String>> {
    (!v.is_empty()).then_some(v)
}

pub fn run(ctx: &Context, command: PortCommand) -> Result<(), CliError> {
    let c = &ctx.client;
    match command {
        PortCommand::Create(a) => {
            let fixed_ips = (a.ip.is_some() || a.subnet_id.is_some()).then(|| {
                vec![FixedIpOption {
                    subnet_id: a.subnet_id,
                    ip_address: a.ip,
                }]
            });
            let binding_profile = (a.interface_name.is_some() || a.capture_side.is_some())
                .then_some(BindingProfileOption {
                    interface_name: a.interface_name,
                    capture_side: a.capture_side,
                });
            let body = PortCreate {
                network_id: a.network_id,
                name: a.name,
                fixed_ips,
                device_owner: a.device_owner,
                device_id: a.device_id,
                security_groups: non_empty(a.security_groups),
                admin_state_up: None,
                host_id: a.host_id,
                binding_profile,
            };
            show(ctx, &ctx.call(c.port_create(&body))?);
        }
        PortCommand::Show { id } => show(ctx, &ctx.call(c.port_show(&id))?),
        PortCommand::List(a) => {
            let ips: Vec<String> = a.ip.iter().map(|ip| format!("ip_address={ip}")).collect();
            let subnets: Vec<String> = a
                .subnet_id
                .iter()
                .map(|s| format!("subnet_id={s}"))
                .collect();
            let mut opts = a.paging.options(&[
                ("id", &a.id),
                ("name", &a.name),
                ("network_id", &a.network_id),
                ("mac_address", &a.mac_address),
                ("device_id", &a.device_id),
                ("device_owner", &a.device_owner),
                ("status", &a.status),
                ("binding:host_id", &a.host_id),
            ]);
            for v in ips.into_iter().chain(subnets) {
                opts = opts.filter("fixed_ips", v);
            }
            let page = if a.paging.all {
                Page {
                    items: ctx.call(c.port_list_all(&opts))?,
                    page_info: None,
                    request_id: None,
                }
            } else {
                ctx.call(c.port_list(&opts))?
            };
            if ctx.json() {
                output::print_json(&list_json("ports", &page, a.paging.all));
            } else {
                output::print(&table(&page.items));
                // v1 lists carry no next_marker: a full page may be followed by more.
                if !a.paging.all {
                    let limit = a.paging.limit.filter(|l| *l > 0);
                    if let (Some(limit), Some(last)) = (limit, page.items.last()) {
                        if page.items.len() as u64 >= u64::from(limit) {
                            eprintln!(
                                "more results may follow: repeat with --marker {}, or use --all",
                                last.id
                            );
                        }
                    }
                }
            }
        }
        PortCommand::Update(a) => {
            // The server replaces binding:profile as a whole; keep the field not given.
            let binding_profile = if a.interface_name.is_some() || a.capture_side.is_some() {
                let current = if a.interface_name.is_none() || a.capture_side.is_none() {
                    Some(ctx.call(c.port_show(&a.id))?.binding_profile)
                } else {
                    None
                };
                Some(BindingProfileOption {
                    interface_name: a
                        .interface_name
                        .or_else(|| current.as_ref().and_then(|p| p.interface_name.clone())),
                    capture_side: a
                        .capture_side
                        .or_else(|| current.as_ref().map(|p| p.capture_side)),
                })
            } else {
                None
            };
            let body = PortUpdate {
                name: a.name,
                security_groups: non_empty(a.security_groups),
                device_owner: a.device_owner,
                device_id: a.device_id,
                host_id: a.host_id,
                binding_profile,
            };
            if body.is_empty() {
                return Err(nothing_to_update("port"));
            }
            show(ctx, &ctx.call(c.port_update(&a.id, &body))?);
        }
        PortCommand::Delete { ids } => {
            for id in ids {
                ctx.call(c.port_delete(&id))?;
                if !ctx.json() {
                    output::print(&format!("deleted port {id}\n"));
                }
            }
        }
    }
    Ok(())
}

fn ips(p: &Port) -> String {
    let ips: Vec<String> = p.fixed_ips.iter().map(|f| f.ip_address.clone()).collect();
    joined(&ips)
}

fn capture(p: &Port) -> &'static str {
    match p.binding_profile.capture_side {
        CaptureSide::Host => "host",
        CaptureSide::Guest => "guest",
    }
}

fn show(ctx: &Context, p: &Port) {
    if ctx.json() {
        output::print_json(p);
        return;
    }
    let subnets: Vec<String> = p
        .fixed_ips
        .iter()
        .filter(|f| !f.subnet_id.is_empty())
        .map(|f| f.subnet_id.clone())
        .collect();
    output::print(&fields(vec![
        ("id", p.id.clone()),
        ("name", or_dash(Some(&p.name))),
        ("network_id", p.network_id.clone()),
        ("ip_address", ips(p)),
        ("subnet_id", joined(&subnets)),
        ("mac_address", p.mac_address.clone()),
        ("status", p.status.clone()),
        ("device_id", or_dash(Some(&p.device_id))),
        ("device_owner", or_dash(Some(&p.device_owner))),
        ("security_groups", joined(&p.security_groups)),
        ("binding:host_id", or_dash(Some(&p.host_id))),
        (
            "interface_name",
            or_dash(p.binding_profile.interface_name.as_deref()),
        ),
        ("capture_side", capture(p).to_owned()),
        ("project_id", p.project_id.clone()),
        ("created_at", p.created_at.clone()),
        ("updated_at", p.updated_at.clone()),
    ]));
}

fn table(items: &[Port]) -> String {
    let mut t = Table::new(vec![
        "ID",
        "NAME",
        "IP",
        "MAC",
        "STATUS",
        "HOST",
        "INTERFACE",
        "CAPTURE",
    ]);
    for p in items {
        t.row(vec![
            p.id.clone(),
            or_dash(Some(&p.name)),
            ips(p),
            p.mac_address.clone(),
            p.status.clone(),
            or_dash(Some(&p.host_id)),
            or_dash(p.binding_profile.interface_name.as_deref()),
            capture(p).to_owned(),
        ]);
    }
    t.render()
}
