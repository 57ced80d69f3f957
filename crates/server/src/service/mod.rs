//! The service layer: one set of operations and business rules for both faces.
//!
//! Faces parse their wire formats into the inputs defined here and render the resources they
//! get back. Every change runs inside one store write transaction, checks first, then writes,
//! so a refused request changes nothing and the rules hold under concurrency (see the store's
//! documentation); a transaction that loses a race is run again.
//!
//! The write operations are methods of [`Writer`], which works in a transaction its caller
//! holds: a face that commits several operations and records of its own together (the
//! Alibaba face: a create with its tags and its ClientToken answer, or a `DryRun` rolled back
//! after every check) opens one with [`Service::begin`]. The [`Service`] methods of the same
//! names run each operation in a transaction of its own, retried when it loses a race.

pub mod agents;
pub mod delivery;
pub mod eips;
mod filters;
pub mod fleet;
pub mod health;
mod lb_parts;
mod load_balancers;
mod nonces;
pub mod overview;
mod ports;
mod records;
mod rules;
mod sessions;
pub mod states;
pub mod tenancy;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tmirror_model::*;
use tmirror_store::{Store, StoreError, WriteTx};

pub use filters::{FilterCreate, FilterUpdate};
pub use lb_parts::{
    kept_doc, part_doc, with_kept_doc, DefaultPool, ListenerCreate, ListenerUpdate, PoolCreate,
};
pub use load_balancers::{
    LoadBalancerCreate, LoadBalancerUpdate, MemberCreate, MemberEndpoint, MemberUpdate,
};
pub use ports::{PortCreate, PortUpdate};
pub use rules::{RuleCreate, RuleUpdate};
pub use sessions::{SessionCreate, SessionUpdate, TargetChange};

/// Configurable limits, with the documented defaults (`docs/decisions.md`). The service reads
/// them through [`Writer::quota`] only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub sources_per_session: u32,
    pub sessions_per_source: u32,
    pub rules_per_direction: u32,
    /// Traffic mirror sessions one project may hold.
    pub sessions_per_project: u32,
    /// Traffic mirror filters one project may hold.
    pub filters_per_project: u32,
    /// Ports one project may hold.
    pub ports_per_project: u32,
    /// Load balancers one project may hold.
    pub load_balancers_per_project: u32,
    /// Members one load balancer may hold.
    pub members_per_load_balancer: u32,
    /// Elastic IPs one project may hold.
    pub eips_per_project: u32,
}

impl Default for Limits {
    /// Per project: 100 filters, Alibaba's per-region quota; 100 sessions, far below the
    /// clouds' per-region 20,000 (Alibaba) or 10,000 (AWS), since one tmirror serves a few
    /// projects from one database; 1,000 ports (no cloud here documents one). They fit
    /// together: 100 sessions of 10 sources mirror at most 1,000 ports, a filter each.
    /// 20 load balancers of 100 members: a collector fleet per team is far below either
    /// (Huawei allows 200 members added at once; Alibaba 20 per call).
    fn default() -> Self {
        Limits {
            sources_per_session: 10,
            sessions_per_source: 3,
            rules_per_direction: 10,
            sessions_per_project: 100,
            filters_per_project: 100,
            ports_per_project: 1000,
            load_balancers_per_project: 20,
            members_per_load_balancer: 100,
            eips_per_project: 100,
        }
    }
}

impl Limits {
    /// The configured value of `quota`.
    pub fn get(&self, quota: Quota) -> u32 {
        match quota {
            Quota::SourcesPerSession => self.sources_per_session,
            Quota::SessionsPerSource => self.sessions_per_source,
            Quota::RulesPerDirection => self.rules_per_direction,
            Quota::SessionsPerProject => self.sessions_per_project,
            Quota::FiltersPerProject => self.filters_per_project,
            Quota::PortsPerProject => self.ports_per_project,
            Quota::LoadBalancersPerProject => self.load_balancers_per_project,
            Quota::MembersPerLoadBalancer => self.members_per_load_balancer,
            Quota::EipsPerProject => self.eips_per_project,
        }
    }
}

/// Why an operation failed: the user's fault (a domain error), a race to try again, or ours.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The write lost its race with concurrent writers (or waited too long for the write lock)
    /// every time it was run; nothing was changed and the client may send it again. Every face
    /// answers it as its own retryable "service unavailable" (HTTP 503, `Retry-After`).
    #[error("the write conflicted with concurrent ones and was not applied")]
    Busy,
    #[error("storage failure")]
    Store(StoreError),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            // A marker that names nothing is the caller's mistake, not a storage failure.
            StoreError::UnknownMarker(m) => ServiceError::Domain(DomainError::invalid(
                Field::Marker,
                format!(
                    "{m:?} is not the id of a resource in this list; start again without a marker"
                ),
            )),
            StoreError::Retry => ServiceError::Busy,
            other => ServiceError::Store(other),
        }
    }
}

/// Result alias of the service layer.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// How many times a transaction that lost a race is run at most.
const ATTEMPTS: usize = 8;

/// How long a write is run again after losing races: past it the client gets the retryable
/// answer instead of waiting on (the SDKs time out after 10 s).
const RETRY_WINDOW: Duration = Duration::from_secs(4);

/// The operations.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    limits: Limits,
    /// The agents' long-polls, documents and sightings (in memory).
    fleet: Arc<fleet::Fleet>,
    /// The queue of the Alibaba signature nonces' group commits.
    nonces: Arc<nonces::NonceBatches>,
    /// Projects seen to have opened the Alibaba traffic mirror service. There is no closing
    /// it (a project's record goes only with the project), so a yes read once stays true and
    /// Alibaba requests need not read it again.
    aliyun_opened: Arc<std::sync::Mutex<std::collections::HashSet<ProjectId>>>,
    /// Whether unbound ports are captured nowhere rather than by interface name
    /// (`ServeConfig::unbound_ports`).
    unbound_nowhere: bool,
}

/// The write operations, in a transaction the caller holds (see the module documentation).
pub struct Writer<'t> {
    tx: &'t mut dyn WriteTx,
    limits: Limits,
    /// Who is writing: a role that may write, in its project.
    actor: Actor,
}

/// Each write operation of [`Writer`] as a [`Service`] method of the same name that runs it in
/// a transaction of its own ([`Service::transact`]: retried when it loses a race).
macro_rules! in_own_transaction {
    ($( fn $name:ident($($arg:ident: $ty:ty),*) -> $out:ty; )*) => {
        impl Service {
            $(
                #[doc = concat!("[`Writer::", stringify!($name), "`] in a transaction of its own.")]
                pub async fn $name(&self, actor: &Actor, $($arg: $ty),*) -> ServiceResult<$out> {
                    self.transact(|tx| {
                        let writer = self.writer(tx, actor);
                        $(let $arg = $arg.clone();)*
                        Box::pin(async move { writer?.$name($($arg),*).await })
                    })
                    .await
                }
            )*
        }
    };
}

in_own_transaction! {
    fn port_create(input: PortCreate) -> Port;
    fn port_update(id: PortId, input: PortUpdate) -> Port;
    fn port_delete(id: PortId) -> ();
    fn filter_create(input: FilterCreate) -> FilterWithRules;
    fn filter_update(id: FilterId, input: FilterUpdate) -> FilterWithRules;
    fn filter_delete(id: FilterId) -> ();
    fn rule_create(input: RuleCreate) -> FilterRule;
    fn rule_update(id: RuleId, input: RuleUpdate) -> FilterRule;
    fn rule_delete(id: RuleId) -> ();
    fn session_create(input: SessionCreate) -> Session;
    fn session_update(id: SessionId, input: SessionUpdate) -> Session;
    fn session_delete(id: SessionId) -> ();
    fn session_add_sources(id: SessionId, add: Vec<uuid::Uuid>) -> Session;
    fn session_remove_sources(id: SessionId, remove: Vec<uuid::Uuid>) -> Session;
    fn load_balancer_create(input: LoadBalancerCreate) -> LoadBalancer;
    fn load_balancer_update(id: LoadBalancerId, input: LoadBalancerUpdate) -> LoadBalancer;
    fn load_balancer_delete(id: LoadBalancerId) -> ();
    fn member_add(lb: LoadBalancerId, input: MemberCreate) -> (LoadBalancer, MemberId);
    fn members_add(lb: LoadBalancerId, members: Vec<MemberCreate>) -> (LoadBalancer, Vec<MemberId>);
    fn members_remove(lb: LoadBalancerId, members: Vec<MemberId>) -> LoadBalancer;
    fn member_update(lb: LoadBalancerId, member: MemberId, input: MemberUpdate) -> LoadBalancer;
    fn member_remove(lb: LoadBalancerId, member: MemberId) -> LoadBalancer;
    fn health_monitor_set(lb: LoadBalancerId, monitor: Option<HealthMonitor>) -> LoadBalancer;
    fn listener_create(lb: LoadBalancerId, input: ListenerCreate) -> LoadBalancer;
    fn listener_update(lb: LoadBalancerId, input: ListenerUpdate) -> LoadBalancer;
    fn listener_delete(lb: LoadBalancerId) -> LoadBalancer;
    fn pool_create(input: PoolCreate) -> LoadBalancer;
    fn pool_delete(lb: LoadBalancerId) -> LoadBalancer;
    fn monitor_create(lb: LoadBalancerId, monitor: HealthMonitor, kept: serde_json::Map<String, serde_json::Value>) -> LoadBalancer;
    fn eip_create(input: eips::EipCreate) -> Eip;
    fn eip_update(id: EipId, input: eips::EipUpdate) -> Eip;
    fn eip_delete(id: EipId) -> ();
}

impl Service {
    /// The service over `store`; the agents' sightings are written down every `agent_flush`.
    pub fn new(store: Arc<dyn Store>, limits: Limits, agent_flush: Duration) -> Self {
        Service {
            fleet: fleet::Fleet::start(store.clone(), agent_flush),
            nonces: Arc::new(nonces::NonceBatches::start(store.clone())),
            aliyun_opened: Default::default(),
            store,
            limits,
            unbound_nowhere: false,
        }
    }

    /// Where ports bound to no host are captured (by interface name unless said otherwise).
    pub fn with_unbound_ports(mut self, unbound: crate::config::UnboundPorts) -> Self {
        self.unbound_nowhere = unbound == crate::config::UnboundPorts::Nowhere;
        self
    }

    /// Writes the agents' sightings down now (at shutdown).
    pub async fn flush_agents(&self) -> Result<(), StoreError> {
        self.fleet.flush().await
    }

    /// Opens a write transaction for a [`Writer`]; dropping it uncommitted rolls back.
    pub async fn begin(&self) -> ServiceResult<Box<dyn WriteTx>> {
        Ok(self.store.write().await?)
    }

    /// The write operations of `actor` in `tx`, a transaction from [`Service::begin`]; refused
    /// for a role that may not write (a reader: `DryRun` and every other write).
    pub fn writer<'t>(&self, tx: &'t mut dyn WriteTx, actor: &Actor) -> ServiceResult<Writer<'t>> {
        Service::check_writes(actor)?;
        Ok(Writer {
            tx,
            limits: self.limits,
            actor: actor.clone(),
        })
    }

    /// Refuses a role that may not change resources (a reader).
    pub fn check_writes(actor: &Actor) -> ServiceResult<()> {
        if actor.role.may_write() {
            return Ok(());
        }
        Err(DomainError::Forbidden(format!(
            "the {} role may read this project's resources but not change them",
            actor.role
        ))
        .into())
    }

    /// Whether a write that lost its race `attempt` times since `started` is run again (by
    /// [`Service::transact`], and by a face that runs its own transactions).
    pub fn retry_again(attempt: usize, started: Instant) -> bool {
        attempt < ATTEMPTS && started.elapsed() < RETRY_WINDOW
    }

    /// Whether the database answers (`/healthz`).
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.store.read().await.map(drop)
    }

    /// The latest committed revision, updated after every commit on any server (the agents'
    /// long-polls wait on it).
    pub fn revisions(&self) -> tokio::sync::watch::Receiver<u64> {
        self.store.revisions()
    }

    /// The configured limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs `f` in a write transaction and commits; runs it again when the transaction lost a
    /// race with a concurrent one ([`ServiceError::Busy`] once [`ATTEMPTS`] or
    /// [`RETRY_WINDOW`] are used up). Constraint violations that the checks in `f` did not
    /// catch (because a concurrent writer got there first) become the matching domain error.
    async fn transact<T, F>(&self, mut f: F) -> ServiceResult<T>
    where
        T: Send,
        F: for<'a> FnMut(&'a mut dyn WriteTx) -> BoxFuture<'a, ServiceResult<T>> + Send,
    {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = match self.store.write().await {
                Ok(mut tx) => match f(tx.as_mut()).await {
                    Ok(value) => tx.commit().await.map(|_| value).map_err(ServiceError::from),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e.into()),
            };
            match outcome {
                Err(ServiceError::Busy) if Service::retry_again(attempt, started) => continue,
                Err(ServiceError::Store(e)) => return Err(constraint_to_domain(e)),
                other => return other,
            }
        }
    }
}

/// A constraint the database enforced behind the service's own checks.
fn constraint_to_domain(e: StoreError) -> ServiceError {
    match e {
        StoreError::Unique("sessions_priority") => ServiceError::Domain(DomainError::Conflict(
            "the priority is already used by another traffic mirror session of this project".into(),
        )),
        StoreError::Unique("rules_priority") => ServiceError::Domain(DomainError::Conflict(
            "the priority is already used by another rule of this filter and direction".into(),
        )),
        StoreError::Unique("port_address") => ServiceError::Domain(DomainError::Conflict(
            "the IP address is already in use; choose another address".into(),
        )),
        StoreError::ForeignKey => ServiceError::Domain(DomainError::Conflict(
            "a referenced resource was deleted or is still in use by a concurrent request; retry"
                .into(),
        )),
        other => ServiceError::Store(other),
    }
}

/// A quota error.
pub(crate) fn quota(quota: Quota, limit: u32) -> ServiceError {
    DomainError::QuotaExceeded { quota, limit }.into()
}

impl Writer<'_> {
    /// The value of `quota` for `project`: every quota check of the service takes its limit
    /// from here, in the transaction of the change: the project's override set by the
    /// operator (sessions, filters, ports), or the configured default ([`Limits`]).
    pub async fn quota(&mut self, project: &ProjectId, quota: Quota) -> ServiceResult<u32> {
        let overrides = match quota {
            Quota::SessionsPerProject | Quota::FiltersPerProject | Quota::PortsPerProject => self
                .tx
                .project(project)
                .await?
                .map(|p| p.quotas)
                .unwrap_or_default(),
            _ => QuotaOverrides::default(),
        };
        let set = match quota {
            Quota::SessionsPerProject => overrides.sessions,
            Quota::FiltersPerProject => overrides.filters,
            Quota::PortsPerProject => overrides.ports,
            _ => None,
        };
        Ok(set.unwrap_or_else(|| self.limits.get(quota)))
    }

    /// Refuses to add a resource of `kind` to `project` when it already holds as many as
    /// `quota` allows. Called in the creating transaction before anything is written: writers
    /// are serialised, so two creates cannot both take the last slot.
    async fn check_room(
        &mut self,
        project: &ProjectId,
        kind: ResourceKind,
        which: Quota,
    ) -> ServiceResult<()> {
        let limit = self.quota(project, which).await?;
        if self.tx.count_in_project(project, kind).await? >= limit {
            return Err(quota(which, limit));
        }
        Ok(())
    }
}
