//! Filters: named sets of ingress and egress rules.

use std::collections::HashMap;

use tmirror_model::*;
use tmirror_store::{FilterField, ListQuery, Page, Reads};

use super::{Service, ServiceResult, Writer};

/// A new filter.
#[derive(Clone, Debug, Default)]
pub struct FilterCreate {
    pub name: String,
    pub description: String,
}

/// Changes to a filter; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct FilterUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
}

/// Groups rules under their filters, each direction in ascending priority.
fn with_rules(filters: Vec<Filter>, rules: Vec<FilterRule>) -> Vec<FilterWithRules> {
    let mut by_filter: HashMap<FilterId, (Vec<FilterRule>, Vec<FilterRule>)> = HashMap::new();
    for rule in rules {
        let entry = by_filter.entry(rule.filter_id).or_default();
        match rule.direction {
            Direction::Ingress => entry.0.push(rule),
            Direction::Egress => entry.1.push(rule),
        }
    }
    filters
        .into_iter()
        .map(|filter| {
            let (mut ingress_rules, mut egress_rules) =
                by_filter.remove(&filter.id).unwrap_or_default();
            ingress_rules.sort_by_key(|r| r.priority);
            egress_rules.sort_by_key(|r| r.priority);
            FilterWithRules {
                filter,
                ingress_rules,
                egress_rules,
            }
        })
        .collect()
}

impl Service {
    pub async fn filter_show(
        &self,
        project: &ProjectId,
        id: FilterId,
    ) -> ServiceResult<FilterWithRules> {
        show(&mut *self.store.read().await?, project, id).await
    }

    pub async fn filter_list(
        &self,
        project: &ProjectId,
        q: &ListQuery<FilterField>,
    ) -> ServiceResult<Page<FilterWithRules>> {
        let mut r = self.store.read().await?;
        let page = r.list_filters(project, q).await?;
        let ids: Vec<FilterId> = page.items.iter().map(|f| f.id).collect();
        let rules = r.rules_of_filters(&ids).await?;
        Ok(Page {
            items: with_rules(page.items, rules),
            more: page.more,
        })
    }

    /// How many filters the whole list `q` has (for the totals of Alibaba's lists).
    pub async fn filter_count(
        &self,
        project: &ProjectId,
        q: &ListQuery<FilterField>,
    ) -> ServiceResult<u64> {
        let mut r = self.store.read().await?;
        Ok(r.count_filters(project, q).await?)
    }
}

/// A filter with its rules, read in `r`.
async fn show<R: Reads + ?Sized>(
    r: &mut R,
    project: &ProjectId,
    id: FilterId,
) -> ServiceResult<FilterWithRules> {
    let filter = r
        .get_filter(project, id)
        .await?
        .ok_or_else(|| DomainError::not_found(ResourceKind::Filter, id))?;
    let rules = r.rules_of_filters(&[id]).await?;
    Ok(with_rules(vec![filter], rules)
        .pop()
        .expect("one filter in, one out"))
}

/// In the caller's transaction; [`Service`] runs each in one of its own.
impl Writer<'_> {
    /// [`Service::filter_show`], in the caller's transaction.
    pub async fn filter_show(&mut self, id: FilterId) -> ServiceResult<FilterWithRules> {
        let project = &self.actor.project.clone();
        show(self.tx, project, id).await
    }

    pub async fn filter_create(&mut self, input: FilterCreate) -> ServiceResult<FilterWithRules> {
        let project = &self.actor.project.clone();
        self.check_room(project, ResourceKind::Filter, Quota::FiltersPerProject)
            .await?;
        let now = Timestamp::now();
        let filter = Filter {
            id: FilterId::new(),
            project_id: project.clone(),
            name: input.name,
            description: input.description,
            created_at: now,
            updated_at: now,
        };
        let tx = &mut *self.tx;
        tx.put_filter(&filter).await?;
        Ok(FilterWithRules {
            filter,
            ingress_rules: Vec::new(),
            egress_rules: Vec::new(),
        })
    }

    pub async fn filter_update(
        &mut self,
        id: FilterId,
        input: FilterUpdate,
    ) -> ServiceResult<FilterWithRules> {
        let project = &self.actor.project.clone();
        let tx = &mut *self.tx;
        let mut filter = tx
            .get_filter(project, id)
            .await?
            .ok_or_else(|| DomainError::not_found(ResourceKind::Filter, id))?;
        if let Some(v) = input.name {
            filter.name = v;
        }
        if let Some(v) = input.description {
            filter.description = v;
        }
        filter.updated_at = Timestamp::now();
        tx.put_filter(&filter).await?;
        let rules = tx.rules_of_filters(&[id]).await?;
        Ok(with_rules(vec![filter], rules)
            .pop()
            .expect("one filter in, one out"))
    }

    /// A filter that a session uses cannot be deleted; deleting a filter deletes its rules.
    pub async fn filter_delete(&mut self, id: FilterId) -> ServiceResult<()> {
        let project = &self.actor.project.clone();
        let tx = &mut *self.tx;
        if tx.get_filter(project, id).await?.is_none() {
            return Err(DomainError::not_found(ResourceKind::Filter, id).into());
        }
        if let Some(by) = tx.sessions_with_filter(id).await?.first() {
            return Err(DomainError::InUse {
                kind: ResourceKind::Filter,
                id: id.to_string(),
                by: by.to_string(),
            }
            .into());
        }
        tx.delete_filter(project, id).await?;
        Ok(())
    }
}
