//! Asynchronous states: whether a resource's last change has reached the data plane.
//!
//! Every committed write stamps the global revision on the rows it touches. Agents report, per
//! host, the newest generation (revision) of the desired state they applied. A change is
//! *pending* while a connected agent that must apply it (one hosting a source port of the
//! session) reports an older generation; an agent that is not connected holds nothing up (it
//! catches up when it reconnects). With no connected agent, nothing is ever pending: the Alibaba
//! face shows `Created` as soon as a write committed. See `docs/aliyun.md`.
//!
//! Which hosts must apply a change is decided by [`captured_on`], the same rule that puts a
//! port into a host's desired state (`agents.rs`); for an `eip` session, by the gateway host
//! its EIPs' pools are bound to, which captures them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tmirror_model::*;
use tmirror_store::{
    AliyunExtras, AliyunTag, AliyunTombstone, CapturingAgent, ListQuery, Page, PortCapture, Reads,
    SessionField, StoreError,
};

use super::agents::connected;
use super::fleet::Fleet;
use super::{Service, ServiceError, ServiceResult, Writer};

/// A page of the Alibaba session list: its sessions, the state of each, their tags and groups.
pub struct AliyunSessionPage {
    pub page: Page<Session>,
    pub states: HashMap<SessionId, Lifecycle>,
    pub extras: AliyunExtras,
}

/// The lifecycle states the Alibaba face shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lifecycle {
    Creating,
    Modifying,
    Created,
    Deleting,
}

impl Lifecycle {
    /// Alibaba's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Creating => "Creating",
            Lifecycle::Modifying => "Modifying",
            Lifecycle::Created => "Created",
            Lifecycle::Deleting => "Deleting",
        }
    }

    /// Whether another change must wait (`IncorrectStatus.*`).
    pub fn is_transient(self) -> bool {
        self != Lifecycle::Created
    }
}

/// What the connected agents applied (host → newest applied generation) and which interfaces
/// they reported. Read from the store as needed: only the agents of the hosts (and of the
/// interfaces of unbound ports) a request looks at, never every agent's record
/// ([`Applied::look_up`]); what this server saw of them and did not write down yet included.
#[derive(Default)]
pub struct Applied {
    known: Mutex<Known>,
    /// Where to look agents up, and when "connected" is judged; `None`: only what was reported.
    source: Option<(Arc<Fleet>, i64)>,
    /// Unbound ports are captured nowhere: the interfaces agents report are not looked at.
    unbound_nowhere: bool,
}

#[derive(Clone, Debug, Default)]
struct Known {
    hosts: HashMap<String, u64>,
    /// Interfaces each connected agent reported: its whole list when looked up by host or by
    /// interface, or only the names a page's captures asked for ([`Applied::absorb`]).
    interfaces: HashMap<String, Vec<String>>,
    /// Hosts and interface names looked up already.
    looked_up: HashSet<String>,
}

impl std::fmt::Debug for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applied")
            .field("known", &*self.known())
            .finish()
    }
}

impl Applied {
    /// No agent connected.
    pub fn none() -> Self {
        Applied::default()
    }

    /// The agents as the store and `fleet` know them, judged connected at `now`; looked up as
    /// needed.
    pub(crate) fn from_store(fleet: Arc<Fleet>, now: i64, unbound_nowhere: bool) -> Self {
        Applied {
            known: Mutex::default(),
            source: Some((fleet, now)),
            unbound_nowhere,
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an agent's report.
    pub fn report(&mut self, host: impl Into<String>, generation: u64) {
        self.known().applied(&host.into(), generation);
    }

    /// Records the interfaces an agent reported.
    pub fn interfaces(&mut self, host: impl Into<String>, interfaces: Vec<String>) {
        self.known().interfaces.insert(host.into(), interfaces);
    }

    /// Reads, in `r`, the connected agents of `hosts` and those that reported one of
    /// `interfaces`, unless they were read already.
    pub async fn look_up<R: Reads + ?Sized>(
        &self,
        r: &mut R,
        hosts: &[String],
        interfaces: &[String],
    ) -> ServiceResult<()> {
        let Some((fleet, now)) = &self.source else {
            return Ok(());
        };
        let interfaces = if self.unbound_nowhere {
            &[]
        } else {
            interfaces
        };
        let (hosts, interfaces): (Vec<String>, Vec<String>) = {
            let known = self.known();
            (
                hosts
                    .iter()
                    .filter(|h| !known.looked_up.contains(&format!("host:{h}")))
                    .cloned()
                    .collect(),
                interfaces
                    .iter()
                    .filter(|i| !known.looked_up.contains(&format!("interface:{i}")))
                    .cloned()
                    .collect(),
            )
        };
        if hosts.is_empty() && interfaces.is_empty() {
            return Ok(());
        }
        let records = r.agents_concerned(&hosts, &interfaces).await?;
        let mut known = self.known();
        for h in hosts {
            known.looked_up.insert(format!("host:{h}"));
        }
        for i in interfaces {
            known.looked_up.insert(format!("interface:{i}"));
        }
        for a in records.into_iter().map(|a| fleet.overlay(a)) {
            if connected(a.last_seen, *now) {
                known.applied(&a.host_id, a.applied_generation);
                let interfaces = if self.unbound_nowhere {
                    Vec::new()
                } else {
                    a.interfaces
                };
                known.interfaces.insert(a.host_id, interfaces);
            }
        }
        Ok(())
    }

    /// Takes in the agents read with a page for one of its source ports' `capture`, as
    /// [`Applied::look_up`] would have read them (that capture is not looked up again).
    pub(crate) fn absorb(&self, capture: &PortCapture, agents: Vec<CapturingAgent>) {
        let Some((fleet, now)) = &self.source else {
            return;
        };
        let unbound = capture.host_id.is_empty();
        if unbound && self.unbound_nowhere {
            return;
        }
        let mut known = self.known();
        known.looked_up.insert(if unbound {
            format!("interface:{}", capture.interface)
        } else {
            format!("host:{}", capture.host_id)
        });
        for a in agents.into_iter().map(|a| fleet.overlay_capturing(a)) {
            if connected(a.last_seen, *now) {
                known.applied(&a.host_id, a.applied_generation);
                // Found by the port's interface, which it reported: of the agent's list, only
                // the names looked up are known, and only those are asked for.
                let interfaces = known.interfaces.entry(a.host_id).or_default();
                if unbound && !interfaces.contains(&capture.interface) {
                    interfaces.push(capture.interface.clone());
                }
            }
        }
    }
}

impl Known {
    /// Records that `host`'s connected agent applied `generation`.
    fn applied(&mut self, host: &str, generation: u64) {
        let entry = self.hosts.entry(host.to_owned()).or_insert(0);
        *entry = (*entry).max(generation);
    }
}

/// Whether `port`'s traffic is captured on `host`, whose agent reports `interfaces`: the port
/// is bound to that host, or it is bound to none and the host has the port's interface. The
/// one definition of where a port is mirrored, for the desired state and for the states here.
pub fn captured_on(port: &Port, host: &str, interfaces: &[String]) -> bool {
    captured(&port.host_id, || port.interface_name(), host, interfaces)
}

/// [`captured_on`] for a port known by where it is captured (`interface`: its name, asked
/// only for a port bound to no host).
fn captured<S: AsRef<str>>(
    port_host: &str,
    interface: impl FnOnce() -> S,
    host: &str,
    interfaces: &[String],
) -> bool {
    if port_host.is_empty() {
        let interface = interface();
        interfaces.iter().any(|i| i == interface.as_ref())
    } else {
        port_host == host
    }
}

/// Where each source port of some sessions is captured, by port.
type Captures = HashMap<PortId, PortCapture>;

/// The hosts a session touches: those where one of its sources (found in `ports`) is
/// captured, among the hosts bound sources name and the connected agents.
fn session_hosts(
    session: &Session,
    ports: &Captures,
    gateways: &HashMap<EipId, String>,
    applied: &Applied,
) -> BTreeSet<String> {
    let applied = applied.known();
    let mut hosts: BTreeSet<String> = session
        .sources
        .eips()
        .iter()
        .filter_map(|id| gateways.get(id).cloned())
        .collect();
    for port in session
        .sources
        .ports()
        .iter()
        .filter_map(|id| ports.get(id))
    {
        if !port.host_id.is_empty() {
            hosts.insert(port.host_id.clone());
        }
        for (host, interfaces) in &applied.interfaces {
            if captured(&port.host_id, || port.interface.as_str(), host, interfaces) {
                hosts.insert(host.clone());
            }
        }
    }
    hosts
}

/// Where the source ports of `sessions` are captured, read in `r`.
async fn source_captures<R: Reads + ?Sized>(
    r: &mut R,
    project: &ProjectId,
    sessions: &[Session],
) -> ServiceResult<Captures> {
    let ids: HashSet<PortId> = sessions
        .iter()
        .flat_map(|s| s.sources.ports().to_vec())
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    // By id, not as a list narrowed by id: for a page of 100 sessions SQLite walked all the
    // project's ports (17 ms at 25,000).
    let ids: Vec<PortId> = ids.into_iter().collect();
    Ok(r.ports_by_ids(project, &ids)
        .await?
        .into_iter()
        .map(|p| {
            let capture = PortCapture {
                port_id: p.id.to_string(),
                interface: p.interface_name(),
                host_id: p.host_id,
            };
            (p.id, capture)
        })
        .collect())
}

/// The gateway host of each EIP source of `sessions` (those whose pool is bound to one), read
/// in `r`: two queries, and none for sessions of ports.
async fn eip_gateways<R: Reads + ?Sized>(
    r: &mut R,
    project: &ProjectId,
    sessions: &[Session],
) -> ServiceResult<HashMap<EipId, String>> {
    let wanted: BTreeSet<EipId> = sessions
        .iter()
        .flat_map(|s| s.sources.eips().iter().copied())
        .collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let wanted: Vec<EipId> = wanted.into_iter().collect();
    Ok(r.eip_gateways(project, &wanted)
        .await?
        .into_iter()
        .collect())
}

/// The hosts of each session, read in `r`.
pub(super) async fn hosts_of<R: Reads + ?Sized>(
    r: &mut R,
    project: &ProjectId,
    sessions: &[Session],
    applied: &Applied,
) -> ServiceResult<HashMap<SessionId, BTreeSet<String>>> {
    let ports = source_captures(r, project, sessions).await?;
    hosts_with(r, project, sessions, &ports, applied).await
}

/// The hosts of each session whose source ports' captures are `ports`, read in `r`.
async fn hosts_with<R: Reads + ?Sized>(
    r: &mut R,
    project: &ProjectId,
    sessions: &[Session],
    ports: &Captures,
    applied: &Applied,
) -> ServiceResult<HashMap<SessionId, BTreeSet<String>>> {
    let gateways = eip_gateways(r, project, sessions).await?;
    let mut bound: Vec<String> = gateways.values().cloned().collect();
    let mut unbound = Vec::new();
    for p in ports.values() {
        if p.host_id.is_empty() {
            unbound.push(p.interface.clone());
        } else {
            bound.push(p.host_id.clone());
        }
    }
    applied.look_up(r, &bound, &unbound).await?;
    Ok(sessions
        .iter()
        .map(|s| (s.id, session_hosts(s, ports, &gateways, applied)))
        .collect())
}

fn change(revisions: Option<&(u64, u64)>) -> Change {
    match revisions {
        Some(&(r, c)) if r == c => Change::Created(r),
        Some(&(r, _)) => Change::Modified(r),
        None => Change::Modified(0),
    }
}

/// The state of each session, read in `r`.
pub(super) async fn sessions_in<R: Reads + ?Sized>(
    r: &mut R,
    project: &ProjectId,
    sessions: &[Session],
    applied: &Applied,
) -> ServiceResult<HashMap<SessionId, Lifecycle>> {
    Ok(sessions_and_hosts(r, project, sessions, applied).await?.0)
}

/// [`sessions_in`], with the hosts of each session ([`hosts_of`]) it reads on the way.
pub(super) async fn sessions_and_hosts<R: Reads + ?Sized>(
    r: &mut R,
    project: &ProjectId,
    sessions: &[Session],
    applied: &Applied,
) -> ServiceResult<(
    HashMap<SessionId, Lifecycle>,
    HashMap<SessionId, BTreeSet<String>>,
)> {
    let ids: Vec<String> = sessions.iter().map(|s| s.id.to_string()).collect();
    let mut revisions = r.aliyun_revisions("session", &ids).await?;
    let revisions = sessions
        .iter()
        .filter_map(|s| Some((s.id, revisions.remove(&s.id.to_string())?)))
        .collect();
    let hosts = hosts_of(r, project, sessions, applied).await?;
    let states = lifecycles(sessions, &revisions, &hosts, applied);
    Ok((states, hosts))
}

/// The state of each session, whose `(revision, created_revision)` and hosts are known.
fn lifecycles(
    sessions: &[Session],
    revisions: &HashMap<SessionId, (u64, u64)>,
    hosts: &HashMap<SessionId, BTreeSet<String>>,
    applied: &Applied,
) -> HashMap<SessionId, Lifecycle> {
    sessions
        .iter()
        .map(|s| {
            let c = change(revisions.get(&s.id));
            let h = hosts[&s.id].iter().map(String::as_str);
            (s.id, lifecycle(c, h, applied))
        })
        .collect()
}

/// The state of each filter and of each of their rules (by canonical id), read in `r`: a
/// filter's change must reach the hosts of the sessions that use it.
async fn filters_in<R: Reads + ?Sized>(
    r: &mut R,
    project: &ProjectId,
    filters: &[(FilterId, Vec<RuleId>)],
    applied: &Applied,
) -> ServiceResult<HashMap<String, Lifecycle>> {
    let ids: Vec<String> = filters.iter().map(|(f, _)| f.to_string()).collect();
    let rule_ids: Vec<String> = filters
        .iter()
        .flat_map(|(_, rules)| rules.iter().map(|r| r.to_string()))
        .collect();
    let revisions = r.aliyun_revisions("filter", &ids).await?;
    let rule_revisions = r.aliyun_revisions("rule", &rule_ids).await?;
    // The hosts where the filters' sessions' sources are captured, as distinct pairs from
    // the database (a filter shared by thousands of sessions is as cheap as one used once),
    // then what those hosts' agents applied.
    let mut hosts_of_filter: HashMap<String, BTreeSet<String>> = HashMap::new();
    let by_interface = !applied.unbound_nowhere;
    for (filter, host) in r.filter_hosts(project, &ids, by_interface).await? {
        hosts_of_filter.entry(filter).or_default().insert(host);
    }
    let hosts: BTreeSet<&String> = hosts_of_filter.values().flatten().collect();
    let hosts: Vec<String> = hosts.into_iter().cloned().collect();
    applied.look_up(r, &hosts, &[]).await?;
    let mut out = HashMap::new();
    for ((_, rules), id) in filters.iter().zip(ids) {
        let hosts = hosts_of_filter.remove(&id).unwrap_or_default();
        let state = |c| lifecycle(c, hosts.iter().map(String::as_str), applied);
        let filter_state = state(change(revisions.get(&id)));
        out.insert(id, filter_state);
        for rule in rules {
            let id = rule.to_string();
            out.insert(id.clone(), state(change(rule_revisions.get(&id))));
        }
    }
    Ok(out)
}

impl Service {
    /// What the connected agents applied, and the interfaces they reported, now: read as
    /// each use needs it, not here.
    pub async fn applied(&self) -> ServiceResult<Applied> {
        Ok(Applied::from_store(
            self.fleet.clone(),
            Timestamp::now().0,
            self.unbound_nowhere,
        ))
    }

    /// Reads what the agents of `hosts` applied into `applied` (before [`tombstone_state`]).
    pub async fn look_up_hosts(&self, applied: &Applied, hosts: &[String]) -> ServiceResult<()> {
        applied
            .look_up(&mut *self.store.read().await?, hosts, &[])
            .await
    }

    /// A page of the Alibaba session list: the sessions with their tags, resource groups, the
    /// revisions the states start from, where their source ports are captured and the agents
    /// there, in one read (then, for sessions of EIPs, their gateways and those agents).
    pub async fn aliyun_session_page(
        &self,
        project: &ProjectId,
        q: &ListQuery<SessionField>,
        applied: &Applied,
    ) -> ServiceResult<AliyunSessionPage> {
        let mut r = self.store.read().await?;
        let rows = r.aliyun_session_page(project, q).await?;
        let mut items = Vec::with_capacity(rows.items.len());
        let mut revisions = HashMap::new();
        let mut captures = Captures::new();
        let mut extras = AliyunExtras::default();
        for row in rows.items {
            let id = row.session.id.to_string();
            revisions.insert(row.session.id, (row.revision, row.created_revision));
            for capture in row.source_captures {
                let port = capture.port.port_id.parse::<PortId>().map_err(|_| {
                    ServiceError::Store(StoreError::Corrupt(format!(
                        "source port id {:?} of session {id}",
                        capture.port.port_id
                    )))
                })?;
                applied.absorb(&capture.port, capture.agents);
                captures.insert(port, capture.port);
            }
            extras
                .tags
                .extend(row.tags.into_iter().map(|(key, value)| AliyunTag {
                    resource_type: "session".into(),
                    resource_id: id.clone(),
                    key,
                    value,
                }));
            if let Some(group) = row.resource_group {
                extras.groups.push((id, group));
            }
            items.push(row.session);
        }
        let hosts = hosts_with(&mut *r, project, &items, &captures, applied).await?;
        let states = lifecycles(&items, &revisions, &hosts, applied);
        Ok(AliyunSessionPage {
            page: Page {
                items,
                more: rows.more,
            },
            states,
            extras,
        })
    }

    /// The state of each of the project's `filters` and of the listed rules, by canonical id.
    pub async fn filter_states(
        &self,
        project: &ProjectId,
        filters: &[(FilterId, Vec<RuleId>)],
        applied: &Applied,
    ) -> ServiceResult<HashMap<String, Lifecycle>> {
        filters_in(&mut *self.store.read().await?, project, filters, applied).await
    }
}

/// The same, in the caller's transaction (to refuse a change while the last one is pending).
impl Writer<'_> {
    /// The hosts `session` touches.
    pub async fn session_hosts(
        &mut self,
        project: &ProjectId,
        session: &Session,
        applied: &Applied,
    ) -> ServiceResult<BTreeSet<String>> {
        let mut hosts = hosts_of(self.tx, project, std::slice::from_ref(session), applied).await?;
        Ok(hosts.remove(&session.id).unwrap_or_default())
    }

    /// The state of a session; `None` if there is no such session.
    pub async fn session_state(
        &mut self,
        project: &ProjectId,
        id: SessionId,
        applied: &Applied,
    ) -> ServiceResult<Option<Lifecycle>> {
        let Some(s) = self.tx.get_session(project, id).await? else {
            return Ok(None);
        };
        let states = sessions_in(self.tx, project, std::slice::from_ref(&s), applied).await?;
        Ok(states.get(&id).copied())
    }

    /// The state of a filter, or with `rule` of that rule of it.
    pub async fn filter_state(
        &mut self,
        project: &ProjectId,
        filter: FilterId,
        rule: Option<RuleId>,
        applied: &Applied,
    ) -> ServiceResult<Lifecycle> {
        let rules: Vec<RuleId> = rule.into_iter().collect();
        let states = filters_in(self.tx, project, &[(filter, rules)], applied).await?;
        let id = rule.map_or(filter.to_string(), |r| r.to_string());
        Ok(states.get(&id).copied().unwrap_or(Lifecycle::Created))
    }
}

/// A resource's last change as the store knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Created at this revision and not changed since.
    Created(u64),
    /// Last changed at this revision.
    Modified(u64),
    /// Deleted at this revision (a tombstone keeps it until every agent applied it).
    Deleted(u64),
}

/// The state of a deleted session that a tombstone remembers: `Deleting` until the hosts it
/// touched applied the deletion, then `Created` (forgettable).
pub fn tombstone_state(t: &AliyunTombstone, applied: &Applied) -> Lifecycle {
    lifecycle(
        Change::Deleted(t.revision),
        t.hosts.iter().map(String::as_str),
        applied,
    )
}

/// The state of a resource whose change must be applied on `hosts`.
pub fn lifecycle<'h>(
    change: Change,
    hosts: impl IntoIterator<Item = &'h str>,
    applied: &Applied,
) -> Lifecycle {
    let revision = match change {
        Change::Created(r) | Change::Modified(r) | Change::Deleted(r) => r,
    };
    let known = applied.known();
    let pending = hosts
        .into_iter()
        .any(|h| known.hosts.get(h).is_some_and(|&g| g < revision));
    match (pending, change) {
        (false, _) => Lifecycle::Created,
        (true, Change::Created(_)) => Lifecycle::Creating,
        (true, Change::Modified(_)) => Lifecycle::Modifying,
        (true, Change::Deleted(_)) => Lifecycle::Deleting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session of `project` mirroring `port`.
    fn session_of(project: &ProjectId, port: PortId) -> Session {
        Session {
            id: SessionId::new(),
            project_id: project.clone(),
            name: "s".into(),
            description: String::new(),
            filter_id: FilterId::new(),
            sources: SessionSources::Eni(vec![port]),
            target: SessionTarget::Port(PortId::new()),
            vni: Vni::new(7).unwrap(),
            packet_length: PacketLength::new(96).unwrap(),
            priority: SessionPriority::new(1).unwrap(),
            enabled: true,
            created_at: Timestamp(1),
            updated_at: Timestamp(1),
        }
    }

    #[tokio::test]
    async fn captures_read_with_a_page_are_not_looked_up_again() {
        // The store knows an agent, hv9, that reports the unbound port's interface and is
        // behind; the page's read (absorbed) found hv2 only, caught up. Reading the agents
        // again would bring hv9 in and hold the change up.
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let sealer = tmirror_store::SecretSealer::new(tmirror_store::MasterKey::generate(), vec![]);
        let store = tmirror_store::open(&url, sealer).await.unwrap();
        let now = Timestamp::now().0;
        store
            .agent_data()
            .await
            .unwrap()
            .put_agent(&tmirror_store::AgentRecord {
                host_id: "hv9".into(),
                registered_at: now,
                last_seen: now,
                applied_generation: 1,
                interfaces: vec!["vm-a".into()],
                report: serde_json::json!({}),
            })
            .await
            .unwrap();
        let fleet = Fleet::start(store.clone(), std::time::Duration::from_secs(3600));
        let project = ProjectId::new();
        let port = PortId::new();
        let capture = PortCapture {
            port_id: port.to_string(),
            host_id: String::new(),
            interface: "vm-a".into(),
        };
        let session = session_of(&project, port);
        let captures: Captures = [(port, capture.clone())].into();
        let states = |applied: Applied| {
            let (store, project, session, captures) = (
                store.clone(),
                project.clone(),
                session.clone(),
                captures.clone(),
            );
            async move {
                let mut r = store.read().await.unwrap();
                let sessions = [session];
                let hosts = hosts_with(&mut *r, &project, &sessions, &captures, &applied)
                    .await
                    .unwrap();
                let hosts = hosts[&sessions[0].id].clone();
                let state = lifecycle(
                    Change::Modified(5),
                    hosts.iter().map(String::as_str),
                    &applied,
                );
                (hosts.into_iter().collect::<Vec<_>>(), state)
            }
        };
        let absorbed = Applied::from_store(fleet.clone(), now, false);
        let caught_up = CapturingAgent {
            host_id: "hv2".into(),
            last_seen: now,
            applied_generation: 6,
        };
        absorbed.absorb(&capture, vec![caught_up]);
        assert_eq!(
            states(absorbed).await,
            (vec!["hv2".to_string()], Lifecycle::Created)
        );
        // Without the page's read, the agents are looked up in the store (what the check
        // above would see if `absorb` did not count as a look-up).
        assert_eq!(
            states(Applied::from_store(fleet, now, false)).await,
            (vec!["hv9".to_string()], Lifecycle::Modifying)
        );
    }

    #[test]
    fn without_agents_every_change_is_applied() {
        for c in [Change::Created(5), Change::Modified(9), Change::Deleted(12)] {
            assert_eq!(
                lifecycle(c, ["host-a"], &Applied::none()),
                Lifecycle::Created
            );
        }
    }

    #[test]
    fn a_connected_agent_behind_the_change_holds_it_up() {
        let mut applied = Applied::none();
        applied.report("host-a", 4);
        applied.report("host-b", 9);
        assert_eq!(
            lifecycle(Change::Created(5), ["host-a"], &applied),
            Lifecycle::Creating
        );
        assert_eq!(
            lifecycle(Change::Modified(5), ["host-b", "host-a"], &applied),
            Lifecycle::Modifying
        );
        assert_eq!(
            lifecycle(Change::Deleted(5), ["host-a"], &applied),
            Lifecycle::Deleting
        );
        assert!(Lifecycle::Deleting.is_transient());
        // Caught up, or not one of the hosts, or not connected: nothing pending.
        assert_eq!(
            lifecycle(Change::Modified(9), ["host-b"], &applied),
            Lifecycle::Created
        );
        assert_eq!(
            lifecycle(Change::Modified(5), ["host-b"], &applied),
            Lifecycle::Created
        );
        assert_eq!(
            lifecycle(Change::Modified(5), ["host-c"], &applied),
            Lifecycle::Created
        );
        applied.report("host-a", 5);
        applied.report("host-a", 3);
        assert_eq!(
            lifecycle(Change::Created(5), ["host-a"], &applied),
            Lifecycle::Created
        );
        assert_eq!(Lifecycle::Created.as_str(), "Created");
    }
}
