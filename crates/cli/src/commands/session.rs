//! `tmirror session ...`: traffic mirror sessions.

use clap::{Args, Subcommand};
use tmirror_client::{AdminClient, Delivery, Session, SessionCreate, SessionUpdate, TargetType};

use super::{joined, nothing_to_update, ClientOpts, Context, Paging};
use crate::error::CliError;
use crate::output::{self, fields, list_json, Table};

/// Traffic mirror sessions: which ports (sources) are mirrored, through which filter, to
/// which target.
#[derive(Args)]
pub struct SessionArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub command: SessionCommand,
}

#[derive(Subcommand)]
pub enum SessionCommand {
    /// Create a session
    Create(Create),
    /// Show one session
    Show {
        /// Session id
        id: String,
    },
    /// List sessions (filters are exact matches; repeat a flag for "any of")
    List(List),
    /// Change fields of a session (sources: use add-sources and remove-sources)
    Update(Update),
    /// Delete sessions
    Delete {
        /// Session ids
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Append source ports to a session
    AddSources(Sources),
    /// Remove source ports from a session (it may be left with none)
    RemoveSources(Sources),
}

#[derive(Args)]
pub struct Create {
    /// Name: 1-64 letters, digits, '_', '-' or '.'
    #[arg(long)]
    name: String,
    /// Description: at most 255 characters, no '<' or '>'
    #[arg(long)]
    description: Option<String>,
    /// Filter id (traffic_mirror_filter_id)
    #[arg(
        long,
        visible_alias = "traffic-mirror-filter-id",
        value_name = "FILTER_ID"
    )]
    filter: String,
    /// Source port id; repeat for several, in order (traffic_mirror_sources)
    #[arg(
        long = "source",
        visible_alias = "traffic-mirror-source",
        value_name = "PORT_ID"
    )]
    sources: Vec<String>,
    /// Target port id (traffic_mirror_target_id)
    #[arg(
        long,
        visible_alias = "traffic-mirror-target-id",
        value_name = "PORT_ID"
    )]
    target: String,
    /// Target type (traffic_mirror_target_type)
    #[arg(long, visible_alias = "traffic-mirror-target-type", value_parser = target_type, default_value = "eni")]
    target_type: TargetType,
    /// VXLAN network id of the copies, 0-16777215 (virtual_network_id) [server default: 1]
    #[arg(long, visible_alias = "virtual-network-id")]
    vni: Option<u32>,
    /// Bytes copied of each packet, 1-1460 [server default: 96]
    #[arg(long)]
    packet_length: Option<u32>,
    /// Priority, 1-32766, unique in the project; lower wins
    #[arg(long)]
    priority: u32,
    /// Enable the session (`--enabled` or `--enabled=false`) [server default: false]
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    enabled: Option<bool>,
    /// Mirror source type (type) [server default: eni]
    #[arg(long = "type", value_name = "TYPE")]
    source_type: Option<String>,
}

#[derive(Args)]
pub struct List {
    #[command(flatten)]
    paging: Paging,
    /// Session id
    #[arg(long)]
    id: Vec<String>,
    /// Name
    #[arg(long)]
    name: Vec<String>,
    /// Description
    #[arg(long)]
    description: Vec<String>,
    /// Filter id (traffic_mirror_filter_id)
    #[arg(
        long,
        visible_alias = "traffic-mirror-filter-id",
        value_name = "FILTER_ID"
    )]
    filter: Vec<String>,
    /// Target port id (traffic_mirror_target_id)
    #[arg(
        long,
        visible_alias = "traffic-mirror-target-id",
        value_name = "PORT_ID"
    )]
    target: Vec<String>,
    /// eni or elb (traffic_mirror_target_type)
    #[arg(long, visible_alias = "traffic-mirror-target-type")]
    target_type: Vec<String>,
    /// virtual_network_id
    #[arg(long, visible_alias = "virtual-network-id")]
    vni: Vec<String>,
    /// Bytes copied per packet (packet_length)
    #[arg(long)]
    packet_length: Vec<String>,
    /// Priority
    #[arg(long)]
    priority: Vec<String>,
    /// true or false
    #[arg(long)]
    enabled: Vec<String>,
    /// Mirror source type
    #[arg(long = "type", value_name = "TYPE")]
    source_type: Vec<String>,
    /// Creation time, e.g. 2023-02-23T06:57:39Z
    #[arg(long)]
    created_at: Vec<String>,
    /// Update time, e.g. 2023-02-23T06:57:39Z
    #[arg(long)]
    updated_at: Vec<String>,
}

#[derive(Args)]
pub struct Update {
    /// Session id
    id: String,
    /// Name
    #[arg(long)]
    name: Option<String>,
    /// Description
    #[arg(long)]
    description: Option<String>,
    /// Filter id (traffic_mirror_filter_id)
    #[arg(
        long,
        visible_alias = "traffic-mirror-filter-id",
        value_name = "FILTER_ID"
    )]
    filter: Option<String>,
    /// Target port id (traffic_mirror_target_id)
    #[arg(
        long,
        visible_alias = "traffic-mirror-target-id",
        value_name = "PORT_ID"
    )]
    target: Option<String>,
    /// traffic_mirror_target_type
    #[arg(long, visible_alias = "traffic-mirror-target-type", value_parser = target_type)]
    target_type: Option<TargetType>,
    /// virtual_network_id, 0-16777215
    #[arg(long, visible_alias = "virtual-network-id")]
    vni: Option<u32>,
    /// 1-1460
    #[arg(long)]
    packet_length: Option<u32>,
    /// 1-32766
    #[arg(long)]
    priority: Option<u32>,
    /// `--enabled` or `--enabled=false`
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    enabled: Option<bool>,
}

#[derive(Args)]
pub struct Sources {
    /// Session id
    id: String,
    /// Port id; repeat for several
    #[arg(
        long = "source",
        visible_alias = "traffic-mirror-source",
        value_name = "PORT_ID",
        required = true
    )]
    sources: Vec<String>,
}

fn target_type(s: &str) -> Result<TargetType, String> {
    s.parse().map_err(|e: tmirror_model::InvalidValue| e.0)
}

pub fn run(ctx: &Context, command: SessionCommand) -> Result<(), CliError> {
    let c = &ctx.client;
    match command {
        SessionCommand::Create(a) => {
            let body = SessionCreate {
                name: a.name,
                description: a.description,
                traffic_mirror_filter_id: a.filter,
                traffic_mirror_sources: a.sources,
                traffic_mirror_target_id: a.target,
                traffic_mirror_target_type: a.target_type,
                virtual_network_id: a.vni,
                packet_length: a.packet_length,
                priority: a.priority,
                enabled: a.enabled,
                source_type: a.source_type,
            };
            let s = ctx.call(c.session_create(&body))?;
            show(ctx, &s);
        }
        SessionCommand::Show { id } => {
            let s = ctx.call(c.session_show(&id))?;
            if ctx.json() {
                // The server's own body, as for every `show`; the delivery is
                // `GET /admin/v1/projects/{project}/sessions/{id}/delivery`.
                show(ctx, &s);
            } else {
                let admin = AdminClient::from(c.clone());
                let d = ctx.call(admin.session_delivery(&s.project_id, &s.id))?;
                show_with_delivery(&s, &d);
            }
        }
        SessionCommand::List(a) => {
            let opts = a.paging.options(&[
                ("id", &a.id),
                ("name", &a.name),
                ("description", &a.description),
                ("traffic_mirror_filter_id", &a.filter),
                ("traffic_mirror_target_id", &a.target),
                ("traffic_mirror_target_type", &a.target_type),
                ("virtual_network_id", &a.vni),
                ("packet_length", &a.packet_length),
                ("priority", &a.priority),
                ("enabled", &a.enabled),
                ("type", &a.source_type),
                ("created_at", &a.created_at),
                ("updated_at", &a.updated_at),
            ]);
            let page = if a.paging.all {
                let items = ctx.call(c.session_list_all(&opts))?;
                tmirror_client::Page {
                    items,
                    page_info: Some(Default::default()),
                    request_id: None,
                }
            } else {
                ctx.call(c.session_list(&opts))?
            };
            if ctx.json() {
                output::print_json(&list_json("traffic_mirror_sessions", &page, a.paging.all));
            } else {
                output::print(&table(&page.items));
                output::more_hint(page.page_info.as_ref());
            }
        }
        SessionCommand::Update(a) => {
            let body = SessionUpdate {
                name: a.name,
                description: a.description,
                traffic_mirror_filter_id: a.filter,
                traffic_mirror_target_id: a.target,
                traffic_mirror_target_type: a.target_type,
                virtual_network_id: a.vni,
                packet_length: a.packet_length,
                priority: a.priority,
                enabled: a.enabled,
            };
            if body.is_empty() {
                return Err(nothing_to_update("session"));
            }
            show(ctx, &ctx.call(c.session_update(&a.id, &body))?);
        }
        SessionCommand::Delete { ids } => {
            for id in ids {
                ctx.call(c.session_delete(&id))?;
                if !ctx.json() {
                    output::print(&format!("deleted session {id}\n"));
                }
            }
        }
        SessionCommand::AddSources(a) => {
            show(ctx, &ctx.call(c.session_add_sources(&a.id, &a.sources))?)
        }
        SessionCommand::RemoveSources(a) => {
            show(ctx, &ctx.call(c.session_remove_sources(&a.id, &a.sources))?)
        }
    }
    Ok(())
}

fn show(ctx: &Context, s: &Session) {
    if ctx.json() {
        output::print_json(s);
    } else {
        output::print(&session_fields(s));
    }
}

fn session_fields(s: &Session) -> String {
    fields(vec![
        ("id", s.id.clone()),
        ("name", s.name.clone()),
        ("description", output::or_dash(Some(&s.description))),
        ("enabled", s.enabled.to_string()),
        ("priority", s.priority.to_string()),
        ("filter", s.traffic_mirror_filter_id.clone()),
        ("sources", joined(&s.traffic_mirror_sources)),
        (
            "target",
            format!(
                "{} ({})",
                s.traffic_mirror_target_id,
                s.traffic_mirror_target_type.as_str()
            ),
        ),
        ("vni", s.virtual_network_id.to_string()),
        ("packet_length", s.packet_length.to_string()),
        ("type", s.source_type.clone()),
        ("project_id", s.project_id.clone()),
        ("created_at", s.created_at.clone()),
        ("updated_at", s.updated_at.clone()),
    ])
}

/// `tmirror session show` as a table: the session, then its delivery on each host that
/// captures one of its sources.
fn show_with_delivery(s: &Session, d: &Delivery) {
    output::print(&session_fields(s));
    let summary = fields(vec![
        ("state", d.state.clone()),
        ("applied_everywhere", d.applied_everywhere.to_string()),
        ("copies_per_second", rate(d.copies_per_second)),
        ("bytes_per_second", rate(d.bytes_per_second)),
    ]);
    let mut t = Table::new(vec![
        "HOST_ID",
        "CONNECTED",
        "APPLIED",
        "GENERATION",
        "COPIES/S",
        "BYTES/S",
        "COPIES",
        "BYTES",
    ]);
    for h in &d.hosts {
        t.row(vec![
            h.host_id.clone(),
            h.connected.to_string(),
            h.applied.to_string(),
            output::or_dash(h.applied_generation.map(|g| g.to_string()).as_deref()),
            rate(h.copies_per_second),
            rate(h.bytes_per_second),
            h.copies.to_string(),
            h.bytes.to_string(),
        ]);
    }
    output::print(&format!("\ndelivery\n{summary}\n{}", t.render()));
}

/// A rate with one decimal.
fn rate(per_second: f64) -> String {
    format!("{per_second:.1}")
}

fn table(items: &[Session]) -> String {
    let mut t = Table::new(vec![
        "ID", "NAME", "PRIORITY", "ENABLED", "FILTER", "TARGET", "VNI", "SOURCES",
    ]);
    for s in items {
        t.row(vec![
            s.id.clone(),
            s.name.clone(),
            s.priority.to_string(),
            s.enabled.to_string(),
            s.traffic_mirror_filter_id.clone(),
            s.traffic_mirror_target_id.clone(),
            s.virtual_network_id.to_string(),
            joined(&s.traffic_mirror_sources),
        ]);
    }
    t.render()
}
