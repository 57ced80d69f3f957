//! Several service operations, and a face's own writes, in one store transaction.
//!
//! The Alibaba face needs a create and its tags, resource group and ClientToken record to
//! commit together (or not at all), and `DryRun` to run an operation with every check and then
//! roll it back. [`Service::scope`] opens one write transaction and hands out a [`Scope`]:
//! its `service` runs the ordinary service operations (the same business rules, unchanged)
//! inside that transaction, and its [`Scope::tx`] gives the face the same transaction for its
//! own reads and writes. [`Scope::commit`] commits everything; dropping the scope rolls back.
//!
//! Inside a scope, the service's own commits are no-ops and its reads see the scope's
//! uncommitted writes.

use std::sync::Arc;

use async_trait::async_trait;
use tmirror_model::*;
use tmirror_store::*;
use tokio::sync::{watch, Mutex};

use super::{Service, ServiceResult};

type Shared = Arc<Mutex<Option<Box<dyn WriteTx>>>>;

/// One open transaction shared by the operations of a scope.
pub struct Scope {
    shared: Shared,
    /// The service, running inside the scope's transaction.
    pub service: Service,
}

impl Service {
    /// Opens a write transaction for several operations; see the module documentation.
    pub async fn scope(&self) -> ServiceResult<Scope> {
        let tx = self.store.write().await?;
        let shared: Shared = Arc::new(Mutex::new(Some(tx)));
        let store = Arc::new(ScopedStore {
            shared: shared.clone(),
            real: self.store.clone(),
        });
        Ok(Scope {
            shared,
            service: Service::new(store, self.limits),
        })
    }
}

impl Scope {
    /// The scope's transaction, for the face's own reads and writes.
    pub fn tx(&self) -> ScopedTx {
        ScopedTx {
            shared: self.shared.clone(),
        }
    }

    /// Commits everything done in the scope.
    pub async fn commit(self) -> ServiceResult<u64> {
        let tx = self.shared.lock().await.take().ok_or_else(gone)?;
        Ok(tx.commit().await?)
    }
}

fn gone() -> StoreError {
    StoreError::Config("the scope's transaction has already been committed".into())
}

/// The store the scoped service sees: every read and write goes to the shared transaction.
struct ScopedStore {
    shared: Shared,
    real: Arc<dyn Store>,
}

#[async_trait]
impl Store for ScopedStore {
    async fn read(&self) -> StoreResult<Box<dyn Reads>> {
        Ok(Box::new(ScopedTx {
            shared: self.shared.clone(),
        }))
    }

    async fn write(&self) -> StoreResult<Box<dyn WriteTx>> {
        Ok(Box::new(ScopedTx {
            shared: self.shared.clone(),
        }))
    }

    fn revisions(&self) -> watch::Receiver<u64> {
        self.real.revisions()
    }

    fn backend(&self) -> &'static str {
        self.real.backend()
    }

    /// Agent bookkeeping is not part of a request's transaction.
    async fn agent_data(&self) -> StoreResult<Box<dyn tmirror_store::AgentData>> {
        self.real.agent_data().await
    }

    async fn close(&self) {}
}

/// A handle on the scope's transaction. Its `commit` does nothing: [`Scope::commit`] commits.
pub struct ScopedTx {
    shared: Shared,
}

macro_rules! forward {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {{
        let mut guard = $self.shared.lock().await;
        let tx = guard.as_mut().ok_or_else(gone)?;
        tx.$method($($arg),*).await
    }};
}

#[async_trait]
impl Reads for ScopedTx {
    async fn credential(&mut self, access_key: &str) -> StoreResult<Option<Credential>> {
        forward!(self, credential(access_key))
    }
    async fn admin_credential(&mut self) -> StoreResult<Option<Credential>> {
        forward!(self, admin_credential())
    }
    async fn get_port(&mut self, project: &ProjectId, id: PortId) -> StoreResult<Option<Port>> {
        forward!(self, get_port(project, id))
    }
    async fn list_ports(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<PortField>,
    ) -> StoreResult<Page<Port>> {
        forward!(self, list_ports(project, q))
    }
    async fn get_filter(
        &mut self,
        project: &ProjectId,
        id: FilterId,
    ) -> StoreResult<Option<Filter>> {
        forward!(self, get_filter(project, id))
    }
    async fn list_filters(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<FilterField>,
    ) -> StoreResult<Page<Filter>> {
        forward!(self, list_filters(project, q))
    }
    async fn get_rule(
        &mut self,
        project: &ProjectId,
        id: RuleId,
    ) -> StoreResult<Option<FilterRule>> {
        forward!(self, get_rule(project, id))
    }
    async fn list_rules(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<RuleField>,
    ) -> StoreResult<Page<FilterRule>> {
        forward!(self, list_rules(project, q))
    }
    async fn rules_of_filters(&mut self, filters: &[FilterId]) -> StoreResult<Vec<FilterRule>> {
        forward!(self, rules_of_filters(filters))
    }
    async fn rule_with_priority(
        &mut self,
        filter: FilterId,
        direction: Direction,
        priority: RulePriority,
    ) -> StoreResult<Option<RuleId>> {
        forward!(self, rule_with_priority(filter, direction, priority))
    }
    async fn count_rules(&mut self, filter: FilterId, direction: Direction) -> StoreResult<u32> {
        forward!(self, count_rules(filter, direction))
    }
    async fn get_session(
        &mut self,
        project: &ProjectId,
        id: SessionId,
    ) -> StoreResult<Option<Session>> {
        forward!(self, get_session(project, id))
    }
    async fn list_sessions(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<SessionField>,
    ) -> StoreResult<Page<Session>> {
        forward!(self, list_sessions(project, q))
    }
    async fn session_with_priority(
        &mut self,
        project: &ProjectId,
        priority: SessionPriority,
    ) -> StoreResult<Option<SessionId>> {
        forward!(self, session_with_priority(project, priority))
    }
    async fn sessions_with_source(&mut self, port: PortId) -> StoreResult<Vec<SessionId>> {
        forward!(self, sessions_with_source(port))
    }
    async fn sessions_with_target(&mut self, port: PortId) -> StoreResult<Vec<SessionId>> {
        forward!(self, sessions_with_target(port))
    }
    async fn sessions_with_filter(&mut self, filter: FilterId) -> StoreResult<Vec<SessionId>> {
        forward!(self, sessions_with_filter(filter))
    }
}

#[async_trait]
impl AliyunReads for ScopedTx {
    async fn aliyun_service_opened(&mut self, project: &ProjectId) -> StoreResult<bool> {
        forward!(self, aliyun_service_opened(project))
    }
    async fn aliyun_token(
        &mut self,
        project: &ProjectId,
        token: &str,
    ) -> StoreResult<Option<AliyunToken>> {
        forward!(self, aliyun_token(project, token))
    }
    async fn aliyun_tags(
        &mut self,
        project: &ProjectId,
        resource_type: &str,
    ) -> StoreResult<Vec<AliyunTag>> {
        forward!(self, aliyun_tags(project, resource_type))
    }
    async fn aliyun_resource_groups(
        &mut self,
        project: &ProjectId,
        resource_type: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        forward!(self, aliyun_resource_groups(project, resource_type))
    }
    async fn aliyun_revisions(
        &mut self,
        kind: &str,
        ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, (u64, u64)>> {
        forward!(self, aliyun_revisions(kind, ids))
    }
    async fn aliyun_port_hosts(
        &mut self,
        ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, String>> {
        forward!(self, aliyun_port_hosts(ids))
    }
    async fn aliyun_tombstones(
        &mut self,
        project: &ProjectId,
        kind: &str,
    ) -> StoreResult<Vec<tmirror_store::AliyunTombstone>> {
        forward!(self, aliyun_tombstones(project, kind))
    }
}

#[async_trait]
impl AliyunWrites for ScopedTx {
    async fn aliyun_open_service(&mut self, project: &ProjectId, now: i64) -> StoreResult<bool> {
        forward!(self, aliyun_open_service(project, now))
    }
    async fn aliyun_use_nonce(
        &mut self,
        access_key: &str,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        forward!(self, aliyun_use_nonce(access_key, nonce, expires_at, now))
    }
    async fn aliyun_put_token(
        &mut self,
        project: &ProjectId,
        token: &str,
        record: &AliyunToken,
        now: i64,
        forget_before: i64,
    ) -> StoreResult<()> {
        forward!(
            self,
            aliyun_put_token(project, token, record, now, forget_before)
        )
    }
    async fn aliyun_set_tag(&mut self, project: &ProjectId, tag: &AliyunTag) -> StoreResult<()> {
        forward!(self, aliyun_set_tag(project, tag))
    }
    async fn aliyun_remove_tags(
        &mut self,
        project: &ProjectId,
        resource_id: &str,
        keys: Option<&[String]>,
    ) -> StoreResult<()> {
        forward!(self, aliyun_remove_tags(project, resource_id, keys))
    }
    async fn aliyun_set_resource_group(
        &mut self,
        project: &ProjectId,
        resource_type: &str,
        resource_id: &str,
        group: &str,
    ) -> StoreResult<()> {
        forward!(
            self,
            aliyun_set_resource_group(project, resource_type, resource_id, group)
        )
    }
    async fn aliyun_put_tombstone(
        &mut self,
        project: &ProjectId,
        tombstone: &tmirror_store::AliyunTombstone,
    ) -> StoreResult<()> {
        forward!(self, aliyun_put_tombstone(project, tombstone))
    }
}

#[async_trait]
impl WriteTx for ScopedTx {
    async fn put_project(&mut self, project: &ProjectId) -> StoreResult<()> {
        forward!(self, put_project(project))
    }
    async fn put_credential(&mut self, credential: &Credential) -> StoreResult<()> {
        forward!(self, put_credential(credential))
    }
    async fn put_port(&mut self, port: &Port) -> StoreResult<()> {
        forward!(self, put_port(port))
    }
    async fn delete_port(&mut self, project: &ProjectId, id: PortId) -> StoreResult<bool> {
        forward!(self, delete_port(project, id))
    }
    async fn put_filter(&mut self, filter: &Filter) -> StoreResult<()> {
        forward!(self, put_filter(filter))
    }
    async fn delete_filter(&mut self, project: &ProjectId, id: FilterId) -> StoreResult<bool> {
        forward!(self, delete_filter(project, id))
    }
    async fn put_rule(&mut self, rule: &FilterRule) -> StoreResult<()> {
        forward!(self, put_rule(rule))
    }
    async fn delete_rule(&mut self, project: &ProjectId, id: RuleId) -> StoreResult<bool> {
        forward!(self, delete_rule(project, id))
    }
    async fn put_session(&mut self, session: &Session) -> StoreResult<()> {
        forward!(self, put_session(session))
    }
    async fn delete_session(&mut self, project: &ProjectId, id: SessionId) -> StoreResult<bool> {
        forward!(self, delete_session(project, id))
    }
    async fn commit(self: Box<Self>) -> StoreResult<u64> {
        // The scope commits; the operations inside it only finish their part.
        Ok(0)
    }
}
