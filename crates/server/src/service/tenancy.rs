//! The operator's records: projects, credentials, enrolled hosts, networks and port bindings
//! (the admin API, `docs/admin-api.md`). Who may do what is decided here:
//!
//! - the **operator** does everything;
//! - a project's **admin** manages its own project's credentials (roles admin, member and
//!   reader) and sees its project;
//! - **members** and **readers** manage none of these.
//!
//! A record another project's admin may not see is answered as if it did not exist.

use rand::distributions::Alphanumeric;
use rand::Rng;
use tmirror_model::*;
use tmirror_store::{AgentRecord, Credential, ProjectUsage, WriteTx};

use super::ports::bind_port;
use super::{Service, ServiceResult};
use crate::auth::token_hash;

/// A new project.
#[derive(Clone, Debug, Default)]
pub struct ProjectCreate {
    pub name: String,
    pub quotas: QuotaOverrides,
}

/// Changes to a project; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct ProjectUpdate {
    pub name: Option<String>,
    pub quotas: Option<QuotaOverrides>,
}

/// A new network.
#[derive(Clone, Debug, Default)]
pub struct NetworkCreate {
    /// `None`: a fresh `net-…` id.
    pub id: Option<String>,
    pub name: String,
    /// `None`: shared with every project.
    pub project_id: Option<ProjectId>,
    pub cidrs: Vec<ipnet::IpNet>,
}

/// An enrolled host with what its agent last reported.
#[derive(Clone, Debug)]
pub struct HostView {
    pub host: Host,
    pub agent: Option<AgentRecord>,
    /// Revisions the host's applied desired state is behind the current one (`None` until
    /// its agent registers).
    pub lag: Option<u64>,
}

impl HostView {
    fn new(host: Host, agent: Option<AgentRecord>, revision: u64) -> Self {
        let lag = agent
            .as_ref()
            .map(|a| revision.saturating_sub(a.applied_generation));
        HostView { host, agent, lag }
    }
}

fn forbidden(what: &str) -> DomainError {
    DomainError::Forbidden(format!("only the operator may {what}"))
}

fn unknown(kind: &'static str, id: impl std::fmt::Display) -> DomainError {
    DomainError::UnknownRecord {
        kind,
        id: id.to_string(),
    }
}

pub(super) fn operator_only(actor: &Actor, what: &str) -> ServiceResult<()> {
    if actor.role == Role::Operator {
        Ok(())
    } else {
        Err(forbidden(what).into())
    }
}

/// Whether `actor` manages the credentials of `project`: the operator, or an admin of it.
fn manages_credentials_of(actor: &Actor, project: &ProjectId) -> bool {
    actor.role == Role::Operator || (actor.role == Role::Admin && &actor.project == project)
}

fn random_text(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A fresh host token; the store keeps only its hash.
fn new_host_token() -> String {
    format!("tmh_{}", random_text(48))
}

/// Host names as agents use them: 1–253 characters of letters, digits, `-`, `.`, `_`.
pub fn check_host_id(host: &str) -> ServiceResult<()> {
    if host.is_empty()
        || host.len() > 253
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        return Err(DomainError::invalid(
            Field::HostId,
            format!("{host:?}: 1 to 253 letters, digits, '-', '.' or '_'"),
        )
        .into());
    }
    Ok(())
}

fn check_name(name: &str) -> ServiceResult<()> {
    if name.trim().is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(DomainError::invalid(Field::Name, "1 to 64 printable characters").into());
    }
    Ok(())
}

/// Refuses to take away the last enabled operator credential: nobody could manage the
/// deployment any more.
async fn keep_an_operator(tx: &mut dyn WriteTx, leaving: &Credential) -> ServiceResult<()> {
    if leaving.role != Role::Operator || !leaving.enabled {
        return Ok(());
    }
    let others = tx
        .credentials(Some(&leaving.project_id))
        .await?
        .into_iter()
        .filter(|c| c.role == Role::Operator && c.enabled && c.access_key != leaving.access_key)
        .count();
    if others == 0 {
        return Err(DomainError::Conflict(
            "this is the last enabled operator credential: create another operator credential first"
                .into(),
        )
        .into());
    }
    Ok(())
}

impl Service {
    pub async fn project_create(
        &self,
        actor: &Actor,
        input: ProjectCreate,
    ) -> ServiceResult<Project> {
        operator_only(actor, "create projects")?;
        check_name(&input.name)?;
        self.transact(|tx| {
            let input = input.clone();
            Box::pin(async move {
                let project = Project {
                    id: ProjectId::new(),
                    name: input.name,
                    created_at: Timestamp::now().0,
                    quotas: input.quotas,
                };
                tx.put_project(&project).await?;
                Ok(project)
            })
        })
        .await
    }

    pub async fn project_list(&self, actor: &Actor) -> ServiceResult<Vec<Project>> {
        operator_only(actor, "list projects")?;
        Ok(self.store.read().await?.projects().await?)
    }

    /// A project and what it holds: the operator's, or an admin's own.
    pub async fn project_show(
        &self,
        actor: &Actor,
        id: &ProjectId,
    ) -> ServiceResult<(Project, ProjectUsage)> {
        if !manages_credentials_of(actor, id) {
            return Err(
                if actor.role == Role::Operator || actor.role == Role::Admin {
                    unknown("project", id)
                } else {
                    forbidden("see projects")
                }
                .into(),
            );
        }
        let mut r = self.store.read().await?;
        let project = r.project(id).await?.ok_or_else(|| unknown("project", id))?;
        let usage = r.project_usage(id).await?;
        Ok((project, usage))
    }

    pub async fn project_update(
        &self,
        actor: &Actor,
        id: &ProjectId,
        input: ProjectUpdate,
    ) -> ServiceResult<Project> {
        operator_only(actor, "change projects")?;
        if let Some(name) = &input.name {
            check_name(name)?;
        }
        self.transact(|tx| {
            let (input, id) = (input.clone(), id.clone());
            Box::pin(async move {
                let id = &id;
                let mut project = tx
                    .project(id)
                    .await?
                    .ok_or_else(|| unknown("project", id))?;
                if let Some(name) = input.name {
                    project.name = name;
                }
                if let Some(quotas) = input.quotas {
                    project.quotas = quotas;
                }
                tx.put_project(&project).await?;
                Ok(project)
            })
        })
        .await
    }

    /// Refused while the project holds anything: resources, networks or credentials.
    pub async fn project_delete(&self, actor: &Actor, id: &ProjectId) -> ServiceResult<()> {
        operator_only(actor, "delete projects")?;
        self.transact(|tx| {
            let id = id.clone();
            Box::pin(async move {
                let id = &id;
                if tx.project(id).await?.is_none() {
                    return Err(unknown("project", id).into());
                }
                let u = tx.project_usage(id).await?;
                if !u.is_empty() {
                    return Err(DomainError::Conflict(format!(
                        "project {id} still holds {} ports, {} filters, {} sessions, {} networks, {} load balancers, {} elastic IPs and {} credentials: delete them first",
                        u.ports, u.filters, u.sessions, u.networks, u.load_balancers, u.eips, u.credentials
                    ))
                    .into());
                }
                tx.delete_project(id).await?;
                Ok(())
            })
        })
        .await
    }

    /// A new credential of `project`; the only time its secret is shown. Operator
    /// credentials belong to the operator's own project.
    pub async fn credential_create(
        &self,
        actor: &Actor,
        project: &ProjectId,
        role: Role,
    ) -> ServiceResult<Credential> {
        if !manages_credentials_of(actor, project) {
            return Err(match actor.role {
                Role::Admin => unknown("project", project),
                _ => forbidden("create credentials"),
            }
            .into());
        }
        if role == Role::Operator && (actor.role != Role::Operator || project != &actor.project) {
            return Err(DomainError::Forbidden(
                "operator credentials are created by the operator, in the operator's own project"
                    .into(),
            )
            .into());
        }
        self.transact(|tx| {
            let project = project.clone();
            Box::pin(async move {
                let project = &project;
                if tx.project(project).await?.is_none() {
                    return Err(unknown("project", project).into());
                }
                let c = crate::bootstrap::new_credential(project.clone(), role, Timestamp::now().0);
                tx.put_credential(&c).await?;
                Ok(c)
            })
        })
        .await
    }

    /// The credentials of `project`, oldest first (the caller renders them without secrets).
    pub async fn credential_list(
        &self,
        actor: &Actor,
        project: &ProjectId,
    ) -> ServiceResult<Vec<Credential>> {
        if !manages_credentials_of(actor, project) {
            return Err(match actor.role {
                Role::Admin => unknown("project", project),
                _ => forbidden("list credentials"),
            }
            .into());
        }
        let mut r = self.store.read().await?;
        if r.project(project).await?.is_none() {
            return Err(unknown("project", project).into());
        }
        Ok(r.credentials(Some(project)).await?)
    }

    /// Reads the credential `access_key` for a change by `actor`: refused as unknown unless
    /// `actor` manages its project; an admin never changes an operator credential.
    async fn credential_for_change(
        tx: &mut dyn WriteTx,
        actor: &Actor,
        access_key: &str,
    ) -> ServiceResult<Credential> {
        if !matches!(actor.role, Role::Operator | Role::Admin) {
            return Err(forbidden("change credentials").into());
        }
        match tx.credential(access_key).await? {
            Some(c)
                if manages_credentials_of(actor, &c.project_id)
                    && (c.role != Role::Operator || actor.role == Role::Operator) =>
            {
                Ok(c)
            }
            _ => Err(unknown("credential", access_key).into()),
        }
    }

    pub async fn credential_set_enabled(
        &self,
        actor: &Actor,
        access_key: &str,
        enabled: bool,
    ) -> ServiceResult<Credential> {
        self.transact(|tx| {
            let (actor, access_key) = (actor.clone(), access_key.to_owned());
            Box::pin(async move {
                let mut c = Service::credential_for_change(tx, &actor, &access_key).await?;
                if !enabled {
                    keep_an_operator(tx, &c).await?;
                }
                if c.enabled != enabled {
                    c.enabled = enabled;
                    tx.put_credential(&c).await?;
                }
                Ok(c)
            })
        })
        .await
    }

    pub async fn credential_delete(&self, actor: &Actor, access_key: &str) -> ServiceResult<()> {
        self.transact(|tx| {
            let (actor, access_key) = (actor.clone(), access_key.to_owned());
            Box::pin(async move {
                let c = Service::credential_for_change(tx, &actor, &access_key).await?;
                keep_an_operator(tx, &c).await?;
                tx.delete_credential(&access_key).await?;
                Ok(())
            })
        })
        .await
    }

    /// Enrols a host: its token is returned this once; the store keeps a hash.
    pub async fn host_create(&self, actor: &Actor, host_id: &str) -> ServiceResult<(Host, String)> {
        operator_only(actor, "enrol hosts")?;
        check_host_id(host_id)?;
        self.transact(|tx| {
            let host_id = host_id.to_owned();
            Box::pin(async move {
                let host_id = host_id.as_str();
                if tx.host(host_id).await?.is_some() {
                    return Err(DomainError::Conflict(format!(
                        "host {host_id} is already enrolled: rotate its credential or delete it first"
                    ))
                    .into());
                }
                let token = new_host_token();
                let host = Host {
                    host_id: host_id.to_owned(),
                    token_hash: token_hash(&token),
                    enabled: true,
                    created_at: Timestamp::now().0,
                };
                tx.put_host(&host).await?;
                Ok((host, token))
            })
        })
        .await
    }

    /// A new token for an enrolled host; the old one stops working.
    pub async fn host_rotate(&self, actor: &Actor, host_id: &str) -> ServiceResult<(Host, String)> {
        operator_only(actor, "rotate host credentials")?;
        self.transact(|tx| {
            let host_id = host_id.to_owned();
            Box::pin(async move {
                let host_id = host_id.as_str();
                let mut host = tx
                    .host(host_id)
                    .await?
                    .ok_or_else(|| unknown("host", host_id))?;
                let token = new_host_token();
                host.token_hash = token_hash(&token);
                tx.put_host(&host).await?;
                Ok((host, token))
            })
        })
        .await
    }

    pub async fn host_set_enabled(
        &self,
        actor: &Actor,
        host_id: &str,
        enabled: bool,
    ) -> ServiceResult<Host> {
        operator_only(actor, "disable or enable hosts")?;
        self.transact(|tx| {
            let host_id = host_id.to_owned();
            Box::pin(async move {
                let host_id = host_id.as_str();
                let mut host = tx
                    .host(host_id)
                    .await?
                    .ok_or_else(|| unknown("host", host_id))?;
                if host.enabled != enabled {
                    host.enabled = enabled;
                    tx.put_host(&host).await?;
                }
                Ok(host)
            })
        })
        .await
    }

    pub async fn host_delete(&self, actor: &Actor, host_id: &str) -> ServiceResult<()> {
        operator_only(actor, "delete hosts")?;
        self.transact(|tx| {
            let host_id = host_id.to_owned();
            Box::pin(async move {
                let host_id = host_id.as_str();
                if !tx.delete_host(host_id).await? {
                    return Err(unknown("host", host_id).into());
                }
                Ok(())
            })
        })
        .await
    }

    /// Every enrolled host with its agent's last report.
    pub async fn host_list(&self, actor: &Actor) -> ServiceResult<Vec<HostView>> {
        operator_only(actor, "list hosts")?;
        let hosts = self.store.read().await?.hosts().await?;
        // Two queries for the whole list (not one per host), with what this server saw of
        // the agents and did not write down yet.
        let mut agents: std::collections::HashMap<String, _> = self
            .agents()
            .await?
            .into_iter()
            .map(|a| (a.host_id.clone(), a))
            .collect();
        let revision = *self.revisions().borrow();
        Ok(hosts
            .into_iter()
            .map(|host| {
                let agent = agents.remove(&host.host_id);
                HostView::new(host, agent, revision)
            })
            .collect())
    }

    pub async fn host_show(&self, actor: &Actor, host_id: &str) -> ServiceResult<HostView> {
        operator_only(actor, "see hosts")?;
        let host = self
            .store
            .read()
            .await?
            .host(host_id)
            .await?
            .ok_or_else(|| unknown("host", host_id))?;
        let agent = self.agent(host_id).await?;
        let revision = *self.revisions().borrow();
        Ok(HostView::new(host, agent, revision))
    }

    /// A network with its address space: its CIDRs overlap no other network's.
    pub async fn network_create(
        &self,
        actor: &Actor,
        input: NetworkCreate,
    ) -> ServiceResult<Network> {
        operator_only(actor, "create networks")?;
        let id = input
            .id
            .clone()
            .unwrap_or_else(|| format!("net-{}", uuid::Uuid::new_v4().simple()));
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_graphic()) {
            return Err(DomainError::invalid(
                Field::NetworkId,
                "1 to 64 printable ASCII characters",
            )
            .into());
        }
        self.transact(|tx| {
            let (input, id) = (input.clone(), id.clone());
            Box::pin(async move {
                if tx.network(&id).await?.is_some() {
                    return Err(
                        DomainError::Conflict(format!("network {id} already exists")).into(),
                    );
                }
                if let Some(p) = &input.project_id {
                    if tx.project(p).await?.is_none() {
                        return Err(unknown("project", p).into());
                    }
                }
                let network = Network {
                    id,
                    name: input.name,
                    project_id: input.project_id,
                    cidrs: input.cidrs,
                    created_at: Timestamp::now().0,
                };
                if let Some(other) = tx.networks().await?.iter().find(|n| n.overlaps(&network)) {
                    return Err(DomainError::Conflict(format!(
                        "the CIDRs overlap those of network {}: addresses belong to one network",
                        other.id
                    ))
                    .into());
                }
                tx.put_network(&network).await?;
                Ok(network)
            })
        })
        .await
    }

    pub async fn network_list(&self, actor: &Actor) -> ServiceResult<Vec<Network>> {
        operator_only(actor, "list networks")?;
        Ok(self.store.read().await?.networks().await?)
    }

    /// Refused while ports use the network.
    pub async fn network_delete(&self, actor: &Actor, id: &str) -> ServiceResult<()> {
        operator_only(actor, "delete networks")?;
        self.transact(|tx| {
            let id = id.to_owned();
            Box::pin(async move {
                let id = id.as_str();
                if tx.network(id).await?.is_none() {
                    return Err(unknown("network", id).into());
                }
                let ports = tx.ports_in_network(id).await?.len();
                if ports > 0 {
                    return Err(DomainError::Conflict(format!(
                        "network {id} still has {ports} ports: delete them first"
                    ))
                    .into());
                }
                tx.delete_network(id).await?;
                Ok(())
            })
        })
        .await
    }

    /// Binds any project's port to a host interface (or unbinds it, with an empty host and
    /// the default profile).
    pub async fn port_bind(
        &self,
        actor: &Actor,
        id: PortId,
        host_id: String,
        profile: BindingProfile,
    ) -> ServiceResult<Port> {
        operator_only(actor, "bind ports to hosts")?;
        if !host_id.is_empty() {
            check_host_id(&host_id)?;
        }
        self.transact(|tx| {
            let (host_id, profile) = (host_id.clone(), profile.clone());
            Box::pin(async move {
                let port = tx
                    .any_port(id)
                    .await?
                    .ok_or_else(|| DomainError::not_found(ResourceKind::Port, id))?;
                bind_port(tx, port, host_id, profile).await
            })
        })
        .await
    }
}
