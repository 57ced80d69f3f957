//! What reaches where, from the agents' last reports: the sessions counted by state (for the
//! metrics), and one session's delivery on each host that captures one of its sources
//! (copies and bytes, their rates, whether the host applied the session's last change).
//!
//! The rates are the agents' own (averaged over the interval between two of their reports),
//! so every server shows the same figures whichever server the report reached.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use tmirror_model::*;
use tmirror_store::{ListQuery, SessionField};

use super::agents::connected;
use super::states::{hosts_of, sessions_and_hosts, sessions_in, Lifecycle};
use super::{Service, ServiceResult};

/// Sessions read per query when counting them all.
const CENSUS_PAGE: u32 = 500;

/// One host's part in a session's delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct HostDelivery {
    pub host_id: String,
    /// Whether the host's agent was seen within the connection window.
    pub connected: bool,
    /// `None` while the host's agent never registered.
    pub applied_generation: Option<u64>,
    /// Whether the host applied the session's last change.
    pub applied: bool,
    /// Copies sent and bytes of inner frames in them, as the agent last reported (since
    /// the agent started).
    pub copies: u64,
    pub bytes: u64,
    /// Per second over the agent's last reporting interval; zero when it is not connected.
    pub copies_per_second: f64,
    pub bytes_per_second: f64,
}

/// A session's delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub session: Session,
    /// The revision of the session's last change.
    pub revision: u64,
    pub state: Lifecycle,
    /// In host order.
    pub hosts: Vec<HostDelivery>,
}

impl Delivery {
    /// Whether every host that captures a source applied the session's last change.
    pub fn applied_everywhere(&self) -> bool {
        self.hosts.iter().all(|h| h.applied)
    }

    pub fn copies_per_second(&self) -> f64 {
        self.hosts.iter().map(|h| h.copies_per_second).sum()
    }

    pub fn bytes_per_second(&self) -> f64 {
        self.hosts.iter().map(|h| h.bytes_per_second).sum()
    }
}

/// The figure `key` of session `id` in an agent's report (`counters.sessions.<id>.<key>`).
fn reported(report: &serde_json::Value, id: SessionId, key: &str) -> Option<f64> {
    report["sessions"][id.to_string()][key].as_f64()
}

/// Every session of every project: how many there are by state, and where each is captured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Census {
    /// Sessions counted by their state and whether they are enabled.
    pub counts: BTreeMap<(Lifecycle, bool), u64>,
    /// The hosts that capture one of each session's sources, for the sessions asked about:
    /// the only hosts whose reports speak for the session (a host's report names sessions
    /// as it likes).
    pub hosts: HashMap<SessionId, BTreeSet<String>>,
}

impl Service {
    /// Every session of every project counted by its state and whether it is enabled, with
    /// the hosts that capture those of `hosts_of` (the sessions some agent reports: not a
    /// set of hosts for each of every project's sessions).
    pub async fn session_census(&self, hosts_of: &HashSet<SessionId>) -> ServiceResult<Census> {
        let projects = self.store.read().await?.projects().await?;
        let applied = self.applied().await?;
        let mut census = Census::default();
        for project in projects {
            let mut q = ListQuery::<SessionField>::all(CENSUS_PAGE);
            loop {
                let mut r = self.store.read().await?;
                let page = r.list_sessions(&project.id, &q).await?;
                let (states, hosts) =
                    sessions_and_hosts(&mut *r, &project.id, &page.items, &applied).await?;
                for s in &page.items {
                    let state = states.get(&s.id).copied().unwrap_or(Lifecycle::Created);
                    *census.counts.entry((state, s.enabled)).or_insert(0) += 1;
                }
                census
                    .hosts
                    .extend(hosts.into_iter().filter(|(id, _)| hosts_of.contains(id)));
                match (page.more, page.items.last()) {
                    (true, Some(last)) => q.marker = Some(last.id.to_string()),
                    _ => break,
                }
            }
        }
        Ok(census)
    }

    /// The delivery of session `id` of `project`: the operator's for any project, and any
    /// role's of its own project; another project's session is answered like an unknown one.
    pub async fn session_delivery(
        &self,
        actor: &Actor,
        project: &ProjectId,
        id: SessionId,
    ) -> ServiceResult<Delivery> {
        let unknown = || DomainError::not_found(ResourceKind::Session, id);
        if actor.role != Role::Operator && &actor.project != project {
            return Err(unknown().into());
        }
        let applied = self.applied().await?;
        let mut r = self.store.read().await?;
        let session = r.get_session(project, id).await?.ok_or_else(unknown)?;
        let one = std::slice::from_ref(&session);
        let state = sessions_in(&mut *r, project, one, &applied).await?[&id];
        let hosts = hosts_of(&mut *r, project, one, &applied)
            .await?
            .remove(&id)
            .unwrap_or_default();
        let revision = r
            .aliyun_revisions("session", &[id.to_string()])
            .await?
            .get(&id.to_string())
            .map_or(0, |&(changed, _)| changed);
        // The records of those hosts' agents only, not every agent's.
        let wanted: Vec<String> = hosts.iter().cloned().collect();
        let agents: HashMap<String, _> = r
            .agents_concerned(&wanted, &[])
            .await?
            .into_iter()
            .map(|a| (a.host_id.clone(), self.fleet.overlay(a)))
            .collect();
        drop(r);
        let now = Timestamp::now().0;
        let hosts = hosts
            .into_iter()
            .map(|host_id| match agents.get(&host_id) {
                Some(a) => {
                    let up = connected(a.last_seen, now);
                    let rate = |key| {
                        if up {
                            reported(&a.report, id, key).unwrap_or(0.0)
                        } else {
                            0.0
                        }
                    };
                    HostDelivery {
                        connected: up,
                        applied_generation: Some(a.applied_generation),
                        applied: a.applied_generation >= revision,
                        copies: reported(&a.report, id, "packets").unwrap_or(0.0) as u64,
                        bytes: reported(&a.report, id, "bytes").unwrap_or(0.0) as u64,
                        copies_per_second: rate("packets_per_second"),
                        bytes_per_second: rate("bytes_per_second"),
                        host_id,
                    }
                }
                None => HostDelivery {
                    host_id,
                    connected: false,
                    applied_generation: None,
                    applied: false,
                    copies: 0,
                    bytes: 0,
                    copies_per_second: 0.0,
                    bytes_per_second: 0.0,
                },
            })
            .collect();
        Ok(Delivery {
            session,
            revision,
            state,
            hosts,
        })
    }
}
