//! `tmirror rule ...`: traffic mirror filter rules, a top-level collection whose items name
//! their filter (`--filter`).

use clap::{Args, Subcommand};
use tmirror_client::{Direction, Ethertype, Page, Rule, RuleAction, RuleCreate, RuleUpdate};

use super::{nothing_to_update, ClientOpts, Context, Paging};
use crate::error::CliError;
use crate::output::{self, fields, list_json, or_dash, Table};

/// Traffic mirror filter rules: match on direction, protocol, addresses and ports; accept
/// mirrors, reject does not; lower priority is matched first.
#[derive(Args)]
pub struct RuleArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub command: RuleCommand,
}

#[derive(Subcommand)]
pub enum RuleCommand {
    /// Create a rule in a filter
    Create(Create),
    /// Show one rule
    Show {
        /// Rule id
        id: String,
    },
    /// List rules (filters are exact matches; repeat a flag for "any of")
    List(List),
    /// Change fields of a rule (its filter and direction are fixed; "" clears a CIDR or range)
    Update(Update),
    /// Delete rules
    Delete {
        /// Rule ids
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[derive(Args)]
pub struct Create {
    /// Filter id (traffic_mirror_filter_id)
    #[arg(
        long,
        visible_alias = "traffic-mirror-filter-id",
        value_name = "FILTER_ID"
    )]
    filter: String,
    /// ingress (received by the source) or egress (sent by it)
    #[arg(long, value_parser = parse::<Direction>)]
    direction: Direction,
    /// tcp, udp, icmp, icmpv6 or all (any case; sent as written)
    #[arg(long, value_parser = protocol)]
    protocol: String,
    /// IPv4 or IPv6 (any case)
    #[arg(long, value_parser = parse::<Ethertype>)]
    ethertype: Ethertype,
    /// accept (mirror) or reject (do not mirror)
    #[arg(long, value_parser = action)]
    action: RuleAction,
    /// 1-65535, unique within the filter and direction; lower is matched first
    #[arg(long)]
    priority: u32,
    /// Description
    #[arg(long)]
    description: Option<String>,
    /// Source CIDR, e.g. 10.0.0.0/24 (source_cidr_block) [default: any]
    #[arg(long, visible_alias = "source-cidr-block", value_name = "CIDR")]
    source_cidr: Option<String>,
    /// Destination CIDR (destination_cidr_block) [default: any]
    #[arg(long, visible_alias = "destination-cidr-block", value_name = "CIDR")]
    destination_cidr: Option<String>,
    /// FROM-TO, e.g. 1024-65535; tcp and udp only [default: any]
    #[arg(long, value_name = "FROM-TO")]
    source_port_range: Option<String>,
    /// FROM-TO, e.g. 80-80; tcp and udp only [default: any]
    #[arg(long, value_name = "FROM-TO")]
    destination_port_range: Option<String>,
}

#[derive(Args)]
pub struct List {
    #[command(flatten)]
    paging: Paging,
    /// Rule id
    #[arg(long)]
    id: Vec<String>,
    /// Filter id (traffic_mirror_filter_id)
    #[arg(
        long,
        visible_alias = "traffic-mirror-filter-id",
        value_name = "FILTER_ID"
    )]
    filter: Vec<String>,
    /// ingress or egress
    #[arg(long)]
    direction: Vec<String>,
    /// tcp, udp, icmp, icmpv6 or all
    #[arg(long)]
    protocol: Vec<String>,
    /// IPv4 or IPv6
    #[arg(long)]
    ethertype: Vec<String>,
    /// accept or reject
    #[arg(long)]
    action: Vec<String>,
    /// Priority
    #[arg(long)]
    priority: Vec<String>,
    /// Description
    #[arg(long)]
    description: Vec<String>,
    /// Source CIDR (source_cidr_block)
    #[arg(long, visible_alias = "source-cidr-block", value_name = "CIDR")]
    source_cidr: Vec<String>,
    /// Destination CIDR (destination_cidr_block)
    #[arg(long, visible_alias = "destination-cidr-block", value_name = "CIDR")]
    destination_cidr: Vec<String>,
    /// Source port range FROM-TO (source_port_range)
    #[arg(long, value_name = "FROM-TO")]
    source_port_range: Vec<String>,
    /// Destination port range FROM-TO (destination_port_range)
    #[arg(long, value_name = "FROM-TO")]
    destination_port_range: Vec<String>,
}

#[derive(Args)]
pub struct Update {
    /// Rule id
    id: String,
    /// tcp, udp, icmp, icmpv6 or all; ports are cleared for protocols without ports
    #[arg(long, value_parser = protocol)]
    protocol: Option<String>,
    /// IPv4 or IPv6
    #[arg(long, value_parser = parse::<Ethertype>)]
    ethertype: Option<Ethertype>,
    /// accept or reject
    #[arg(long, value_parser = action)]
    action: Option<RuleAction>,
    /// Priority
    #[arg(long)]
    priority: Option<u32>,
    /// Description
    #[arg(long)]
    description: Option<String>,
    /// Source CIDR (source_cidr_block)
    #[arg(long, visible_alias = "source-cidr-block", value_name = "CIDR")]
    source_cidr: Option<String>,
    /// Destination CIDR (destination_cidr_block)
    #[arg(long, visible_alias = "destination-cidr-block", value_name = "CIDR")]
    destination_cidr: Option<String>,
    /// Source port range FROM-TO (source_port_range)
    #[arg(long, value_name = "FROM-TO")]
    source_port_range: Option<String>,
    /// Destination port range FROM-TO (destination_port_range)
    #[arg(long, value_name = "FROM-TO")]
    destination_port_range: Option<String>,
}

fn parse<T: std::str::FromStr<Err = tmirror_model::InvalidValue>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: tmirror_model::InvalidValue| e.0)
}

/// Checked here for a quick usage error, but sent as written: the server echoes the caller's
/// spelling (Terraform depends on that).
fn protocol(s: &str) -> Result<String, String> {
    parse::<tmirror_model::Protocol>(s).map(|_| s.to_owned())
}

fn action(s: &str) -> Result<RuleAction, String> {
    match s {
        "accept" => Ok(RuleAction::Accept),
        "reject" => Ok(RuleAction::Reject),
        _ => Err(format!("action must be accept or reject, not {s:?}")),
    }
}

pub fn run(ctx: &Context, command: RuleCommand) -> Result<(), CliError> {
    let c = &ctx.client;
    match command {
        RuleCommand::Create(a) => {
            let body = RuleCreate {
                traffic_mirror_filter_id: a.filter,
                direction: a.direction,
                protocol: a.protocol,
                ethertype: a.ethertype,
                action: a.action,
                priority: a.priority,
                description: a.description,
                source_cidr_block: a.source_cidr,
                destination_cidr_block: a.destination_cidr,
                source_port_range: a.source_port_range,
                destination_port_range: a.destination_port_range,
            };
            show(ctx, &ctx.call(c.rule_create(&body))?);
        }
        RuleCommand::Show { id } => show(ctx, &ctx.call(c.rule_show(&id))?),
        RuleCommand::List(a) => {
            let opts = a.paging.options(&[
                ("id", &a.id),
                ("traffic_mirror_filter_id", &a.filter),
                ("direction", &a.direction),
                ("protocol", &a.protocol),
                ("ethertype", &a.ethertype),
                ("action", &a.action),
                ("priority", &a.priority),
                ("description", &a.description),
                ("source_cidr_block", &a.source_cidr),
                ("destination_cidr_block", &a.destination_cidr),
                ("source_port_range", &a.source_port_range),
                ("destination_port_range", &a.destination_port_range),
            ]);
            let page = if a.paging.all {
                Page {
                    items: ctx.call(c.rule_list_all(&opts))?,
                    page_info: Some(Default::default()),
                    request_id: None,
                }
            } else {
                ctx.call(c.rule_list(&opts))?
            };
            if ctx.json() {
                output::print_json(&list_json(
                    "traffic_mirror_filter_rules",
                    &page,
                    a.paging.all,
                ));
            } else {
                output::print(&table(&page.items, true));
                output::more_hint(page.page_info.as_ref());
            }
        }
        RuleCommand::Update(a) => {
            let body = RuleUpdate {
                protocol: a.protocol,
                ethertype: a.ethertype,
                action: a.action,
                priority: a.priority,
                description: a.description,
                source_cidr_block: a.source_cidr,
                destination_cidr_block: a.destination_cidr,
                source_port_range: a.source_port_range,
                destination_port_range: a.destination_port_range,
            };
            if body.is_empty() {
                return Err(nothing_to_update("rule"));
            }
            show(ctx, &ctx.call(c.rule_update(&a.id, &body))?);
        }
        RuleCommand::Delete { ids } => {
            for id in ids {
                ctx.call(c.rule_delete(&id))?;
                if !ctx.json() {
                    output::print(&format!("deleted rule {id}\n"));
                }
            }
        }
    }
    Ok(())
}

/// `10.0.0.0/24:80-80`, `any`, `any:1-1024`.
fn endpoint(cidr: Option<&str>, ports: Option<&str>) -> String {
    let addr = cidr.filter(|c| !c.is_empty()).unwrap_or("any");
    match ports.filter(|p| !p.is_empty()) {
        Some(p) => format!("{addr}:{p}"),
        None => addr.to_owned(),
    }
}

fn show(ctx: &Context, r: &Rule) {
    if ctx.json() {
        output::print_json(r);
        return;
    }
    output::print(&fields(vec![
        ("id", r.id.clone()),
        ("filter", r.traffic_mirror_filter_id.clone()),
        ("direction", r.direction.as_str().to_owned()),
        ("priority", r.priority.to_string()),
        ("action", r.action.as_str().to_owned()),
        ("protocol", r.protocol.clone()),
        ("ethertype", r.ethertype.as_str().to_owned()),
        ("source_cidr_block", or_dash(r.source_cidr_block.as_deref())),
        ("source_port_range", or_dash(r.source_port_range.as_deref())),
        (
            "destination_cidr_block",
            or_dash(r.destination_cidr_block.as_deref()),
        ),
        (
            "destination_port_range",
            or_dash(r.destination_port_range.as_deref()),
        ),
        ("description", or_dash(Some(&r.description))),
        ("project_id", r.project_id.clone()),
        ("created_at", r.created_at.clone()),
        ("updated_at", r.updated_at.clone()),
    ]));
}

/// Rules as a table; `with_filter` adds the filter column (not needed inside `filter show`).
pub fn table(items: &[Rule], with_filter: bool) -> String {
    let mut header = vec!["ID"];
    if with_filter {
        header.push("FILTER");
    }
    header.extend([
        "DIRECTION",
        "PRIORITY",
        "ACTION",
        "PROTOCOL",
        "ETHERTYPE",
        "SOURCE",
        "DESTINATION",
    ]);
    let mut t = Table::new(header);
    for r in items {
        let mut row = vec![r.id.clone()];
        if with_filter {
            row.push(r.traffic_mirror_filter_id.clone());
        }
        row.extend([
            r.direction.as_str().to_owned(),
            r.priority.to_string(),
            r.action.as_str().to_owned(),
            r.protocol.clone(),
            r.ethertype.as_str().to_owned(),
            endpoint(
                r.source_cidr_block.as_deref(),
                r.source_port_range.as_deref(),
            ),
            endpoint(
                r.destination_cidr_block.as_deref(),
                r.destination_port_range.as_deref(),
            ),
        ]);
        t.row(row);
    }
    t.render()
}
