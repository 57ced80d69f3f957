//! The fleet's side of the control plane that lives in memory (issue 14): which host each
//! waiting long-poll is for, which hosts a committed change concerns, the last document of
//! each host, and what the agents did since it was last written down.
//!
//! - **Targeted wake-ups.** Every write transaction records the scopes it concerns with its
//!   revision (`host:<id>` for a bound port's host, `interface:<name>` for an unbound port's
//!   interface; see the store's `revision_scopes`). When the revision feed moves (a local
//!   commit, or another server's through PostgreSQL's NOTIFY), one task reads the scopes of
//!   the new revisions in one query and bumps the wake counter of those hosts only. A poll
//!   waits on its host's counter, never on the feed. If the scopes cannot be read, or the
//!   server lagged past what the store keeps, every poll is woken (and recomputes).
//! - **No recomputation without a relevant change.** A host's document is kept with the
//!   counter it was computed at; a poll reuses it while the counter has not moved.
//! - **No read per poll.** The interfaces a host's document is computed with (its agent's
//!   report) are kept here once read. An agent that reports other interfaces, to any server,
//!   commits them as a change of scope `agent:<host>`; dispatching it marks the host's
//!   interfaces to be read again (as does a lag past what the store keeps). A poll reads the
//!   agent's record only then, not each time it begins.
//! - **No write per poll.** Polls and status reports update the agent's sighting here
//!   (`last_seen`, the applied generation, the counters); one task writes the sightings of
//!   every agent in a few statements every `flush_every`, so other servers see them at most
//!   that late. Views on this server add what is not written yet.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tmirror_model::agent::DesiredState;
use tmirror_store::{AgentRecord, AgentSeen, CapturingAgent, ChangeScopes, Store};
use tokio::sync::watch;

/// What this server knows of one host.
struct Slot {
    /// Counts the changes that concerned the host; its polls wait on it.
    wake: watch::Sender<u64>,
    /// The interfaces its polls compute with (indexed in `by_interface`).
    interfaces: Vec<String>,
    /// Whether `interfaces` must be read from the store again (never read yet, or a change of
    /// the agent's interfaces was dispatched since they were).
    reread: bool,
    /// Counts the dispatched changes of the agent's interfaces: a read that began before one
    /// does not clear `reread`.
    agent_changes: u64,
    /// The last document computed, with the counter it was computed at and its interfaces.
    document: Option<(u64, Arc<DesiredState>)>,
}

/// What an agent did since it was last written down.
#[derive(Clone, Debug, Default)]
struct Sighting {
    last_seen: i64,
    applied_generation: u64,
    report: Option<serde_json::Value>,
}

#[derive(Default)]
struct Inner {
    /// The revision whose scopes were dispatched last.
    dispatched: u64,
    hosts: HashMap<String, Slot>,
    /// Interface name → the hosts whose polls compute with it.
    by_interface: HashMap<String, HashSet<String>>,
    /// Sightings not yet written down.
    unwritten: HashMap<String, Sighting>,
    /// Sightings being written down (still shown until the write is done).
    writing: HashMap<String, Sighting>,
}

impl Inner {
    /// What this server saw of `host`'s agent and did not write down yet (or is writing).
    fn sightings(&self, host: &str) -> impl Iterator<Item = &Sighting> {
        [self.writing.get(host), self.unwritten.get(host)]
            .into_iter()
            .flatten()
    }
}

/// The fleet's in-memory state (see the module documentation).
pub struct Fleet {
    store: Arc<dyn Store>,
    inner: Mutex<Inner>,
    /// Held by whoever reads and dispatches scopes (the feed's task, or a poll catching up).
    dispatching: tokio::sync::Mutex<()>,
}

impl Fleet {
    /// Starts following the store's revision feed and writing sightings down every
    /// `flush_every`; both tasks end when the fleet is dropped.
    pub fn start(store: Arc<dyn Store>, flush_every: Duration) -> Arc<Fleet> {
        let feed = store.revisions();
        let fleet = Arc::new(Fleet {
            store,
            inner: Mutex::new(Inner {
                dispatched: *feed.borrow(),
                ..Inner::default()
            }),
            dispatching: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(dispatch(Arc::downgrade(&fleet), feed));
        tokio::spawn(flush_periodically(Arc::downgrade(&fleet), flush_every));
        fleet
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The wake counter of `host`'s polls, computing with `interfaces`.
    pub fn watch(&self, host: &str, interfaces: &[String]) -> watch::Receiver<u64> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        slot(inner, host);
        let slot = inner.hosts.get_mut(host).expect("just made");
        if slot.interfaces != interfaces {
            for old in &slot.interfaces {
                if let Some(set) = inner.by_interface.get_mut(old) {
                    set.remove(host);
                    if set.is_empty() {
                        inner.by_interface.remove(old);
                    }
                }
            }
            for new in interfaces {
                inner
                    .by_interface
                    .entry(new.clone())
                    .or_default()
                    .insert(host.to_owned());
            }
            slot.interfaces = interfaces.to_vec();
            slot.document = None;
        }
        slot.wake.subscribe()
    }

    /// The interfaces `host`'s polls compute with, if they need not be read from the store:
    /// `Err` with the count of its agent's changes to pass to [`Fleet::interfaces_read`]
    /// after reading them.
    pub fn known_interfaces(&self, host: &str) -> Result<Vec<String>, u64> {
        let mut inner = self.lock();
        // The slot exists before the read, so that a change dispatched meanwhile counts.
        let s = slot(&mut inner, host);
        if s.reread {
            Err(s.agent_changes)
        } else {
            Ok(s.interfaces.clone())
        }
    }

    /// `host`'s interfaces were read from the store when its agent's change count was
    /// `changes`: they are current unless a change was dispatched since.
    pub fn interfaces_read(&self, host: &str, changes: u64) {
        let mut inner = self.lock();
        if let Some(s) = inner.hosts.get_mut(host) {
            if s.agent_changes == changes {
                s.reread = false;
            }
        }
    }

    /// The interfaces `host`'s polls compute with.
    pub fn interfaces(&self, host: &str) -> Vec<String> {
        let inner = self.lock();
        inner
            .hosts
            .get(host)
            .map(|s| s.interfaces.clone())
            .unwrap_or_default()
    }

    /// The document of `host` computed at wake counter `at`, if it is the last one and no
    /// change concerned the host since: then it is the host's document at every revision
    /// dispatched so far, and its generation says so.
    pub fn document(&self, host: &str, at: u64) -> Option<Arc<DesiredState>> {
        let inner = self.lock();
        let slot = inner.hosts.get(host)?;
        match &slot.document {
            Some((counter, doc)) if *counter == at && *slot.wake.borrow() == at => {
                if doc.generation >= inner.dispatched {
                    return Some(doc.clone());
                }
                let mut newer = DesiredState::clone(doc);
                newer.generation = inner.dispatched;
                Some(Arc::new(newer))
            }
            _ => None,
        }
    }

    /// Keeps `doc`, computed for `host` at wake counter `at` with `interfaces`.
    pub fn keep_document(
        &self,
        host: &str,
        interfaces: &[String],
        at: u64,
        doc: Arc<DesiredState>,
    ) {
        let mut inner = self.lock();
        if let Some(slot) = inner.hosts.get_mut(host) {
            if slot.interfaces == interfaces {
                slot.document = Some((at, doc));
            }
        }
    }

    /// Wakes the polls of the hosts `scopes` names.
    fn wake(&self, inner: &mut Inner, scopes: &ChangeScopes) {
        let bump = |slot: &Slot| {
            slot.wake.send_modify(|n| *n += 1);
        };
        if scopes.all {
            // Whatever changed may include agents' interfaces.
            for slot in inner.hosts.values_mut() {
                slot.reread = true;
                slot.agent_changes += 1;
                bump(slot);
            }
            return;
        }
        for host in &scopes.agents {
            if let Some(slot) = inner.hosts.get_mut(host) {
                slot.reread = true;
                slot.agent_changes += 1;
                bump(slot);
            }
        }
        for host in &scopes.hosts {
            if let Some(slot) = inner.hosts.get(host) {
                bump(slot);
            }
        }
        for name in &scopes.interfaces {
            for host in inner.by_interface.get(name).into_iter().flatten() {
                if let Some(slot) = inner.hosts.get(host) {
                    bump(slot);
                }
            }
        }
    }

    /// Wakes the polls of `host` (its agent reported other interfaces).
    pub fn wake_host(&self, host: &str) {
        let mut inner = self.lock();
        let scopes = ChangeScopes {
            hosts: vec![host.to_owned()],
            ..ChangeScopes::default()
        };
        self.wake(&mut inner, &scopes);
    }

    /// Records that `host`'s agent was seen at `now`, and what it reported.
    pub fn seen(
        &self,
        host: &str,
        now: i64,
        applied: Option<u64>,
        report: Option<serde_json::Value>,
    ) {
        let mut inner = self.lock();
        let s = inner.unwritten.entry(host.to_owned()).or_default();
        s.last_seen = s.last_seen.max(now);
        if let Some(g) = applied {
            s.applied_generation = s.applied_generation.max(g);
        }
        if report.is_some() {
            s.report = report;
        }
    }

    /// `record` with what this server saw of the agent since it was written down.
    pub fn overlay(&self, mut record: AgentRecord) -> AgentRecord {
        let inner = self.lock();
        for s in inner.sightings(&record.host_id) {
            record.last_seen = record.last_seen.max(s.last_seen);
            record.applied_generation = record.applied_generation.max(s.applied_generation);
            if let Some(r) = &s.report {
                record.report = r.clone();
            }
        }
        record
    }

    /// [`Fleet::overlay`] of an agent known by its host, last seen and applied generation only.
    pub fn overlay_capturing(&self, mut agent: CapturingAgent) -> CapturingAgent {
        let inner = self.lock();
        for s in inner.sightings(&agent.host_id) {
            agent.last_seen = agent.last_seen.max(s.last_seen);
            agent.applied_generation = agent.applied_generation.max(s.applied_generation);
        }
        agent
    }

    /// Writes the sightings down (in a few statements, whatever their number).
    pub async fn flush(&self) -> tmirror_store::StoreResult<()> {
        let batch: Vec<(String, Sighting)> = {
            let mut inner = self.lock();
            let taken = std::mem::take(&mut inner.unwritten);
            inner.writing = taken.clone();
            taken.into_iter().collect()
        };
        if batch.is_empty() {
            return Ok(());
        }
        let seen: Vec<AgentSeen> = batch
            .iter()
            .map(|(host, s)| AgentSeen {
                host_id: host.clone(),
                last_seen: s.last_seen,
                applied_generation: s.applied_generation,
                report: s.report.clone(),
            })
            .collect();
        let written = async { self.store.agent_data().await?.flush_seen(&seen).await }.await;
        let mut inner = self.lock();
        let writing = std::mem::take(&mut inner.writing);
        if written.is_err() {
            // Kept for the next flush, merged with what came since.
            for (host, old) in writing {
                let s = inner.unwritten.entry(host).or_default();
                s.last_seen = s.last_seen.max(old.last_seen);
                s.applied_generation = s.applied_generation.max(old.applied_generation);
                if s.report.is_none() {
                    s.report = old.report;
                }
            }
        }
        written
    }

    /// How many times changes woke `host`'s polls (0 for a host no poll waited for).
    pub fn wakeups(&self, host: &str) -> u64 {
        self.lock().hosts.get(host).map_or(0, |s| *s.wake.borrow())
    }

    /// The revision whose scopes were dispatched last.
    pub fn dispatched(&self) -> u64 {
        self.lock().dispatched
    }

    /// Dispatches the scopes of the revisions up to the last one this server knows of, if
    /// that was not done yet: afterwards, every host's wake counter and kept document account
    /// for every change up to it (a poll calls it first, so that it never answers a document
    /// older than a change whose commit it could know of).
    pub async fn catch_up(&self) {
        let upto = *self.store.revisions().borrow();
        if self.dispatched() >= upto {
            return;
        }
        let _turn = self.dispatching.lock().await;
        let after = self.dispatched();
        if after >= upto {
            return;
        }
        let scopes = async {
            self.store
                .agent_data()
                .await?
                .change_scopes(after, upto)
                .await
        }
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read which hosts changed; waking every poll");
            ChangeScopes {
                all: true,
                ..ChangeScopes::default()
            }
        });
        let mut inner = self.lock();
        self.wake(&mut inner, &scopes);
        inner.dispatched = inner.dispatched.max(upto);
    }
}

/// `host`'s slot, made if it has none.
fn slot<'a>(inner: &'a mut Inner, host: &str) -> &'a mut Slot {
    inner.hosts.entry(host.to_owned()).or_insert_with(|| Slot {
        wake: watch::channel(0).0,
        interfaces: Vec::new(),
        reread: true,
        agent_changes: 0,
        document: None,
    })
}

/// Follows the revision feed: reads the scopes of each batch of new revisions (one query) and
/// wakes the polls of the hosts they concern.
async fn dispatch(fleet: Weak<Fleet>, mut feed: watch::Receiver<u64>) {
    while feed.changed().await.is_ok() {
        feed.borrow_and_update();
        let Some(fleet) = fleet.upgrade() else {
            return;
        };
        fleet.catch_up().await;
    }
}

/// Writes the sightings down every `every`.
async fn flush_periodically(fleet: Weak<Fleet>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(fleet) = fleet.upgrade() else {
            return;
        };
        if let Err(e) = fleet.flush().await {
            tracing::warn!(error = %e, "cannot write the agents' sightings down; trying again");
        }
    }
}
