//! Asynchronous states: whether a resource's last change has reached the data plane.
//!
//! Every committed write stamps the global revision on the rows it touches. Agents report, per
//! host, the newest generation (revision) of the desired state they applied. A change is
//! *pending* while a connected agent that must apply it (one hosting a source port of the
//! session) reports an older generation; an agent that is not connected holds nothing up (it
//! catches up when it reconnects). With no connected agent, nothing is ever pending: the Alibaba
//! face shows `Created` as soon as a write committed. See `docs/aliyun.md`.

use std::collections::HashMap;

/// The lifecycle states the Alibaba face shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// What the connected agents applied: host → newest applied generation.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    hosts: HashMap<String, u64>,
}

impl Applied {
    /// No agent connected.
    pub fn none() -> Self {
        Applied::default()
    }

    /// Records an agent's report.
    pub fn report(&mut self, host: impl Into<String>, generation: u64) {
        let entry = self.hosts.entry(host.into()).or_insert(0);
        *entry = (*entry).max(generation);
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

/// The state of a resource whose change must be applied on `hosts`.
pub fn lifecycle<'h>(
    change: Change,
    hosts: impl IntoIterator<Item = &'h str>,
    applied: &Applied,
) -> Lifecycle {
    let revision = match change {
        Change::Created(r) | Change::Modified(r) | Change::Deleted(r) => r,
    };
    let pending = hosts
        .into_iter()
        .any(|h| applied.hosts.get(h).is_some_and(|&g| g < revision));
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
