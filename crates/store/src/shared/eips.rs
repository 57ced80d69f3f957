//! Elastic IPs and their pools, for both back-ends (a template: see `crate::shared`).

use std::ops::DerefMut;

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row as _};
use tmirror_model::*;

use super::{db_err, Db, Ops, TxState, D};
use crate::rows;
use crate::shared::{to_json, Dialect};
use crate::{EipReads, EipWrites, StoreResult};

type Conn = <Db as sqlx::Database>::Connection;

/// The wake-up scopes of the gateway hosts of the pools the selected EIPs (`e`) come from.
const EIP_HOSTS: &str = "SELECT DISTINCT $1, 'host:' || p.host_id FROM eip_pools p \
    JOIN eips e ON e.pool_id = p.id WHERE p.host_id <> '' AND ";

impl Ops<TxState> {
    /// Records that this transaction concerns the gateway hosts of the EIPs `condition`
    /// selects (with `$2` bound to `arg`).
    pub(super) async fn scope_eip_hosts(
        &mut self,
        condition: &str,
        arg: String,
    ) -> StoreResult<()> {
        let rev = self.revision().await?;
        let sql = format!(
            "INSERT INTO revision_scopes (revision, scope) {EIP_HOSTS}{condition} \
             ON CONFLICT DO NOTHING"
        );
        sqlx::query(&sql)
            .bind(rev)
            .bind(arg)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

#[async_trait]
impl<C: DerefMut<Target = Conn> + Send> EipReads for Ops<C> {
    async fn eip_pool(&mut self, id: &str) -> StoreResult<Option<EipPool>> {
        let row = sqlx::query("SELECT * FROM eip_pools WHERE id = $1")
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::eip_pool).transpose()
    }

    async fn eip_pools(&mut self) -> StoreResult<Vec<EipPool>> {
        let found = sqlx::query("SELECT * FROM eip_pools ORDER BY seq")
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        found.iter().map(rows::eip_pool).collect()
    }

    async fn get_eip(&mut self, project: &ProjectId, id: EipId) -> StoreResult<Option<Eip>> {
        let row = sqlx::query("SELECT * FROM eips WHERE id = $1 AND project_id = $2")
            .bind(id.to_string())
            .bind(project.as_str())
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::eip).transpose()
    }

    async fn list_eips(&mut self, project: &ProjectId) -> StoreResult<Vec<Eip>> {
        let found = sqlx::query("SELECT * FROM eips WHERE project_id = $1 ORDER BY seq")
            .bind(project.as_str())
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        found.iter().map(rows::eip).collect()
    }

    async fn eips_in_pool(&mut self, pool: &str) -> StoreResult<Vec<Eip>> {
        let found = sqlx::query("SELECT * FROM eips WHERE pool_id = $1 ORDER BY seq")
            .bind(pool)
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        found.iter().map(rows::eip).collect()
    }

    async fn eips_of_port(&mut self, port: PortId) -> StoreResult<Vec<EipId>> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM eips WHERE port_id = $1 ORDER BY seq")
                .bind(port.to_string())
                .fetch_all(self.conn())
                .await
                .map_err(db_err)?;
        ids.into_iter().map(crate::shared::parse_id).collect()
    }

    async fn sessions_with_eip_source(&mut self, eip: EipId) -> StoreResult<Vec<SessionId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT session_id FROM session_eip_sources WHERE eip_id = $1 ORDER BY session_id",
        )
        .bind(eip.to_string())
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        ids.into_iter().map(crate::shared::parse_id).collect()
    }

    async fn eip_gateways(
        &mut self,
        project: &ProjectId,
        ids: &[EipId],
    ) -> StoreResult<Vec<(EipId, String)>> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let mut found = Vec::new();
        for chunk in ids.chunks(D::IN_CHUNK) {
            let mut b = QueryBuilder::<Db>::new(
                "SELECT e.id, p.host_id FROM eips e JOIN eip_pools p ON p.id = e.pool_id \
                 WHERE p.host_id <> '' AND e.project_id = ",
            );
            b.push_bind(project.as_str());
            b.push(" AND e.id");
            D::push_in(&mut b, chunk);
            for row in b.build().fetch_all(self.conn()).await.map_err(db_err)? {
                let id: String = row.try_get(0).map_err(db_err)?;
                found.push((
                    crate::shared::parse_id(id)?,
                    row.try_get(1).map_err(db_err)?,
                ));
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl EipWrites for Ops<TxState> {
    async fn put_eip_pool(&mut self, pool: &EipPool) -> StoreResult<()> {
        // The gateway it was bound to loses the pool's captures, the new one gains them.
        self.scope_eip_hosts("p.id = $2", pool.id.clone()).await?;
        sqlx::query(
            "INSERT INTO eip_pools (id, cidrs, host_id, interface_name, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET cidrs = excluded.cidrs, host_id = excluded.host_id,
                interface_name = excluded.interface_name",
        )
        .bind(&pool.id)
        .bind(to_json(&pool.cidrs))
        .bind(&pool.host_id)
        .bind(&pool.interface_name)
        .bind(pool.created_at)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        self.scope_eip_hosts("p.id = $2", pool.id.clone()).await?;
        Ok(())
    }

    async fn delete_eip_pool(&mut self, id: &str) -> StoreResult<bool> {
        self.revision().await?;
        let done = sqlx::query("DELETE FROM eip_pools WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn put_eip(&mut self, e: &Eip) -> StoreResult<()> {
        let rev = self.revision().await?;
        sqlx::query(
            "INSERT INTO eips (id, project_id, pool_id, address, name, port_id, bandwidth,
                created_at, updated_at, revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, port_id = excluded.port_id,
                bandwidth = excluded.bandwidth, updated_at = excluded.updated_at,
                revision = excluded.revision",
        )
        .bind(e.id.to_string())
        .bind(e.project_id.as_str())
        .bind(&e.pool_id)
        .bind(e.address.to_string())
        .bind(&e.name)
        .bind(e.port_id.map(|p| p.to_string()))
        .bind(to_json(&e.bandwidth))
        .bind(e.created_at.0)
        .bind(e.updated_at.0)
        .bind(rev)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn delete_eip(&mut self, project: &ProjectId, id: EipId) -> StoreResult<bool> {
        self.revision().await?;
        let done = sqlx::query("DELETE FROM eips WHERE id = $1 AND project_id = $2")
            .bind(id.to_string())
            .bind(project.as_str())
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }
}
