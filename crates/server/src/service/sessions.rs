//! Sessions: which ports are mirrored, through which filter, to which target.

use std::collections::HashSet;

use tmirror_model::*;
use tmirror_store::{ListQuery, Page, SessionField, WriteTx};

use super::load_balancers::member_is_port;
use super::{quota, Service, ServiceResult, Writer};

/// A new session.
#[derive(Clone, Debug)]
pub struct SessionCreate {
    pub name: String,
    pub description: String,
    pub filter_id: FilterId,
    /// The sources, whose type is the session's `type`.
    pub sources: SessionSources,
    pub target: SessionTarget,
    pub vni: Vni,
    pub packet_length: PacketLength,
    pub priority: SessionPriority,
    pub enabled: bool,
}

/// Changes to a session; `None` keeps the current value. Sources change through
/// [`Service::session_add_sources`] and [`Service::session_remove_sources`].
#[derive(Clone, Debug, Default)]
pub struct SessionUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub filter_id: Option<FilterId>,
    pub target: TargetChange,
    pub vni: Option<Vni>,
    pub packet_length: Option<PacketLength>,
    pub priority: Option<SessionPriority>,
    pub enabled: Option<bool>,
    /// A new `type`: only while the session has no sources (they are all of its type).
    pub source_type: Option<SourceType>,
}

/// A change of target as the faces send it: the type and the id may each come alone (Huawei's
/// update takes either), and the missing half is the session's current one.
#[derive(Clone, Copy, Debug, Default)]
pub struct TargetChange {
    pub kind: Option<TargetType>,
    pub id: Option<uuid::Uuid>,
}

impl TargetChange {
    /// The target after the change.
    pub fn apply(self, current: SessionTarget) -> SessionTarget {
        SessionTarget::of_kind(
            self.kind.unwrap_or(current.kind()),
            self.id.unwrap_or(current.id()),
        )
    }
}

fn no_duplicates(ids: &[uuid::Uuid]) -> ServiceResult<()> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(DomainError::DuplicateSource(id.to_string()).into());
        }
    }
    Ok(())
}

/// The target must be an existing port of the project with an address to send copies to, and
/// must not be mirrored itself (copies delivered to it would be mirrored again); or an
/// existing load balancer of the project.
async fn check_target(
    tx: &mut dyn WriteTx,
    project: &ProjectId,
    target: SessionTarget,
) -> ServiceResult<()> {
    let target = match target {
        SessionTarget::Port(port) => port,
        SessionTarget::LoadBalancer(lb) => {
            // Members are checked when they are added (addresses of the project's ports); a
            // load balancer with no member yet is a valid target whose session says so.
            tx.get_load_balancer(project, lb)
                .await?
                .ok_or_else(|| DomainError::not_found(ResourceKind::LoadBalancer, lb))?;
            return Ok(());
        }
    };
    let port = tx
        .get_port(project, target)
        .await?
        .ok_or_else(|| DomainError::not_found(ResourceKind::Port, target))?;
    if port.primary_ip().is_none() {
        return Err(DomainError::TargetWithoutAddress(target.to_string()).into());
    }
    if !tx.sessions_with_source(target).await?.is_empty() {
        return Err(DomainError::SourceIsTarget(target.to_string()).into());
    }
    Ok(())
}

/// New sources (not yet in `session`): they exist, are no session's target, and have room for
/// one more session.
async fn check_new_sources(
    tx: &mut dyn WriteTx,
    project: &ProjectId,
    sessions_per_source: u32,
    target: SessionTarget,
    new: &SessionSources,
) -> ServiceResult<()> {
    match new {
        SessionSources::Eni(ports) => {
            check_new_ports(tx, project, sessions_per_source, target, ports).await
        }
        SessionSources::Eip(eips) => check_new_eips(tx, project, sessions_per_source, eips).await,
    }
}

/// [`check_new_sources`] of an `eip` session: the same quota per source as a port's.
async fn check_new_eips(
    tx: &mut dyn WriteTx,
    project: &ProjectId,
    sessions_per_source: u32,
    new: &[EipId],
) -> ServiceResult<()> {
    for &eip in new {
        if tx.get_eip(project, eip).await?.is_none() {
            return Err(DomainError::not_found(ResourceKind::Eip, eip).into());
        }
        if tx.sessions_with_eip_source(eip).await?.len() as u32 >= sessions_per_source {
            return Err(quota(Quota::SessionsPerSource, sessions_per_source));
        }
    }
    Ok(())
}

/// [`check_new_sources`] of an `eni` session.
async fn check_new_ports(
    tx: &mut dyn WriteTx,
    project: &ProjectId,
    sessions_per_source: u32,
    target: SessionTarget,
    new: &[PortId],
) -> ServiceResult<()> {
    // A missing load balancer is check_target's to report.
    let members = match target {
        SessionTarget::LoadBalancer(lb) => load_balancer_members(tx, project, lb).await?,
        SessionTarget::Port(_) => Vec::new(),
    };
    for &port in new {
        if target.port() == Some(port) {
            return Err(DomainError::SourceIsTarget(port.to_string()).into());
        }
        let record = tx
            .get_port(project, port)
            .await?
            .ok_or_else(|| DomainError::not_found(ResourceKind::Port, port))?;
        // A member of the target load balancer: its copies would be mirrored again.
        if members.iter().any(|m| member_is_port(m, &record)) {
            return Err(DomainError::SourceIsTarget(port.to_string()).into());
        }
        if !tx.sessions_with_target(port).await?.is_empty() {
            return Err(DomainError::SourceIsTarget(port.to_string()).into());
        }
        if tx.sessions_with_source(port).await?.len() as u32 >= sessions_per_source {
            return Err(quota(Quota::SessionsPerSource, sessions_per_source));
        }
    }
    Ok(())
}

async fn load_balancer_members(
    tx: &mut dyn WriteTx,
    project: &ProjectId,
    lb: LoadBalancerId,
) -> ServiceResult<Vec<LbMember>> {
    Ok(tx
        .get_load_balancer(project, lb)
        .await?
        .map(|lb| lb.members)
        .unwrap_or_default())
}

async fn check_priority_free(
    tx: &mut dyn WriteTx,
    project: &ProjectId,
    priority: SessionPriority,
    except: Option<SessionId>,
) -> ServiceResult<()> {
    match tx.session_with_priority(project, priority).await? {
        Some(other) if Some(other) != except => {
            Err(DomainError::SessionPriorityInUse(priority.get()).into())
        }
        _ => Ok(()),
    }
}

async fn load(tx: &mut dyn WriteTx, project: &ProjectId, id: SessionId) -> ServiceResult<Session> {
    Ok(tx
        .get_session(project, id)
        .await?
        .ok_or_else(|| DomainError::not_found(ResourceKind::Session, id))?)
}

impl Service {
    pub async fn session_show(&self, project: &ProjectId, id: SessionId) -> ServiceResult<Session> {
        let mut r = self.store.read().await?;
        r.get_session(project, id)
            .await?
            .ok_or_else(|| DomainError::not_found(ResourceKind::Session, id).into())
    }

    pub async fn session_list(
        &self,
        project: &ProjectId,
        q: &ListQuery<SessionField>,
    ) -> ServiceResult<Page<Session>> {
        let mut r = self.store.read().await?;
        Ok(r.list_sessions(project, q).await?)
    }

    /// How many sessions the whole list `q` has (for the totals of Alibaba's lists).
    pub async fn session_count(
        &self,
        project: &ProjectId,
        q: &ListQuery<SessionField>,
    ) -> ServiceResult<u64> {
        let mut r = self.store.read().await?;
        Ok(r.count_sessions(project, q).await?)
    }
}

/// In the caller's transaction; [`Service`] runs each in one of its own.
impl Writer<'_> {
    /// [`Service::session_show`], in the caller's transaction.
    pub async fn session_show(&mut self, id: SessionId) -> ServiceResult<Session> {
        let project = &self.actor.project.clone();
        load(self.tx, project, id).await
    }

    pub async fn session_create(&mut self, input: SessionCreate) -> ServiceResult<Session> {
        let project = &self.actor.project.clone();
        no_duplicates(&input.sources.raw())?;
        let sources_per_session = self.quota(project, Quota::SourcesPerSession).await?;
        if input.sources.len() as u32 > sources_per_session {
            return Err(quota(Quota::SourcesPerSession, sources_per_session));
        }
        let sessions_per_source = self.quota(project, Quota::SessionsPerSource).await?;
        self.check_room(project, ResourceKind::Session, Quota::SessionsPerProject)
            .await?;
        let now = Timestamp::now();
        let session = Session {
            id: SessionId::new(),
            project_id: project.clone(),
            name: input.name,
            description: input.description,
            filter_id: input.filter_id,
            sources: input.sources,
            target: input.target,
            vni: input.vni,
            packet_length: input.packet_length,
            priority: input.priority,
            enabled: input.enabled,
            created_at: now,
            updated_at: now,
        };
        let tx = &mut *self.tx;
        if tx.get_filter(project, session.filter_id).await?.is_none() {
            return Err(DomainError::not_found(ResourceKind::Filter, session.filter_id).into());
        }
        check_new_sources(
            tx,
            project,
            sessions_per_source,
            session.target,
            &session.sources,
        )
        .await?;
        check_target(tx, project, session.target).await?;
        check_priority_free(tx, project, session.priority, None).await?;
        tx.put_session(&session).await?;
        Ok(session)
    }

    pub async fn session_update(
        &mut self,
        id: SessionId,
        input: SessionUpdate,
    ) -> ServiceResult<Session> {
        let project = &self.actor.project.clone();
        let tx = &mut *self.tx;
        let mut s = load(tx, project, id).await?;
        if let Some(filter) = input.filter_id {
            if tx.get_filter(project, filter).await?.is_none() {
                return Err(DomainError::not_found(ResourceKind::Filter, filter).into());
            }
            s.filter_id = filter;
        }
        let target = input.target.apply(s.target);
        if target != s.target {
            if let Some(port) = target.port().filter(|p| s.sources.contains(p.0)) {
                return Err(DomainError::SourceIsTarget(port.to_string()).into());
            }
            check_target(tx, project, target).await?;
            // The sources already there must not be members of a new load balancer target.
            if let SessionTarget::LoadBalancer(lb) = target {
                let members = load_balancer_members(tx, project, lb).await?;
                for &source in s.sources.ports() {
                    if let Some(port) = tx.get_port(project, source).await? {
                        if members.iter().any(|m| member_is_port(m, &port)) {
                            return Err(DomainError::SourceIsTarget(source.to_string()).into());
                        }
                    }
                }
            }
            s.target = target;
        }
        if let Some(priority) = input.priority {
            check_priority_free(tx, project, priority, Some(id)).await?;
            s.priority = priority;
        }
        if let Some(v) = input.name {
            s.name = v;
        }
        if let Some(v) = input.description {
            s.description = v;
        }
        if let Some(v) = input.vni {
            s.vni = v;
        }
        if let Some(v) = input.packet_length {
            s.packet_length = v;
        }
        if let Some(v) = input.enabled {
            s.enabled = v;
        }
        if let Some(v) = input.source_type {
            if v != s.sources.source_type() {
                if !s.sources.is_empty() {
                    return Err(DomainError::Conflict(format!(
                        "type: the session's sources are {} sources; remove them before changing its type to {v}",
                        s.sources.source_type()
                    ))
                    .into());
                }
                s.sources = SessionSources::empty(v);
            }
        }
        s.updated_at = Timestamp::now();
        tx.put_session(&s).await?;
        Ok(s)
    }

    pub async fn session_delete(&mut self, id: SessionId) -> ServiceResult<()> {
        let project = &self.actor.project.clone();
        let tx = &mut *self.tx;
        if !tx.delete_session(project, id).await? {
            return Err(DomainError::not_found(ResourceKind::Session, id).into());
        }
        Ok(())
    }

    /// Appends sources (ids of the session's type), keeping their order. A source that is
    /// already there is an error.
    pub async fn session_add_sources(
        &mut self,
        id: SessionId,
        add: Vec<uuid::Uuid>,
    ) -> ServiceResult<Session> {
        let project = &self.actor.project.clone();
        no_duplicates(&add)?;
        let sources_per_session = self.quota(project, Quota::SourcesPerSession).await?;
        let sessions_per_source = self.quota(project, Quota::SessionsPerSource).await?;
        let tx = &mut *self.tx;
        let mut s = load(tx, project, id).await?;
        if let Some(present) = add.iter().find(|p| s.sources.contains(**p)) {
            return Err(DomainError::SourceAlreadyPresent(present.to_string()).into());
        }
        if (s.sources.len() + add.len()) as u32 > sources_per_session {
            return Err(quota(Quota::SourcesPerSession, sources_per_session));
        }
        let new = SessionSources::from_raw(s.sources.source_type(), add.iter().copied());
        check_new_sources(tx, project, sessions_per_source, s.target, &new).await?;
        s.sources.extend(add);
        s.updated_at = Timestamp::now();
        tx.put_session(&s).await?;
        Ok(s)
    }

    /// Removes sources; one that is not a source is an error. A session may end up with
    /// none (Terraform removes all sources, then adds the new set).
    pub async fn session_remove_sources(
        &mut self,
        id: SessionId,
        remove: Vec<uuid::Uuid>,
    ) -> ServiceResult<Session> {
        let project = &self.actor.project.clone();
        no_duplicates(&remove)?;
        let tx = &mut *self.tx;
        let mut s = load(tx, project, id).await?;
        if let Some(absent) = remove.iter().find(|p| !s.sources.contains(**p)) {
            return Err(DomainError::SourceNotPresent(absent.to_string()).into());
        }
        s.sources.retain(|p| !remove.contains(&p));
        s.updated_at = Timestamp::now();
        tx.put_session(&s).await?;
        Ok(s)
    }
}
