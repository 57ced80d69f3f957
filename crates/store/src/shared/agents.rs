//! Agent bookkeeping, for both back-ends (a template: see `crate::shared`): each host's last
//! report, and the queries the desired-state document is built from.

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use tmirror_model::Port;

use super::{db_err, Db, Ops, D};
use crate::rows;
use crate::shared::Dialect;
use crate::{AgentData, AgentRecord, AliyunTombstone, StoreResult};

#[async_trait]
impl AgentData for Ops<PoolConnection<Db>> {
    async fn current_revision(&mut self) -> StoreResult<u64> {
        let r: i64 = sqlx::query_scalar("SELECT revision FROM meta WHERE id = 1")
            .fetch_one(self.conn())
            .await
            .map_err(db_err)?;
        Ok(r as u64)
    }

    async fn ports_on_host(&mut self, host_id: &str) -> StoreResult<Vec<Port>> {
        let found = sqlx::query("SELECT * FROM ports WHERE host_id = $1 ORDER BY seq")
            .bind(host_id)
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        found.iter().map(rows::port).collect()
    }

    async fn unbound_ports(&mut self) -> StoreResult<Vec<Port>> {
        let found = sqlx::query("SELECT * FROM ports WHERE host_id = '' ORDER BY seq")
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        found.iter().map(rows::port).collect()
    }

    async fn put_agent(&mut self, a: &AgentRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO agents (host_id, registered_at, last_seen, applied_generation, interfaces, report)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (host_id) DO UPDATE SET last_seen = excluded.last_seen,
                applied_generation = excluded.applied_generation,
                interfaces = excluded.interfaces, report = excluded.report",
        )
        .bind(&a.host_id)
        .bind(a.registered_at)
        .bind(a.last_seen)
        .bind(a.applied_generation as i64)
        .bind(serde_json::to_string(&a.interfaces).expect("strings serialise"))
        .bind(a.report.to_string())
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn agents(&mut self) -> StoreResult<Vec<AgentRecord>> {
        let sql = format!("SELECT * FROM agents ORDER BY host_id{}", D::BYTEWISE);
        let found = sqlx::query(&sql)
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        found.iter().map(rows::agent).collect()
    }

    async fn agent(&mut self, host_id: &str) -> StoreResult<Option<AgentRecord>> {
        let row = sqlx::query("SELECT * FROM agents WHERE host_id = $1")
            .bind(host_id)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::agent).transpose()
    }

    async fn aliyun_tombstones_after(
        &mut self,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<AliyunTombstone>> {
        let sql = format!(
            "SELECT id, kind, revision, view, hosts FROM aliyun_tombstones
             WHERE id{b} > $1 ORDER BY id{b} LIMIT $2",
            b = D::BYTEWISE
        );
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        rows.iter().map(rows::tombstone).collect()
    }

    async fn aliyun_forget_tombstones(&mut self, ids: &[String]) -> StoreResult<()> {
        for chunk in ids.chunks(D::IN_CHUNK) {
            let mut b = sqlx::QueryBuilder::<Db>::new("DELETE FROM aliyun_tombstones WHERE id");
            D::push_in(&mut b, chunk);
            b.build().execute(self.conn()).await.map_err(db_err)?;
        }
        Ok(())
    }

    async fn set_agent_last_seen(&mut self, host_id: &str, last_seen: i64) -> StoreResult<()> {
        sqlx::query("UPDATE agents SET last_seen = $1 WHERE host_id = $2")
            .bind(last_seen)
            .bind(host_id)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
