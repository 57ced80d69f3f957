//! The asynchronous states the Alibaba face shows, derived from the rows' revisions, the hosts
//! of the sessions' sources and what the connected agents applied (`service::states`).

use std::collections::{HashMap, HashSet};

use tmirror_model::*;
use tmirror_store::{Reads, StoreResult};

use super::error::{bad, from_service};
use crate::http::ApiError;
use crate::service::agents::connected;
use crate::service::states::{lifecycle, Applied, Change, Lifecycle};
use crate::service::Service;

/// What the connected agents applied, now.
pub async fn applied(service: &Service) -> Result<Applied, ApiError> {
    let now = Timestamp::now().0;
    let mut applied = Applied::none();
    for a in service.agents().await.map_err(|e| from_service(e.into()))? {
        if connected(a.last_seen, now) {
            applied.report(a.host_id, a.applied_generation);
        }
    }
    Ok(applied)
}

fn change(revisions: Option<&(u64, u64)>) -> Change {
    match revisions {
        Some(&(r, c)) if r == c => Change::Created(r),
        Some(&(r, _)) => Change::Modified(r),
        None => Change::Modified(0),
    }
}

/// The hosts of each session: the hosts its sources are bound to.
pub async fn session_hosts(
    r: &mut dyn Reads,
    sessions: &[Session],
) -> StoreResult<HashMap<SessionId, HashSet<String>>> {
    let ports: Vec<String> = sessions
        .iter()
        .flat_map(|s| s.sources.iter().map(|p| p.to_string()))
        .collect();
    let hosts = r.aliyun_port_hosts(&ports).await?;
    Ok(sessions
        .iter()
        .map(|s| {
            let h = s
                .sources
                .iter()
                .filter_map(|p| hosts.get(&p.to_string()).cloned())
                .collect();
            (s.id, h)
        })
        .collect())
}

/// The state of each session.
pub async fn sessions(
    r: &mut dyn Reads,
    sessions: &[Session],
    applied: &Applied,
) -> StoreResult<HashMap<SessionId, Lifecycle>> {
    let ids: Vec<String> = sessions.iter().map(|s| s.id.to_string()).collect();
    let revisions = r.aliyun_revisions("session", &ids).await?;
    let hosts = session_hosts(r, sessions).await?;
    Ok(sessions
        .iter()
        .map(|s| {
            let c = change(revisions.get(&s.id.to_string()));
            let h = hosts[&s.id].iter().map(String::as_str);
            (s.id, lifecycle(c, h, applied))
        })
        .collect())
}

/// The hosts of the sessions that use `filter`.
async fn filter_hosts(
    r: &mut dyn Reads,
    project: &ProjectId,
    filter: FilterId,
) -> StoreResult<HashSet<String>> {
    let mut sessions = Vec::new();
    for id in r.sessions_with_filter(filter).await? {
        if let Some(s) = r.get_session(project, id).await? {
            sessions.push(s);
        }
    }
    Ok(session_hosts(r, &sessions)
        .await?
        .into_values()
        .flatten()
        .collect())
}

/// The state of each filter and of each of their rules, by canonical id.
pub async fn filters(
    r: &mut dyn Reads,
    project: &ProjectId,
    filters: &[(FilterId, Vec<RuleId>)],
    applied: &Applied,
) -> StoreResult<HashMap<String, Lifecycle>> {
    let ids: Vec<String> = filters.iter().map(|(f, _)| f.to_string()).collect();
    let rule_ids: Vec<String> = filters
        .iter()
        .flat_map(|(_, rules)| rules.iter().map(|r| r.to_string()))
        .collect();
    let revisions = r.aliyun_revisions("filter", &ids).await?;
    let rule_revisions = r.aliyun_revisions("rule", &rule_ids).await?;
    let mut out = HashMap::new();
    for (f, rules) in filters {
        let hosts = filter_hosts(r, project, *f).await?;
        let id = f.to_string();
        let state = lifecycle(
            change(revisions.get(&id)),
            hosts.iter().map(String::as_str),
            applied,
        );
        out.insert(id, state);
        for rule in rules {
            let id = rule.to_string();
            let state = lifecycle(
                change(rule_revisions.get(&id)),
                hosts.iter().map(String::as_str),
                applied,
            );
            out.insert(id, state);
        }
    }
    Ok(out)
}

fn busy(code: &str, what: &str, state: Lifecycle) -> ApiError {
    bad(
        code,
        format!(
            "the {what} is {}: its last change has not reached every connected agent yet",
            state.as_str()
        ),
    )
}

/// Refuses a change to a session whose last change is still pending.
pub async fn session_settled(
    r: &mut dyn Reads,
    project: &ProjectId,
    id: SessionId,
    applied: &Applied,
) -> Result<(), ApiError> {
    let store = |e: tmirror_store::StoreError| from_service(e.into());
    // A missing session is the service's answer to give.
    if let Some(s) = r.get_session(project, id).await.map_err(store)? {
        let state = sessions(r, std::slice::from_ref(&s), applied)
            .await
            .map_err(store)?[&id];
        if state.is_transient() {
            return Err(busy(
                "IncorrectStatus.TrafficMirrorSession",
                "session",
                state,
            ));
        }
    }
    Ok(())
}

/// Refuses a change to a filter (and, with `rule`, to that rule) whose last change is pending.
pub async fn filter_settled(
    r: &mut dyn Reads,
    project: &ProjectId,
    filter: FilterId,
    rule: Option<RuleId>,
    applied: &Applied,
) -> Result<(), ApiError> {
    let store = |e: tmirror_store::StoreError| from_service(e.into());
    let rules: Vec<RuleId> = rule.into_iter().collect();
    let states = filters(r, project, &[(filter, rules)], applied)
        .await
        .map_err(store)?;
    if let Some(rule) = rule {
        let state = states[&rule.to_string()];
        if state.is_transient() {
            return Err(busy("IncorrectStatus.TrafficMirrorRule", "rule", state));
        }
    } else {
        let state = states[&filter.to_string()];
        if state.is_transient() {
            return Err(busy("IncorrectStatus.TrafficMirrorFilter", "filter", state));
        }
    }
    Ok(())
}
