//! Load balancers: the session targets whose members share the copies, each flow to one member.
//!
//! Rules kept here for both faces (`docs/load-balancers.md`):
//! - a member's address must be a fixed IP of one of the project's ports, as an `eni` target
//!   must be the project's port: a tenant aims copies only at addresses it owns;
//! - one member per (address, port) in a load balancer;
//! - a load balancer in use by a session cannot be deleted;
//! - setting or removing the health monitor resets the members' `operating_status`
//!   (`INITIAL` with a monitor, `NO_MONITOR` without); only the health checker changes it
//!   otherwise ([`Service::record_member_health`]).

use std::collections::HashMap;
use std::net::IpAddr;

use tmirror_model::*;
use tmirror_store::{ListQuery, LoadBalancerField, Page, WriteTx};

use super::{quota, Service, ServiceResult, Writer};

/// A new load balancer.
#[derive(Clone, Debug, Default)]
pub struct LoadBalancerCreate {
    pub name: String,
    pub description: String,
    pub vip_address: Option<IpAddr>,
    pub admin_state_up: bool,
    /// What the face keeps without acting on it (a JSON object).
    pub kept: serde_json::Value,
}

/// Changes to a load balancer; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct LoadBalancerUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub kept: Option<serde_json::Value>,
}

/// How a member is named: by address, or by a port of the project (its first fixed IP).
#[derive(Clone, Debug)]
pub enum MemberEndpoint {
    Address(IpAddr),
    Port(PortId),
}

/// A new member.
#[derive(Clone, Debug)]
pub struct MemberCreate {
    pub name: String,
    pub endpoint: MemberEndpoint,
    /// `None`: 4789.
    pub port: Option<u16>,
    pub weight: MemberWeight,
    pub admin_state_up: bool,
    pub subnet_id: String,
}

/// Changes to a member; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct MemberUpdate {
    pub name: Option<String>,
    pub weight: Option<MemberWeight>,
    pub admin_state_up: Option<bool>,
}

/// The most members one batch call adds or removes (ELB's bound for `batch-add`).
pub const MAX_BATCH: usize = 200;

async fn load(
    tx: &mut dyn WriteTx,
    project: &ProjectId,
    id: LoadBalancerId,
) -> ServiceResult<LoadBalancer> {
    Ok(tx
        .get_load_balancer(project, id)
        .await?
        .ok_or_else(|| DomainError::not_found(ResourceKind::LoadBalancer, id))?)
}

/// The address of a member named by `endpoint`, checked to be one of `project`'s.
async fn member_address(
    tx: &mut dyn WriteTx,
    project: &ProjectId,
    endpoint: &MemberEndpoint,
) -> ServiceResult<(IpAddr, Option<PortId>)> {
    match *endpoint {
        MemberEndpoint::Port(id) => {
            let port = tx
                .get_port(project, id)
                .await?
                .ok_or_else(|| DomainError::not_found(ResourceKind::Port, id))?;
            let ip = port
                .primary_ip()
                .ok_or_else(|| DomainError::TargetWithoutAddress(id.to_string()))?;
            Ok((ip, Some(id)))
        }
        MemberEndpoint::Address(ip) => {
            let owned = tx
                .ports_with_ip(&ip.to_string())
                .await?
                .into_iter()
                .any(|p| &p.project_id == project);
            if !owned {
                return Err(DomainError::invalid(
                    Field::MemberAddress,
                    format!(
                        "{ip} is not a fixed IP of a port of this project: copies go only to \
                         addresses the project owns; create the collector's port first"
                    ),
                )
                .into());
            }
            Ok((ip, None))
        }
    }
}

/// Whether `member` is `port` (added as that ENI, or at one of its addresses): a member that
/// is also a source of a session aimed at its load balancer would have the copies it receives
/// mirrored again, and again.
pub(super) fn member_is_port(member: &LbMember, port: &Port) -> bool {
    member.port_id == Some(port.id)
        || port
            .fixed_ips
            .iter()
            .any(|f| f.ip_address == member.address)
}

/// Refuses a new member at `address` (added as `port_id`) of `lb` when it is a source of a
/// session aimed at `lb` ([`member_is_port`]).
async fn check_member_not_source(
    tx: &mut dyn WriteTx,
    project: &ProjectId,
    lb: LoadBalancerId,
    address: IpAddr,
    port_id: Option<PortId>,
) -> ServiceResult<()> {
    let probe = LbMember {
        id: MemberId::new(),
        name: String::new(),
        address,
        port: DEFAULT_MEMBER_PORT,
        weight: MemberWeight::DEFAULT,
        admin_state_up: true,
        operating_status: MemberHealth::NoMonitor,
        port_id,
        subnet_id: String::new(),
    };
    for sid in tx.sessions_with_load_balancer(lb).await? {
        let Some(session) = tx.get_session(project, sid).await? else {
            continue;
        };
        for &source in session.sources.ports() {
            let Some(port) = tx.get_port(project, source).await? else {
                continue;
            };
            if member_is_port(&probe, &port) {
                return Err(DomainError::SourceIsTarget(source.to_string()).into());
            }
        }
    }
    Ok(())
}

/// The health a member starts with under `monitor`.
fn initial_health(monitor: Option<&HealthMonitor>) -> MemberHealth {
    match monitor {
        Some(m) if m.admin_state_up => MemberHealth::Initial,
        _ => MemberHealth::NoMonitor,
    }
}

impl Service {
    pub async fn load_balancer_show(
        &self,
        project: &ProjectId,
        id: LoadBalancerId,
    ) -> ServiceResult<LoadBalancer> {
        let mut r = self.store.read().await?;
        r.get_load_balancer(project, id)
            .await?
            .ok_or_else(|| DomainError::not_found(ResourceKind::LoadBalancer, id).into())
    }

    /// A project's load balancers in creation order, whole (few: see the quota): what the
    /// listener and pool lists page in the face ([`Service::load_balancer_page`] pages in SQL).
    pub async fn load_balancer_list(
        &self,
        project: &ProjectId,
    ) -> ServiceResult<Vec<LoadBalancer>> {
        let mut r = self.store.read().await?;
        Ok(r.load_balancers(project).await?)
    }

    /// A page of a project's load balancers, paged and filtered by the store (backwards when
    /// `reverse`).
    pub async fn load_balancer_page(
        &self,
        project: &ProjectId,
        q: &ListQuery<LoadBalancerField>,
        reverse: bool,
    ) -> ServiceResult<Page<LoadBalancer>> {
        let mut r = self.store.read().await?;
        Ok(r.list_load_balancers(project, q, reverse).await?)
    }

    /// For each of `sessions` aimed at a load balancer that cannot share copies as asked (no
    /// member takes flows, or none is healthy), why: the faces show it in the session's state,
    /// so a session never fails silently (`docs/load-balancers.md`).
    pub async fn session_targets_degraded(
        &self,
        project: &ProjectId,
        sessions: &[Session],
    ) -> ServiceResult<HashMap<SessionId, LbDegraded>> {
        if !sessions
            .iter()
            .any(|s| matches!(s.target, SessionTarget::LoadBalancer(_)))
        {
            return Ok(HashMap::new());
        }
        // Few per project (see the quota): one read answers a whole page.
        let lbs = self.load_balancer_list(project).await?;
        Ok(sessions
            .iter()
            .filter_map(|s| match s.target {
                SessionTarget::LoadBalancer(id) => lbs
                    .iter()
                    .find(|lb| lb.id == id)?
                    .degraded()
                    .map(|d| (s.id, d)),
                SessionTarget::Port(_) => None,
            })
            .collect())
    }

    /// Records the health checker's verdicts: `changes` of members of `lb` (of any project).
    /// A verdict about a member that has gone meanwhile, or under a monitor that has been
    /// removed, is dropped: the checker works from a snapshot.
    pub async fn record_member_health(
        &self,
        project: &ProjectId,
        lb: LoadBalancerId,
        changes: &[(MemberId, MemberHealth)],
    ) -> ServiceResult<()> {
        let project = project.clone();
        let changes = changes.to_vec();
        self.transact(move |tx| {
            let project = project.clone();
            let changes = changes.clone();
            Box::pin(async move {
                let Some(mut current) = tx.get_load_balancer(&project, lb).await? else {
                    return Ok(());
                };
                if current.health_monitor.is_none() {
                    return Ok(());
                }
                let mut changed = false;
                for (id, health) in &changes {
                    if let Some(m) = current.members.iter_mut().find(|m| m.id == *id) {
                        if m.operating_status != *health {
                            m.operating_status = *health;
                            changed = true;
                        }
                    }
                }
                if changed {
                    tx.put_load_balancer(&current).await?;
                }
                Ok(())
            })
        })
        .await
    }
}

/// In the caller's transaction; [`Service`] runs each in one of its own.
impl Writer<'_> {
    /// [`Service::load_balancer_show`], in the caller's transaction.
    pub async fn load_balancer_show(&mut self, id: LoadBalancerId) -> ServiceResult<LoadBalancer> {
        let project = &self.actor.project.clone();
        load(self.tx, project, id).await
    }

    pub async fn load_balancer_create(
        &mut self,
        input: LoadBalancerCreate,
    ) -> ServiceResult<LoadBalancer> {
        let project = &self.actor.project.clone();
        self.check_room(
            project,
            ResourceKind::LoadBalancer,
            Quota::LoadBalancersPerProject,
        )
        .await?;
        let now = Timestamp::now();
        let lb = LoadBalancer {
            id: LoadBalancerId::new(),
            project_id: project.clone(),
            name: input.name,
            description: input.description,
            vip_address: input.vip_address,
            admin_state_up: input.admin_state_up,
            members: Vec::new(),
            health_monitor: None,
            kept: input.kept,
            created_at: now,
            updated_at: now,
        };
        self.tx.put_load_balancer(&lb).await?;
        Ok(lb)
    }

    pub async fn load_balancer_update(
        &mut self,
        id: LoadBalancerId,
        input: LoadBalancerUpdate,
    ) -> ServiceResult<LoadBalancer> {
        let project = &self.actor.project.clone();
        let mut lb = load(self.tx, project, id).await?;
        if let Some(v) = input.name {
            lb.name = v;
        }
        if let Some(v) = input.description {
            lb.description = v;
        }
        if let Some(v) = input.admin_state_up {
            lb.admin_state_up = v;
        }
        if let Some(v) = input.kept {
            lb.kept = v;
        }
        lb.updated_at = Timestamp::now();
        self.tx.put_load_balancer(&lb).await?;
        Ok(lb)
    }

    /// Refused while a session targets it.
    pub async fn load_balancer_delete(&mut self, id: LoadBalancerId) -> ServiceResult<()> {
        let project = &self.actor.project.clone();
        let tx = &mut *self.tx;
        load(tx, project, id).await?;
        if let Some(by) = tx.sessions_with_load_balancer(id).await?.first() {
            return Err(DomainError::InUse {
                kind: ResourceKind::LoadBalancer,
                id: id.to_string(),
                by: by.to_string(),
            }
            .into());
        }
        tx.delete_load_balancer(project, id).await?;
        Ok(())
    }

    pub async fn member_add(
        &mut self,
        lb: LoadBalancerId,
        input: MemberCreate,
    ) -> ServiceResult<(LoadBalancer, MemberId)> {
        let project = &self.actor.project.clone();
        let limit = self.quota(project, Quota::MembersPerLoadBalancer).await?;
        let tx = &mut *self.tx;
        let mut current = load(tx, project, lb).await?;
        if current.members.len() as u32 >= limit {
            return Err(quota(Quota::MembersPerLoadBalancer, limit));
        }
        let (address, port_id) = member_address(tx, project, &input.endpoint).await?;
        check_member_not_source(tx, project, lb, address, port_id).await?;
        let port = input.port.unwrap_or(DEFAULT_MEMBER_PORT);
        if port == 0 {
            return Err(DomainError::invalid(
                Field::MemberPort,
                "the member's port must be between 1 and 65535",
            )
            .into());
        }
        if let Some(other) = current
            .members
            .iter()
            .find(|m| m.address == address && m.port == port)
        {
            return Err(DomainError::Conflict(format!(
                "{address} port {port} is already member {} of load balancer {lb}",
                other.id
            ))
            .into());
        }
        let member = LbMember {
            id: MemberId::new(),
            name: input.name,
            address,
            port,
            weight: input.weight,
            admin_state_up: input.admin_state_up,
            operating_status: initial_health(current.health_monitor.as_ref()),
            port_id,
            subnet_id: input.subnet_id,
        };
        let id = member.id;
        current.members.push(member);
        current.updated_at = Timestamp::now();
        tx.put_load_balancer(&current).await?;
        Ok((current, id))
    }

    /// Adds every one of `members`, or none: one that [`Writer::member_add`] refuses fails the
    /// whole call (and the caller's transaction with it). Each is checked against the members
    /// before it, so one (address, port) twice in a batch is a conflict.
    pub async fn members_add(
        &mut self,
        lb: LoadBalancerId,
        members: Vec<MemberCreate>,
    ) -> ServiceResult<(LoadBalancer, Vec<MemberId>)> {
        if members.is_empty() || members.len() > MAX_BATCH {
            return Err(DomainError::invalid(
                Field::Members,
                format!(
                    "a batch holds 1 to {MAX_BATCH} members, not {}",
                    members.len()
                ),
            )
            .into());
        }
        let mut ids = Vec::with_capacity(members.len());
        let mut current = None;
        for input in members {
            let (after, id) = self.member_add(lb, input).await?;
            ids.push(id);
            current = Some(after);
        }
        Ok((current.expect("at least one"), ids))
    }

    /// Removes every one of `members`, or none: an id that is not a member (or is named twice)
    /// fails the whole call.
    pub async fn members_remove(
        &mut self,
        lb: LoadBalancerId,
        members: Vec<MemberId>,
    ) -> ServiceResult<LoadBalancer> {
        if members.is_empty() || members.len() > MAX_BATCH {
            return Err(DomainError::invalid(
                Field::Members,
                format!(
                    "a batch holds 1 to {MAX_BATCH} members, not {}",
                    members.len()
                ),
            )
            .into());
        }
        let mut current = None;
        for id in members {
            current = Some(self.member_remove(lb, id).await?);
        }
        Ok(current.expect("at least one"))
    }

    pub async fn member_update(
        &mut self,
        lb: LoadBalancerId,
        member: MemberId,
        input: MemberUpdate,
    ) -> ServiceResult<LoadBalancer> {
        let project = &self.actor.project.clone();
        let tx = &mut *self.tx;
        let mut current = load(tx, project, lb).await?;
        let m = current
            .members
            .iter_mut()
            .find(|m| m.id == member)
            .ok_or_else(|| DomainError::not_found(ResourceKind::Member, member))?;
        if let Some(v) = input.name {
            m.name = v;
        }
        if let Some(v) = input.weight {
            m.weight = v;
        }
        if let Some(v) = input.admin_state_up {
            m.admin_state_up = v;
        }
        current.updated_at = Timestamp::now();
        tx.put_load_balancer(&current).await?;
        Ok(current)
    }

    pub async fn member_remove(
        &mut self,
        lb: LoadBalancerId,
        member: MemberId,
    ) -> ServiceResult<LoadBalancer> {
        let project = &self.actor.project.clone();
        let tx = &mut *self.tx;
        let mut current = load(tx, project, lb).await?;
        let before = current.members.len();
        current.members.retain(|m| m.id != member);
        if current.members.len() == before {
            return Err(DomainError::not_found(ResourceKind::Member, member).into());
        }
        current.updated_at = Timestamp::now();
        tx.put_load_balancer(&current).await?;
        Ok(current)
    }

    /// Sets (`Some`) or removes (`None`) the health monitor; the members' health starts over.
    pub async fn health_monitor_set(
        &mut self,
        lb: LoadBalancerId,
        monitor: Option<HealthMonitor>,
    ) -> ServiceResult<LoadBalancer> {
        let project = &self.actor.project.clone();
        let tx = &mut *self.tx;
        let mut current = load(tx, project, lb).await?;
        if let Some(m) = &monitor {
            if m.timeout.get() > m.interval.get() {
                return Err(DomainError::invalid(
                    Field::HealthCheck,
                    format!(
                        "the timeout ({} s) must not be longer than the interval ({} s)",
                        m.timeout.get(),
                        m.interval.get()
                    ),
                )
                .into());
            }
        }
        let health = initial_health(monitor.as_ref());
        for m in &mut current.members {
            m.operating_status = health;
        }
        current.health_monitor = monitor;
        current.updated_at = Timestamp::now();
        tx.put_load_balancer(&current).await?;
        Ok(current)
    }
}
