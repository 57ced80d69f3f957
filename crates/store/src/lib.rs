//! Persistence for tmirror's control plane.
//!
//! The [`Store`] trait is what the service layer talks to. Reads go through [`Reads`]; every
//! change happens in a [`WriteTx`], a serialisable transaction that bumps one global,
//! project-independent revision number when it commits. Watchers (the agent long-poll, the
//! asynchronous states of the Alibaba face) follow that number through [`Store::revisions`].
//!
//! The business rules live in the service layer and run *inside* a write transaction, so they
//! hold under concurrency on every back-end: SQLite serialises writers (`BEGIN IMMEDIATE`),
//! PostgreSQL runs them `SERIALIZABLE` and the caller retries on [`StoreError::Retry`].
//! Unique and foreign-key constraints back the most important rules up.

#![forbid(unsafe_code)]

mod connections;
mod error;
pub mod postgres;
mod query;
mod rows;
mod secrets;
mod shared;
pub mod sqlite;
pub mod testdb;

use async_trait::async_trait;
use tokio::sync::watch;

use tmirror_model::{
    Direction, Eip, EipId, EipPool, Filter, FilterId, FilterRule, Host, LoadBalancer,
    LoadBalancerId, Network, Port, PortId, Project, ProjectId, ResourceKind, Role, RuleId,
    RulePriority, Session, SessionId, SessionPriority,
};

pub use error::{StoreError, StoreResult};
pub use query::{
    tag_pair, Condition, FilterField, ListQuery, LoadBalancerField, Page, PortField, RuleField,
    SessionField, Value,
};
pub use secrets::{MasterKey, MasterKeyError, SecretSealer, MASTER_KEY_LEN};

/// An access key pair; each belongs to exactly one project and has one role.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key: String,
    pub secret_key: String,
    pub project_id: ProjectId,
    pub role: Role,
    /// A disabled credential is refused like an unknown one.
    pub enabled: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of a recent signed request (written at most once a minute).
    pub last_used_at: Option<i64>,
}

impl std::fmt::Debug for Credential {
    // The secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("project_id", &self.project_id)
            .field("role", &self.role)
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// How many resources a project holds, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProjectUsage {
    pub ports: u64,
    pub filters: u64,
    pub sessions: u64,
    pub credentials: u64,
    pub networks: u64,
    pub load_balancers: u64,
    /// Elastic IPs allocated to the project (a project holding one cannot be deleted).
    pub eips: u64,
}

impl ProjectUsage {
    /// Whether the project holds nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == ProjectUsage::default()
    }
}

/// Read operations, available outside and inside a transaction.
#[async_trait]
pub trait Reads: Send + AliyunReads + TenancyReads + LoadBalancerReads + EipReads {
    /// How many resources of `kind` `project` holds (the per-project quotas).
    async fn count_in_project(
        &mut self,
        project: &ProjectId,
        kind: ResourceKind,
    ) -> StoreResult<u32>;

    async fn get_port(&mut self, project: &ProjectId, id: PortId) -> StoreResult<Option<Port>>;
    /// The ports of `project` among `ids`, in no particular order, each looked up by its id:
    /// unlike a list narrowed by ids, which SQLite serves by walking all the project's ports,
    /// its cost does not grow with the project.
    async fn ports_by_ids(&mut self, project: &ProjectId, ids: &[PortId])
        -> StoreResult<Vec<Port>>;
    async fn list_ports(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<PortField>,
    ) -> StoreResult<Page<Port>>;

    async fn get_filter(
        &mut self,
        project: &ProjectId,
        id: FilterId,
    ) -> StoreResult<Option<Filter>>;
    async fn list_filters(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<FilterField>,
    ) -> StoreResult<Page<Filter>>;
    /// How many filters the whole list `q` has (its marker and page size aside).
    async fn count_filters(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<FilterField>,
    ) -> StoreResult<u64>;

    async fn get_rule(
        &mut self,
        project: &ProjectId,
        id: RuleId,
    ) -> StoreResult<Option<FilterRule>>;
    async fn list_rules(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<RuleField>,
    ) -> StoreResult<Page<FilterRule>>;
    /// Every rule of the given filters, ordered by filter, direction and priority.
    async fn rules_of_filters(&mut self, filters: &[FilterId]) -> StoreResult<Vec<FilterRule>>;
    /// The rule of `filter` and `direction` that has `priority`, if any.
    async fn rule_with_priority(
        &mut self,
        filter: FilterId,
        direction: Direction,
        priority: RulePriority,
    ) -> StoreResult<Option<RuleId>>;
    async fn count_rules(&mut self, filter: FilterId, direction: Direction) -> StoreResult<u32>;

    async fn get_session(
        &mut self,
        project: &ProjectId,
        id: SessionId,
    ) -> StoreResult<Option<Session>>;
    async fn list_sessions(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<SessionField>,
    ) -> StoreResult<Page<Session>>;
    /// How many sessions the whole list `q` has (its marker and page size aside).
    async fn count_sessions(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<SessionField>,
    ) -> StoreResult<u64>;
    /// The session of `project` that has `priority`, if any.
    async fn session_with_priority(
        &mut self,
        project: &ProjectId,
        priority: SessionPriority,
    ) -> StoreResult<Option<SessionId>>;
    /// Sessions that have `port` as a source.
    async fn sessions_with_source(&mut self, port: PortId) -> StoreResult<Vec<SessionId>>;
    /// Sessions that have `port` as their target.
    async fn sessions_with_target(&mut self, port: PortId) -> StoreResult<Vec<SessionId>>;
    /// Sessions that use `filter`.
    async fn sessions_with_filter(&mut self, filter: FilterId) -> StoreResult<Vec<SessionId>>;
    /// The records of the agents of `hosts` and of those that reported one of `interfaces`
    /// (agent bookkeeping, readable in a transaction for the asynchronous states).
    async fn agents_concerned(
        &mut self,
        hosts: &[String],
        interfaces: &[String],
    ) -> StoreResult<Vec<AgentRecord>>;
    /// Each (filter, host) pair of `project` where a source of a session using one of
    /// `filters` (canonical ids) is captured: the host a source port is bound to, the hosts
    /// whose agents reported the interface of one bound to none (unless
    /// `unbound_by_interface` is false: such a port is then captured nowhere), the gateway
    /// host of a source EIP's pool. Distinct pairs, whatever the number of sessions behind
    /// them.
    async fn filter_hosts(
        &mut self,
        project: &ProjectId,
        filters: &[String],
        unbound_by_interface: bool,
    ) -> StoreResult<Vec<(String, String)>>;
}

/// A serialisable read-write transaction. Dropping it without [`WriteTx::commit`] rolls back.

#[async_trait]
pub trait WriteTx: Reads + AliyunWrites + TenancyWrites + LoadBalancerWrites + EipWrites {
    /// Inserts or replaces (by id) a port.
    async fn put_port(&mut self, port: &Port) -> StoreResult<()>;
    async fn delete_port(&mut self, project: &ProjectId, id: PortId) -> StoreResult<bool>;
    /// Inserts or replaces (by id) a filter.
    async fn put_filter(&mut self, filter: &Filter) -> StoreResult<()>;
    /// Deletes a filter and all its rules.
    async fn delete_filter(&mut self, project: &ProjectId, id: FilterId) -> StoreResult<bool>;
    /// Inserts or replaces (by id) a rule.
    async fn put_rule(&mut self, rule: &FilterRule) -> StoreResult<()>;
    async fn delete_rule(&mut self, project: &ProjectId, id: RuleId) -> StoreResult<bool>;
    /// Inserts or replaces (by id) a session, with its sources in order.
    async fn put_session(&mut self, session: &Session) -> StoreResult<()>;
    async fn delete_session(&mut self, project: &ProjectId, id: SessionId) -> StoreResult<bool>;
    /// Records (inserts or updates) an agent whose interfaces changed, as a change of its own
    /// (scope `agent:<host>`): the interfaces are what the host's document is computed with,
    /// and servers keep them in memory instead of reading them on every poll.
    async fn put_agent_interfaces(&mut self, agent: &AgentRecord) -> StoreResult<()>;
    /// Commits; returns the revision the changes were made at (unchanged if nothing was written).
    async fn commit(self: Box<Self>) -> StoreResult<u64>;
}

/// Reads of projects, credentials, hosts and networks (part of [`Reads`]).
#[async_trait]
pub trait TenancyReads: Send {
    /// The credential with this access key, enabled or not.
    async fn credential(&mut self, access_key: &str) -> StoreResult<Option<Credential>>;
    /// The first operator credential (created at first start).
    async fn operator_credential(&mut self) -> StoreResult<Option<Credential>>;
    /// The credentials of `project` (of every project for `None`), oldest first.
    async fn credentials(&mut self, project: Option<&ProjectId>) -> StoreResult<Vec<Credential>>;
    /// The revision of the last change to credentials, hosts or projects.
    async fn auth_revision(&mut self) -> StoreResult<u64>;
    async fn project(&mut self, id: &ProjectId) -> StoreResult<Option<Project>>;
    /// Every project, oldest first.
    async fn projects(&mut self) -> StoreResult<Vec<Project>>;
    async fn project_usage(&mut self, id: &ProjectId) -> StoreResult<ProjectUsage>;
    async fn host(&mut self, host_id: &str) -> StoreResult<Option<Host>>;
    async fn host_by_token_hash(&mut self, token_hash: &str) -> StoreResult<Option<Host>>;
    /// Every enrolled host, by id.
    async fn hosts(&mut self) -> StoreResult<Vec<Host>>;
    async fn network(&mut self, id: &str) -> StoreResult<Option<Network>>;
    /// Every network, oldest first.
    async fn networks(&mut self) -> StoreResult<Vec<Network>>;
    /// The ports of every project in `network_id`.
    async fn ports_in_network(&mut self, network_id: &str) -> StoreResult<Vec<Port>>;
    /// The port with this id, in whichever project (the operator binds any project's port).
    async fn any_port(&mut self, id: PortId) -> StoreResult<Option<Port>>;
    /// The ports of every project that have `ip` (canonical text) among their fixed IPs.
    async fn ports_with_ip(&mut self, ip: &str) -> StoreResult<Vec<Port>>;
    /// The ports of every project whose binding profile names the interface `name`.
    async fn ports_with_interface(&mut self, name: &str) -> StoreResult<Vec<Port>>;
}

/// Reads of elastic IPs and their pools (part of [`Reads`]).
#[async_trait]
pub trait EipReads: Send {
    async fn eip_pool(&mut self, id: &str) -> StoreResult<Option<EipPool>>;
    /// Every pool, oldest first.
    async fn eip_pools(&mut self) -> StoreResult<Vec<EipPool>>;
    async fn get_eip(&mut self, project: &ProjectId, id: EipId) -> StoreResult<Option<Eip>>;
    /// The EIPs of `project`, oldest first.
    async fn list_eips(&mut self, project: &ProjectId) -> StoreResult<Vec<Eip>>;
    /// The EIPs of every project taken from `pool`.
    async fn eips_in_pool(&mut self, pool: &str) -> StoreResult<Vec<Eip>>;
    /// The EIPs of every project associated with `port`.
    async fn eips_of_port(&mut self, port: PortId) -> StoreResult<Vec<EipId>>;
    /// The sessions with `eip` among their sources.
    async fn sessions_with_eip_source(&mut self, eip: EipId) -> StoreResult<Vec<SessionId>>;
    /// The gateway host of each of `ids` (EIPs of `project`) whose pool has one.
    async fn eip_gateways(
        &mut self,
        project: &ProjectId,
        ids: &[EipId],
    ) -> StoreResult<Vec<(EipId, String)>>;
}

/// Writes of elastic IPs and their pools (part of [`WriteTx`]).
#[async_trait]
pub trait EipWrites: Send {
    /// Inserts or replaces (by id) a pool; the hosts it was and is bound to are woken.
    async fn put_eip_pool(&mut self, pool: &EipPool) -> StoreResult<()>;
    async fn delete_eip_pool(&mut self, id: &str) -> StoreResult<bool>;
    /// Inserts or replaces (by id) an EIP.
    async fn put_eip(&mut self, eip: &Eip) -> StoreResult<()>;
    async fn delete_eip(&mut self, project: &ProjectId, id: EipId) -> StoreResult<bool>;
}

/// Writes of projects, credentials, hosts and networks (part of [`WriteTx`]). Changes to
/// projects, credentials and hosts also move the auth revision.
#[async_trait]
pub trait TenancyWrites: Send {
    /// Inserts or replaces (by id) a project.
    async fn put_project(&mut self, project: &Project) -> StoreResult<()>;
    async fn delete_project(&mut self, id: &ProjectId) -> StoreResult<bool>;
    /// Inserts or replaces (by access key) a credential.
    async fn put_credential(&mut self, credential: &Credential) -> StoreResult<()>;
    async fn delete_credential(&mut self, access_key: &str) -> StoreResult<bool>;
    /// Inserts or replaces (by id) a host.
    async fn put_host(&mut self, host: &Host) -> StoreResult<()>;
    async fn delete_host(&mut self, host_id: &str) -> StoreResult<bool>;
    /// Inserts or replaces (by id) a network.
    async fn put_network(&mut self, network: &Network) -> StoreResult<()>;
    async fn delete_network(&mut self, id: &str) -> StoreResult<bool>;
}

/// A tag of a session or filter (Alibaba face). `resource_type` is `session` or `filter`;
/// `resource_id` is the canonical id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliyunTag {
    pub resource_type: String,
    pub resource_id: String,
    pub key: String,
    pub value: String,
}

/// The Alibaba face's records of some resources: their tags, in the order they were set, and
/// `(resource id, resource group id)` of those not in the default group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AliyunExtras {
    pub tags: Vec<AliyunTag>,
    pub groups: Vec<(String, String)>,
}

/// A session of an Alibaba list page and what the face shows beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliyunSessionRow {
    pub session: Session,
    /// The revisions of its last change and of its creation (asynchronous states).
    pub revision: u64,
    pub created_revision: u64,
    /// Its tags, `(key, value)` in the order they were set.
    pub tags: Vec<(String, String)>,
    /// Its resource group; `None`: the default group.
    pub resource_group: Option<String>,
    /// Where each of its source ports is captured and the agents capturing it (the states'
    /// input, read with the page).
    pub source_captures: Vec<SourceCapture>,
}

/// Where a session's source port is captured, and the agents there as the store knows them:
/// the agent of the port's host, or, for a port bound to none, those that reported its
/// interface. Whether they count (connected, what they applied) is the service's to judge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceCapture {
    pub port: PortCapture,
    pub agents: Vec<CapturingAgent>,
}

/// An agent capturing a source port, with what the asynchronous states need of its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturingAgent {
    pub host_id: String,
    /// Unix seconds of its last request, as written down.
    pub last_seen: i64,
    pub applied_generation: u64,
}

/// Where a port is captured: its host, or with none the interface an agent must report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortCapture {
    pub port_id: String,
    /// Empty: bound to no host.
    pub host_id: String,
    /// The capture interface's name (`Port::interface_name`).
    pub interface: String,
}

/// The first request that used a ClientToken: its fingerprint and its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliyunToken {
    pub fingerprint: String,
    pub response: String,
}

/// A session deleted while a connected agent hosting it had not applied the deletion: shown by
/// the Alibaba face as `Deleting` until those agents applied `revision` (display only).
#[derive(Clone, Debug, PartialEq)]
pub struct AliyunTombstone {
    /// The canonical id.
    pub id: String,
    /// `session`.
    pub kind: String,
    /// The revision of the deletion.
    pub revision: u64,
    /// What the face showed of the resource.
    pub view: serde_json::Value,
    /// The hosts that must apply the deletion.
    pub hosts: Vec<String>,
}

/// Reads of the Alibaba face's own data (part of [`Reads`]; see `docs/aliyun.md`).
#[async_trait]
pub trait AliyunReads: Send {
    /// Whether the project called OpenTrafficMirrorService.
    async fn aliyun_service_opened(&mut self, project: &ProjectId) -> StoreResult<bool>;
    async fn aliyun_token(
        &mut self,
        project: &ProjectId,
        token: &str,
    ) -> StoreResult<Option<AliyunToken>>;
    /// Every tag of the project's resources of `resource_type`, in the order they were set.
    async fn aliyun_tags(
        &mut self,
        project: &ProjectId,
        resource_type: &str,
    ) -> StoreResult<Vec<AliyunTag>>;
    /// `(resource id, resource group id)` of the project's resources of `resource_type` that
    /// are not in the default group.
    async fn aliyun_resource_groups(
        &mut self,
        project: &ProjectId,
        resource_type: &str,
    ) -> StoreResult<Vec<(String, String)>>;
    /// The tags (in the order they were set) and the resource groups other than the default
    /// of the project's resources of `resource_type` with these canonical ids: what one page of
    /// a list shows, read by the resources' ids in one statement.
    async fn aliyun_extras_of(
        &mut self,
        project: &ProjectId,
        resource_type: &str,
        ids: &[String],
    ) -> StoreResult<AliyunExtras>;
    /// A page of sessions as [`Reads::list_sessions`] gives it, each with what the Alibaba
    /// list shows beside it (revisions, tags, resource group), all in one statement.
    async fn aliyun_session_page(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<SessionField>,
    ) -> StoreResult<Page<AliyunSessionRow>>;
    /// `id → (revision, created_revision)` of the rows of `kind` (`session`, `filter` or
    /// `rule`) with these canonical ids: the revisions of their last change and of their
    /// creation (asynchronous states).
    async fn aliyun_revisions(
        &mut self,
        kind: &str,
        ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, (u64, u64)>>;
    /// The project's tombstones of `kind`, oldest first.
    async fn aliyun_tombstones(
        &mut self,
        project: &ProjectId,
        kind: &str,
    ) -> StoreResult<Vec<AliyunTombstone>>;
}

/// Nonce uses one statement records ([`Store::use_nonces`]): three parameters each, far
/// below either database's limit.
pub const NONCES_PER_STATEMENT: usize = 256;

/// One use of an Alibaba signature nonce: `access_key` signed with `nonce`, whose window ends
/// at `expires_at` (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonceUse {
    pub access_key: String,
    pub nonce: String,
    pub expires_at: i64,
}

/// Writes of the Alibaba face's own data (part of [`WriteTx`]). Tags and resource groups are
/// removed with their resource by the database itself, in the deleting transaction.
#[async_trait]
pub trait AliyunWrites: Send {
    /// Marks the service open; false if it already was.
    async fn aliyun_open_service(&mut self, project: &ProjectId, now: i64) -> StoreResult<bool>;
    /// Records a ClientToken answer; forgets records created before `forget_before`.
    async fn aliyun_put_token(
        &mut self,
        project: &ProjectId,
        token: &str,
        record: &AliyunToken,
        now: i64,
        forget_before: i64,
    ) -> StoreResult<()>;
    /// Sets (adds or overwrites) a tag.
    async fn aliyun_set_tag(&mut self, project: &ProjectId, tag: &AliyunTag) -> StoreResult<()>;
    /// Removes the listed tag keys of a resource, or all its tags for `None`.
    async fn aliyun_remove_tags(
        &mut self,
        project: &ProjectId,
        resource_id: &str,
        keys: Option<&[String]>,
    ) -> StoreResult<()>;
    async fn aliyun_set_resource_group(
        &mut self,
        project: &ProjectId,
        resource_type: &str,
        resource_id: &str,
        group: &str,
    ) -> StoreResult<()>;
    /// Records a tombstone at this transaction's revision (`tombstone.revision` is ignored);
    /// call it after the deletion.
    async fn aliyun_put_tombstone(
        &mut self,
        project: &ProjectId,
        tombstone: &AliyunTombstone,
    ) -> StoreResult<()>;
}

/// A back-end.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads outside a transaction (each call sees committed data).
    async fn read(&self) -> StoreResult<Box<dyn Reads>>;
    /// Starts a serialisable write transaction.
    async fn write(&self) -> StoreResult<Box<dyn WriteTx>>;
    /// The latest committed revision, updated after every commit (on any server sharing the
    /// database, for back-ends that support several servers).
    fn revisions(&self) -> watch::Receiver<u64>;
    /// A short name for logs: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Agent bookkeeping and the queries behind the agents' desired state.
    async fn agent_data(&self) -> StoreResult<Box<dyn AgentData>>;
    /// Records that a credential signed a request at `at` (Unix seconds). Bookkeeping: not a
    /// change, the revision stays.
    async fn credential_used(&self, access_key: &str, at: i64) -> StoreResult<()>;
    /// Records each of `uses` (an access key's Alibaba signature nonce until its expiry, Unix
    /// seconds): one autocommitted statement per [`NONCES_PER_STATEMENT`] uses (callers that
    /// retry a failure give no more, so that a failure recorded none), outside any write transaction
    /// (bookkeeping: the revision stays). For each, false if the access key used that nonce
    /// already and that use has not expired at `now` (or earlier in `uses`: only the first of
    /// two equal uses is fresh).
    async fn use_nonces(&self, uses: &[NonceUse], now: i64) -> StoreResult<Vec<bool>>;
    /// Forgets the nonce uses expired at `now`; how many.
    async fn forget_nonces(&self, now: i64) -> StoreResult<u64>;
    /// Closes the connections.
    async fn close(&self);
}

/// What the server knows of one agent host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRecord {
    pub host_id: String,
    /// Unix seconds.
    pub registered_at: i64,
    /// Unix seconds of the last request from the agent.
    pub last_seen: i64,
    /// The generation of the desired state the agent last said it applied.
    pub applied_generation: u64,
    /// Interfaces present on the host, as the agent reported them.
    pub interfaces: Vec<String>,
    /// The agent's last status report (counters), as sent.
    pub report: serde_json::Value,
}

/// Load balancers, the targets whose members share a session's copies.
#[async_trait]
pub trait LoadBalancerReads: Send {
    async fn get_load_balancer(
        &mut self,
        project: &ProjectId,
        id: LoadBalancerId,
    ) -> StoreResult<Option<LoadBalancer>>;
    /// A project's load balancers, in creation order (a project holds few: see the quota).
    async fn load_balancers(&mut self, project: &ProjectId) -> StoreResult<Vec<LoadBalancer>>;
    /// A page of a project's load balancers matching `q`, in creation order. `reverse` pages
    /// backwards: the `q.limit` load balancers created just before the marker (still in
    /// creation order), `more` saying whether earlier ones remain.
    async fn list_load_balancers(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<LoadBalancerField>,
        reverse: bool,
    ) -> StoreResult<Page<LoadBalancer>>;
    /// Every project's load balancers that have a health monitor: the checker's work.
    async fn monitored_load_balancers(&mut self) -> StoreResult<Vec<LoadBalancer>>;
    /// The sessions aimed at the load balancer, in creation order.
    async fn sessions_with_load_balancer(
        &mut self,
        id: LoadBalancerId,
    ) -> StoreResult<Vec<SessionId>>;
}

/// Writes of load balancers, and the health checker's lease.
#[async_trait]
pub trait LoadBalancerWrites: Send {
    /// Creates or replaces the load balancer with its members.
    async fn put_load_balancer(&mut self, lb: &LoadBalancer) -> StoreResult<()>;
    async fn delete_load_balancer(
        &mut self,
        project: &ProjectId,
        id: LoadBalancerId,
    ) -> StoreResult<bool>;
    /// Takes or renews the health-check lease for `holder` until `until` (Unix seconds) when
    /// it is free, expired at `now`, or already `holder`'s; true when `holder` holds it. One
    /// server checks members at a time, whatever the number sharing the database.
    async fn take_health_lease(&mut self, holder: &str, now: i64, until: i64) -> StoreResult<bool>;
}

/// The rows one host's desired state is built from ([`AgentData::host_rows`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostRows {
    /// The revision read before the rows: they reflect at least that revision.
    pub revision: u64,
    /// The ports captured on the host: bound to it, or bound to none with an interface name
    /// among the host's.
    pub ports: Vec<Port>,
    /// The enabled sessions that have one of `ports` as a source, by priority.
    pub sessions: Vec<Session>,
    /// Every rule of the sessions' filters.
    pub rules: Vec<FilterRule>,
    /// The sessions' target ports.
    pub targets: Vec<Port>,
    /// The sessions' target load balancers, with their members.
    pub load_balancers: Vec<LoadBalancer>,
    /// The EIPs of the pools bound to the host (it is their gateway), with their pool's
    /// external interface; their enabled sessions are in `sessions`.
    pub eips: Vec<(Eip, String)>,
}

/// Which hosts' desired states the revisions of a range can have changed (recorded by each
/// write transaction; see `migrations/*/..._fleet.sql`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeScopes {
    /// The range is older than what the store keeps: any host may be concerned.
    pub all: bool,
    /// Hosts named by a change (a bound port's host, an enrolled host's record).
    pub hosts: Vec<String>,
    /// Interface names of unbound ports a change concerns: every host that has one.
    pub interfaces: Vec<String>,
    /// Hosts whose agent reported other interfaces ([`WriteTx::put_agent_interfaces`]): a
    /// server that keeps their interfaces in memory reads them again.
    pub agents: Vec<String>,
}

impl ChangeScopes {
    /// Whether no host is concerned.
    pub fn is_empty(&self) -> bool {
        !self.all && self.hosts.is_empty() && self.interfaces.is_empty() && self.agents.is_empty()
    }
}

/// What a server learnt of an agent since it last wrote it down (a batch of
/// [`AgentData::flush_seen`]).
#[derive(Clone, Debug, PartialEq)]
pub struct AgentSeen {
    pub host_id: String,
    /// Unix seconds; never lowers the stored value.
    pub last_seen: i64,
    /// The newest generation it applied; never lowers the stored value.
    pub applied_generation: u64,
    /// A newer status report (counters), if any.
    pub report: Option<serde_json::Value>,
}

/// Agent bookkeeping. Writes here record what agents did; they are not configuration and do
/// not bump the revision (so they never wake the agents' long-polls).
#[async_trait]
pub trait AgentData: Send {
    /// The latest committed revision, read from the database.
    async fn current_revision(&mut self) -> StoreResult<u64>;
    /// Ports bound to `host_id`, in every project.
    async fn ports_on_host(&mut self, host_id: &str) -> StoreResult<Vec<Port>>;
    /// Ports bound to no host, in every project.
    async fn unbound_ports(&mut self) -> StoreResult<Vec<Port>>;
    /// Records (inserts or updates) an agent; `registered_at` is kept from the first record.
    async fn put_agent(&mut self, agent: &AgentRecord) -> StoreResult<()>;
    /// Inserts an agent's first record, unless it has one already (written by another server
    /// a moment ago, say): then nothing changes.
    async fn add_agent(&mut self, agent: &AgentRecord) -> StoreResult<()>;
    async fn agents(&mut self) -> StoreResult<Vec<AgentRecord>>;
    async fn agent(&mut self, host_id: &str) -> StoreResult<Option<AgentRecord>>;
    /// Up to `limit` Alibaba tombstones of every project whose ids come after `after` (bytewise;
    /// `""` for the first), in id order: the server's clean-up walks them a page at a time.
    async fn aliyun_tombstones_after(
        &mut self,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<AliyunTombstone>>;
    /// Forgets Alibaba tombstones whose deletion no connected agent still has to apply.
    async fn aliyun_forget_tombstones(&mut self, ids: &[String]) -> StoreResult<()>;
    /// The rows `host_id`'s desired state is built from, for a host whose agent has
    /// `interfaces`: a bounded number of queries whatever the number of ports and sessions.
    async fn host_rows(&mut self, host_id: &str, interfaces: &[String]) -> StoreResult<HostRows>;
    /// The scopes recorded by the revisions after `after` up to `upto`.
    async fn change_scopes(&mut self, after: u64, upto: u64) -> StoreResult<ChangeScopes>;
    /// Writes down, in a few statements, when agents were last seen, what they applied and
    /// their last counters (for agents that have a record).
    async fn flush_seen(&mut self, seen: &[AgentSeen]) -> StoreResult<()>;
    /// Test support: sets an agent's `last_seen` (Unix seconds).
    async fn set_agent_last_seen(&mut self, host_id: &str, last_seen: i64) -> StoreResult<()>;
}

/// Opens the back-end a database URL names: `sqlite:PATH` or `postgres://…` (`postgresql://`).
/// Credentials' secrets are written and read through `sealer`.
pub async fn open(url: &str, sealer: SecretSealer) -> StoreResult<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(
            sqlite::SqliteStore::open(url, sealer).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(
            postgres::PgStore::open(url, sealer).await?,
        ))
    } else {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or(url);
        Err(StoreError::Config(format!(
            "unsupported database URL scheme {scheme:?}: use sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE"
        )))
    }
}
