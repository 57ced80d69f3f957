//! `tmirror admin ...`: the admin API (`docs/admin-api.md`): projects, credentials, enrolled
//! hosts, networks and port bindings.
//!
//! The operator's credential (`<data-dir>/admin-credentials.json`, the default) may do all of
//! it; a project's admin credential manages that project's own credentials. Secrets are
//! printed only by `credential create` and `host create|rotate`, the one time they exist in
//! the clear; with `--output json` those print exactly the file a client or an agent reads.

use clap::builder::PossibleValuesParser;
use clap::{ArgGroup, Args, Subcommand};
use serde_json::json;
use tmirror_client::{
    AdminClient, BoundPort, CaptureSide, Credential, Host, HostCredential, Network, NetworkCreate,
    NewCredential, PortBinding, Project, ProjectCreate, ProjectUpdate, Quotas, Role,
};

use super::{nothing_to_update, ClientOpts, Context};
use crate::error::CliError;
use crate::output::{self, fields, or_dash, Table};

/// Operator and project-admin tasks: tenants, their keys, agent hosts, networks, bindings.
#[derive(Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Projects (tenants) and their quotas (operator)
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Access keys of a project (operator; a project's admin for its own project)
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Agent hosts and their credentials (operator)
    #[command(subcommand)]
    Host(HostCommand),
    /// Networks: the address space of one project, or shared (operator)
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Bind any project's port to an agent host (operator)
    #[command(subcommand)]
    Port(PortCommand),
    /// Elastic IP pools and their gateway host interface (operator)
    #[command(subcommand)]
    EipPool(super::eip_pool::EipPoolCommand),
}

/// The `--quota-*` flags.
#[derive(Args, Clone, Debug, Default)]
pub struct QuotaFlags {
    /// Most sessions the project may have [default: the server's --max-sessions-per-project]
    #[arg(long, value_name = "N")]
    quota_sessions: Option<u32>,
    /// Most filters the project may have [default: the server's --max-filters-per-project]
    #[arg(long, value_name = "N")]
    quota_filters: Option<u32>,
    /// Most ports the project may have [default: the server's --max-ports-per-project]
    #[arg(long, value_name = "N")]
    quota_ports: Option<u32>,
}

impl QuotaFlags {
    fn any(&self) -> bool {
        self.quota_sessions.is_some() || self.quota_filters.is_some() || self.quota_ports.is_some()
    }

    /// `base` with the quotas given here replaced.
    fn over(&self, base: Quotas) -> Quotas {
        Quotas {
            sessions: self.quota_sessions.or(base.sessions),
            filters: self.quota_filters.or(base.filters),
            ports: self.quota_ports.or(base.ports),
        }
    }
}

#[derive(Subcommand)]
pub enum ProjectCommand {
    /// Create a project; prints its id (give it to `admin credential create --project`)
    Create {
        /// Name: 1-64 printable characters
        #[arg(long)]
        name: String,
        #[command(flatten)]
        quotas: QuotaFlags,
    },
    /// List every project
    List,
    /// Show a project, its quotas and what it holds
    Show {
        /// Project id
        id: String,
    },
    /// Rename a project or change its quotas (the quotas not given keep their value)
    Update {
        /// Project id
        id: String,
        /// New name
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        quotas: QuotaFlags,
        /// Drop every quota override first (back to the server's defaults), then apply any
        /// --quota-* given
        #[arg(long)]
        default_quotas: bool,
    },
    /// Delete a project (refused while it holds ports, filters, sessions, networks or
    /// credentials)
    Delete {
        /// Project id
        id: String,
    },
}

const ROLES: [&str; 4] = ["admin", "member", "reader", "operator"];

fn role(s: &str) -> Role {
    s.parse().expect("clap only lets the four roles through")
}

#[derive(Subcommand)]
pub enum CredentialCommand {
    /// Create an access key; its secret is printed this once (`--output json > FILE` writes a
    /// credentials file for `--credentials FILE` and the SDKs)
    Create {
        /// The project the key acts in
        #[arg(long, value_name = "ID")]
        project: String,
        /// reader: reads; member: also writes the project's resources; admin: also manages
        /// the project's keys; operator: everything (only in the operator's own project)
        #[arg(long, value_parser = PossibleValuesParser::new(ROLES))]
        role: String,
    },
    /// List a project's keys (never their secrets)
    List {
        /// Project id
        #[arg(long, value_name = "ID")]
        project: String,
    },
    /// Disable a key: every server refuses it at once, until enabled again
    Disable {
        /// Access key
        access_key: String,
    },
    /// Enable a disabled key
    Enable {
        /// Access key
        access_key: String,
    },
    /// Delete a key for good
    Delete {
        /// Access key
        access_key: String,
    },
}

#[derive(Subcommand)]
pub enum HostCommand {
    /// Enrol an agent host; prints its credential this once (`--output json > FILE` writes the
    /// agent's credential file {"host_id", "token", "endpoint"})
    Create {
        /// Host id: the name ports are bound to (1-253 letters, digits, '-', '.', '_')
        host_id: String,
    },
    /// List enrolled hosts and what their agents last reported
    List,
    /// Show one host
    Show {
        /// Host id
        host_id: String,
    },
    /// Refuse the host's agent until enabled again
    Disable {
        /// Host id
        host_id: String,
    },
    /// Accept the host's agent again
    Enable {
        /// Host id
        host_id: String,
    },
    /// Give the host a new token (printed this once); the old one stops working at once
    Rotate {
        /// Host id
        host_id: String,
    },
    /// Remove an enrolled host
    Delete {
        /// Host id
        host_id: String,
    },
}

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Create a network owned by a project, or shared with all (CIDRs overlap no other
    /// network's)
    #[command(group(ArgGroup::new("owner").required(true).args(["project", "shared"])))]
    Create {
        /// Network id [default: a fresh net-... id]
        #[arg(long)]
        id: Option<String>,
        /// Name
        #[arg(long)]
        name: Option<String>,
        /// The project whose ports may use it
        #[arg(long, value_name = "ID")]
        project: Option<String>,
        /// Shared: every project may put ports in it
        #[arg(long)]
        shared: bool,
        /// Address block, e.g. 10.0.0.0/24; repeat for several
        #[arg(long = "cidr", value_name = "CIDR", required = true)]
        cidrs: Vec<String>,
    },
    /// List networks
    List,
    /// Delete a network (refused while ports use it)
    Delete {
        /// Network id
        id: String,
    },
}

fn capture_side(s: &str) -> Result<CaptureSide, String> {
    s.parse().map_err(|e: tmirror_model::InvalidValue| e.0)
}

#[derive(Subcommand)]
pub enum PortCommand {
    /// Bind a port of any project to an interface of an enrolled host
    Bind {
        /// Port id
        port_id: String,
        /// Host id (`tmirror admin host list`)
        #[arg(long, value_name = "HOST")]
        host: String,
        /// Interface on that host, e.g. tap0 [default: tap + the port id's first 11
        /// characters]
        #[arg(long, value_name = "NAME")]
        interface: Option<String>,
        /// Capture on the host end of the interface or as the guest sees it [default: host]
        #[arg(long, value_parser = capture_side, value_name = "host|guest")]
        capture_side: Option<CaptureSide>,
    },
    /// Remove a port's binding
    Unbind {
        /// Port id
        port_id: String,
    },
}

pub fn run(ctx: &Context, command: AdminCommand) -> Result<(), CliError> {
    let admin = AdminClient::from(ctx.client.clone());
    match command {
        AdminCommand::Project(c) => project(ctx, &admin, c),
        AdminCommand::Credential(c) => credential(ctx, &admin, c),
        AdminCommand::Host(c) => host(ctx, &admin, c),
        AdminCommand::Network(c) => network(ctx, &admin, c),
        AdminCommand::Port(c) => port(ctx, &admin, c),
        AdminCommand::EipPool(c) => super::eip_pool::run(ctx, &admin, c),
    }
}

fn deleted(ctx: &Context, what: &str, id: &str) {
    if !ctx.json() {
        output::print(&format!("deleted {what} {id}\n"));
    }
}

// ---------------------------------------------------------------------------------------------
// Projects

fn project(ctx: &Context, a: &AdminClient, command: ProjectCommand) -> Result<(), CliError> {
    match command {
        ProjectCommand::Create { name, quotas } => {
            let body = ProjectCreate {
                name,
                quotas: quotas.any().then(|| quotas.over(Quotas::default())),
            };
            let p = ctx.call(a.project_create(&body))?;
            show_project(ctx, &p);
            if !ctx.json() {
                eprintln!(
                    "next: `tmirror admin credential create --project {} --role admin|member|reader`",
                    p.id
                );
            }
        }
        ProjectCommand::List => {
            let all = ctx.call(a.project_list())?;
            if ctx.json() {
                output::print_json(&json!({ "projects": all }));
            } else {
                let mut t = Table::new(vec![
                    "ID", "NAME", "SESSIONS", "FILTERS", "PORTS", "CREATED",
                ]);
                for p in &all {
                    t.row(vec![
                        p.id.clone(),
                        p.name.clone(),
                        quota(p.quotas.sessions),
                        quota(p.quotas.filters),
                        quota(p.quotas.ports),
                        p.created_at.clone(),
                    ]);
                }
                output::print(&t.render());
            }
        }
        ProjectCommand::Show { id } => show_project(ctx, &ctx.call(a.project_show(&id))?),
        ProjectCommand::Update {
            id,
            name,
            quotas,
            default_quotas,
        } => {
            if name.is_none() && !quotas.any() && !default_quotas {
                return Err(nothing_to_update("admin project"));
            }
            // The server replaces the whole set of overrides: start from the current one, so
            // that `--quota-ports 5` leaves the others as they are.
            let new_quotas = if default_quotas {
                Some(quotas.over(Quotas::default()))
            } else if quotas.any() {
                Some(quotas.over(ctx.call(a.project_show(&id))?.quotas))
            } else {
                None
            };
            let body = ProjectUpdate {
                name,
                quotas: new_quotas,
            };
            show_project(ctx, &ctx.call(a.project_update(&id, &body))?);
        }
        ProjectCommand::Delete { id } => {
            ctx.call(a.project_delete(&id))?;
            deleted(ctx, "project", &id);
        }
    }
    Ok(())
}

/// A quota override, or `default`.
fn quota(q: Option<u32>) -> String {
    q.map_or_else(|| "default".to_owned(), |n| n.to_string())
}

fn show_project(ctx: &Context, p: &Project) {
    if ctx.json() {
        output::print_json(p);
        return;
    }
    let mut pairs = vec![
        ("id", p.id.clone()),
        ("name", p.name.clone()),
        ("created_at", p.created_at.clone()),
        ("quota_sessions", quota(p.quotas.sessions)),
        ("quota_filters", quota(p.quotas.filters)),
        ("quota_ports", quota(p.quotas.ports)),
    ];
    if let Some(u) = &p.usage {
        pairs.extend([
            ("sessions", u.sessions.to_string()),
            ("filters", u.filters.to_string()),
            ("ports", u.ports.to_string()),
            ("networks", u.networks.to_string()),
            ("credentials", u.credentials.to_string()),
        ]);
    }
    output::print(&fields(pairs));
}

// ---------------------------------------------------------------------------------------------
// Credentials

fn credential(ctx: &Context, a: &AdminClient, command: CredentialCommand) -> Result<(), CliError> {
    match command {
        CredentialCommand::Create { project, role: r } => {
            let c = ctx.call(a.credential_create(&project, role(&r)))?;
            show_new_credential(ctx, &c);
        }
        CredentialCommand::List { project } => {
            let all = ctx.call(a.credential_list(&project))?;
            if ctx.json() {
                output::print_json(&json!({ "credentials": all }));
            } else {
                let mut t = Table::new(vec![
                    "ACCESS_KEY",
                    "ROLE",
                    "ENABLED",
                    "CREATED",
                    "LAST_USED",
                ]);
                for c in &all {
                    t.row(vec![
                        c.access_key.clone(),
                        c.role.to_string(),
                        c.enabled.to_string(),
                        c.created_at.clone(),
                        or_dash(c.last_used_at.as_deref()),
                    ]);
                }
                output::print(&t.render());
            }
        }
        CredentialCommand::Disable { access_key } => {
            show_credential(ctx, &ctx.call(a.credential_disable(&access_key))?)
        }
        CredentialCommand::Enable { access_key } => {
            show_credential(ctx, &ctx.call(a.credential_enable(&access_key))?)
        }
        CredentialCommand::Delete { access_key } => {
            ctx.call(a.credential_delete(&access_key))?;
            deleted(ctx, "credential", &access_key);
        }
    }
    Ok(())
}

/// The new key: with `--output json` exactly the credentials file
/// `{"access_key", "secret_key", "project_id", "endpoint"}`.
fn show_new_credential(ctx: &Context, c: &NewCredential) {
    if ctx.json() {
        output::print_json(&c.file());
        return;
    }
    output::print(&fields(vec![
        ("access_key", c.access_key.clone()),
        ("secret_key", c.secret_key.clone()),
        ("project_id", c.project_id.clone()),
        ("role", c.role.to_string()),
        ("endpoint", c.endpoint.clone()),
    ]));
    eprintln!(
        "the secret key is shown only this once; `--output json > FILE` writes it as a \
         credentials file for `tmirror --credentials FILE` and the SDKs"
    );
}

fn show_credential(ctx: &Context, c: &Credential) {
    if ctx.json() {
        output::print_json(c);
        return;
    }
    output::print(&fields(vec![
        ("access_key", c.access_key.clone()),
        ("project_id", c.project_id.clone()),
        ("role", c.role.to_string()),
        ("enabled", c.enabled.to_string()),
        ("created_at", c.created_at.clone()),
        ("last_used_at", or_dash(c.last_used_at.as_deref())),
    ]));
}

// ---------------------------------------------------------------------------------------------
// Hosts

fn host(ctx: &Context, a: &AdminClient, command: HostCommand) -> Result<(), CliError> {
    match command {
        HostCommand::Create { host_id } => {
            show_host_credential(ctx, &ctx.call(a.host_create(&host_id))?)
        }
        HostCommand::Rotate { host_id } => {
            show_host_credential(ctx, &ctx.call(a.host_rotate(&host_id))?)
        }
        HostCommand::List => {
            let all = ctx.call(a.host_list())?;
            if ctx.json() {
                output::print_json(&json!({ "hosts": all }));
            } else {
                let mut t = Table::new(vec![
                    "HOST_ID",
                    "ENABLED",
                    "AGENT",
                    "LAST_SEEN",
                    "GENERATION",
                    "INTERFACES",
                ]);
                for h in &all {
                    let agent = h.agent.as_ref();
                    t.row(vec![
                        h.host_id.clone(),
                        h.enabled.to_string(),
                        agent_state(h),
                        or_dash(agent.map(|a| a.last_seen.as_str())),
                        or_dash(agent.map(|a| a.applied_generation.to_string()).as_deref()),
                        super::joined(agent.map(|a| a.interfaces.as_slice()).unwrap_or(&[])),
                    ]);
                }
                output::print(&t.render());
            }
        }
        HostCommand::Show { host_id } => show_host(ctx, &ctx.call(a.host_show(&host_id))?),
        HostCommand::Disable { host_id } => show_host(ctx, &ctx.call(a.host_disable(&host_id))?),
        HostCommand::Enable { host_id } => show_host(ctx, &ctx.call(a.host_enable(&host_id))?),
        HostCommand::Delete { host_id } => {
            ctx.call(a.host_delete(&host_id))?;
            deleted(ctx, "host", &host_id);
        }
    }
    Ok(())
}

fn agent_state(h: &Host) -> String {
    match &h.agent {
        None => "never seen".into(),
        Some(a) if a.connected => "connected".into(),
        Some(_) => "disconnected".into(),
    }
}

/// The host's credential: with `--output json` exactly the agent's file
/// `{"host_id", "token", "endpoint"}`.
fn show_host_credential(ctx: &Context, c: &HostCredential) {
    if ctx.json() {
        output::print_json(c);
        return;
    }
    output::print(&fields(vec![
        ("host_id", c.host_id.clone()),
        ("token", c.token.clone()),
        ("endpoint", c.endpoint.clone()),
    ]));
    eprintln!(
        "the token is shown only this once; `--output json > FILE` writes the host's \
         credential file for its agent"
    );
}

fn show_host(ctx: &Context, h: &Host) {
    if ctx.json() {
        output::print_json(h);
        return;
    }
    let mut pairs = vec![
        ("host_id", h.host_id.clone()),
        ("enabled", h.enabled.to_string()),
        ("created_at", h.created_at.clone()),
        ("agent", agent_state(h)),
    ];
    if let Some(a) = &h.agent {
        pairs.extend([
            ("registered_at", a.registered_at.clone()),
            ("last_seen", a.last_seen.clone()),
            ("applied_generation", a.applied_generation.to_string()),
            ("interfaces", super::joined(&a.interfaces)),
        ]);
    }
    output::print(&fields(pairs));
}

// ---------------------------------------------------------------------------------------------
// Networks

fn network(ctx: &Context, a: &AdminClient, command: NetworkCommand) -> Result<(), CliError> {
    match command {
        NetworkCommand::Create {
            id,
            name,
            project,
            shared,
            cidrs,
        } => {
            let body = NetworkCreate {
                id,
                name,
                project_id: project,
                shared,
                cidrs,
            };
            show_network(ctx, &ctx.call(a.network_create(&body))?);
        }
        NetworkCommand::List => {
            let all = ctx.call(a.network_list())?;
            if ctx.json() {
                output::print_json(&json!({ "networks": all }));
            } else {
                let mut t = Table::new(vec!["ID", "NAME", "PROJECT", "CIDRS"]);
                for n in &all {
                    t.row(vec![
                        n.id.clone(),
                        or_dash(Some(&n.name)),
                        owner(n),
                        super::joined(&n.cidrs),
                    ]);
                }
                output::print(&t.render());
            }
        }
        NetworkCommand::Delete { id } => {
            ctx.call(a.network_delete(&id))?;
            deleted(ctx, "network", &id);
        }
    }
    Ok(())
}

fn owner(n: &Network) -> String {
    n.project_id.clone().unwrap_or_else(|| "shared".into())
}

fn show_network(ctx: &Context, n: &Network) {
    if ctx.json() {
        output::print_json(n);
        return;
    }
    output::print(&fields(vec![
        ("id", n.id.clone()),
        ("name", or_dash(Some(&n.name))),
        ("project_id", owner(n)),
        ("cidrs", super::joined(&n.cidrs)),
        ("created_at", n.created_at.clone()),
    ]));
}

// ---------------------------------------------------------------------------------------------
// Port bindings

fn port(ctx: &Context, a: &AdminClient, command: PortCommand) -> Result<(), CliError> {
    let p = match command {
        PortCommand::Bind {
            port_id,
            host,
            interface,
            capture_side,
        } => {
            if host.is_empty() {
                return Err(CliError::Usage(format!(
                    "--host is empty: to unbind, use `tmirror admin port unbind {port_id}`"
                )));
            }
            let body = PortBinding {
                host_id: host,
                interface_name: interface,
                capture_side,
            };
            ctx.call(a.port_bind(&port_id, &body))?
        }
        PortCommand::Unbind { port_id } => ctx.call(a.port_unbind(&port_id))?,
    };
    show_binding(ctx, &p);
    Ok(())
}

fn show_binding(ctx: &Context, p: &BoundPort) {
    if ctx.json() {
        output::print_json(p);
        return;
    }
    output::print(&fields(vec![
        ("id", p.id.clone()),
        ("project_id", p.project_id.clone()),
        ("host_id", or_dash(Some(&p.host_id))),
        (
            "interface_name",
            or_dash(p.profile.interface_name.as_deref()),
        ),
        (
            "capture_side",
            match p.profile.capture_side {
                CaptureSide::Host => "host".into(),
                CaptureSide::Guest => "guest".into(),
            },
        ),
        ("status", p.status.clone()),
    ]));
}
