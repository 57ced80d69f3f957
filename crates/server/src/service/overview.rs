//! The read-only overview the web console shows: sessions with their filter and rules, their
//! sources and target, and their delivery; what a caller may see is decided here, once — the
//! operator sees every project, anyone else its own project only.

use std::collections::HashMap;

use tmirror_model::*;
use tmirror_store::{ListQuery, PortField, SessionField};

use super::delivery::Delivery;
use super::{Service, ServiceResult};

/// Most sessions one overview shows (the console says when there are more).
pub const OVERVIEW_LIMIT: usize = 500;

/// One session as the console shows it.
#[derive(Clone, Debug)]
pub struct SessionOverview {
    pub delivery: Delivery,
    /// `None` if the filter vanished between two reads.
    pub filter: Option<FilterWithRules>,
    /// In the session's order; a port deleted meanwhile is left out.
    pub sources: Vec<Port>,
    pub target: Option<Port>,
}

impl SessionOverview {
    pub fn session(&self) -> &Session {
        &self.delivery.session
    }
}

/// Which sessions a list shows.
#[derive(Clone, Debug, Default)]
pub struct SessionFilter {
    /// Only this project (the operator's choice; others see their own project anyway).
    pub project: Option<ProjectId>,
    /// Part of the name, case-insensitive.
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub vni: Option<u32>,
}

impl SessionFilter {
    fn keeps(&self, s: &Session) -> bool {
        self.name
            .as_ref()
            .is_none_or(|n| s.name.to_lowercase().contains(&n.to_lowercase()))
            && self.enabled.is_none_or(|e| s.enabled == e)
            && self.vni.is_none_or(|v| s.vni.get() == v)
    }
}

impl Service {
    /// The projects `actor` may see: every one for the operator, its own for anyone else.
    pub async fn visible_projects(&self, actor: &Actor) -> ServiceResult<Vec<Project>> {
        let all = self.store.read().await?.projects().await?;
        Ok(all
            .into_iter()
            .filter(|p| actor.role == Role::Operator || p.id == actor.project)
            .collect())
    }

    /// The sessions `actor` may see that `filter` keeps, oldest first per project, at most
    /// [`OVERVIEW_LIMIT`]; the flag says whether more were left out.
    pub async fn session_overviews(
        &self,
        actor: &Actor,
        filter: &SessionFilter,
    ) -> ServiceResult<(Vec<SessionOverview>, bool)> {
        let mut out = Vec::new();
        for project in self.visible_projects(actor).await? {
            if filter.project.as_ref().is_some_and(|p| p != &project.id) {
                continue;
            }
            let mut q = ListQuery::<SessionField>::all(OVERVIEW_LIMIT as u32);
            loop {
                let page = self.session_list(&project.id, &q).await?;
                for s in page.items.iter().filter(|s| filter.keeps(s)) {
                    if out.len() == OVERVIEW_LIMIT {
                        return Ok((out, true));
                    }
                    out.push(self.session_overview(actor, &project.id, s.id).await?);
                }
                match (page.more, page.items.last()) {
                    (true, Some(last)) => q.marker = Some(last.id.to_string()),
                    _ => break,
                }
            }
        }
        Ok((out, false))
    }

    /// One session of `project` as the console shows it; another project's session is
    /// answered like an unknown one (see [`Service::session_delivery`]).
    pub async fn session_overview(
        &self,
        actor: &Actor,
        project: &ProjectId,
        id: SessionId,
    ) -> ServiceResult<SessionOverview> {
        let delivery = self.session_delivery(actor, project, id).await?;
        let s = &delivery.session;
        let filter = self.filter_show(project, s.filter_id).await.ok();
        // An `eip` session's sources are elastic IPs, not ports: the overview lists none.
        let mut ids: Vec<PortId> = s.sources.ports().to_vec();
        // A load-balancer target has no port to show; the console names it by the session's
        // target.
        let target_port = match s.target {
            SessionTarget::Port(p) => Some(p),
            SessionTarget::LoadBalancer(_) => None,
        };
        ids.extend(target_port);
        let q = ListQuery {
            conditions: vec![tmirror_store::Condition {
                field: PortField::Id,
                values: ids
                    .iter()
                    .map(|p| tmirror_store::Value::Text(p.to_string()))
                    .collect(),
            }],
            marker: None,
            limit: ids.len() as u32,
        };
        let mut ports: HashMap<PortId, Port> = self
            .port_list(project, &q)
            .await?
            .items
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        let target = target_port.and_then(|p| ports.get(&p).cloned());
        let sources = s
            .sources
            .ports()
            .iter()
            .filter_map(|p| ports.remove(p))
            .collect();
        Ok(SessionOverview {
            filter,
            sources,
            target,
            delivery,
        })
    }
}
