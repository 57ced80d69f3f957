//! Projects, credentials, hosts and networks, for both back-ends (a template: see
//! `crate::shared`). Changes to what authenticates a caller (projects, credentials, hosts)
//! also stamp `meta.auth_revision`, which the servers' credential caches follow.

use std::ops::DerefMut;

use async_trait::async_trait;
use tmirror_model::*;

use super::{db_err, Db, Ops, TxState, D};
use crate::rows;
use crate::shared::{to_json, Dialect};
use crate::{Credential, ProjectUsage, StoreResult, TenancyReads, TenancyWrites};

type Conn = <Db as sqlx::Database>::Connection;

impl<C: DerefMut<Target = Conn> + Send> Ops<C> {
    async fn count(&mut self, sql: &str, key: &str) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(sql)
            .bind(key)
            .fetch_one(self.conn())
            .await
            .map_err(db_err)?;
        Ok(n as u64)
    }

    /// Bookkeeping of a credential's last use, outside any write transaction.
    pub(crate) async fn credential_used(&mut self, access_key: &str, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE credentials SET last_used_at = $1 WHERE access_key = $2")
            .bind(at)
            .bind(access_key)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Re-seals under the primary master key every secret that is not under it (rows written
    /// before encryption, rows under a key accepted during a rotation), after checking that
    /// every secret opens: with a wrong key nothing is written. Returns how many were
    /// re-sealed. Each row changes only if it still holds what was read (a server sharing the
    /// database may write it meanwhile); the secrets themselves do not change, so neither
    /// does the auth revision.
    pub(crate) async fn reseal_credentials(&mut self) -> StoreResult<u64> {
        let found: Vec<(String, String)> =
            sqlx::query_as("SELECT access_key, secret_key FROM credentials ORDER BY access_key")
                .fetch_all(self.conn())
                .await
                .map_err(db_err)?;
        let mut stale = Vec::new();
        for (access_key, stored) in found {
            let secret = self.sealer.open(&access_key, &stored)?;
            if !self.sealer.is_current(&stored) {
                stale.push((access_key, stored, secret));
            }
        }
        let mut resealed = 0;
        for (access_key, stored, secret) in stale {
            let sealed = self.sealer.seal(&access_key, &secret);
            let done = sqlx::query(
                "UPDATE credentials SET secret_key = $1 WHERE access_key = $2 AND secret_key = $3",
            )
            .bind(sealed)
            .bind(&access_key)
            .bind(&stored)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
            resealed += done.rows_affected();
        }
        Ok(resealed)
    }
}

#[async_trait]
impl<C: DerefMut<Target = Conn> + Send> TenancyReads for Ops<C> {
    async fn credential(&mut self, access_key: &str) -> StoreResult<Option<Credential>> {
        let row = sqlx::query("SELECT * FROM credentials WHERE access_key = $1")
            .bind(access_key)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        row.as_ref()
            .map(|r| rows::credential(r, &self.sealer))
            .transpose()
    }

    async fn operator_credential(&mut self) -> StoreResult<Option<Credential>> {
        let sql = format!(
            "SELECT * FROM credentials WHERE role = 'operator' ORDER BY {} LIMIT 1",
            D::CREDENTIAL_ORDER
        );
        let row = sqlx::query(&sql)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        row.as_ref()
            .map(|r| rows::credential(r, &self.sealer))
            .transpose()
    }

    async fn credentials(&mut self, project: Option<&ProjectId>) -> StoreResult<Vec<Credential>> {
        let sql = format!(
            "SELECT * FROM credentials WHERE $1 = '' OR project_id = $1 ORDER BY {}",
            D::CREDENTIAL_ORDER
        );
        let found = sqlx::query(&sql)
            .bind(project.map(|p| p.as_str()).unwrap_or(""))
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        found
            .iter()
            .map(|r| rows::credential(r, &self.sealer))
            .collect()
    }

    async fn auth_revision(&mut self) -> StoreResult<u64> {
        let r: i64 = sqlx::query_scalar("SELECT auth_revision FROM meta WHERE id = 1")
            .fetch_one(self.conn())
            .await
            .map_err(db_err)?;
        Ok(r as u64)
    }

    async fn project(&mut self, id: &ProjectId) -> StoreResult<Option<Project>> {
        let row = sqlx::query("SELECT * FROM projects WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::project_record).transpose()
    }

    async fn projects(&mut self) -> StoreResult<Vec<Project>> {
        let found = sqlx::query("SELECT * FROM projects ORDER BY created_at, id")
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        found.iter().map(rows::project_record).collect()
    }

    async fn project_usage(&mut self, id: &ProjectId) -> StoreResult<ProjectUsage> {
        let id = id.as_str();
        Ok(ProjectUsage {
            ports: self
                .count("SELECT count(*) FROM ports WHERE project_id = $1", id)
                .await?,
            filters: self
                .count("SELECT count(*) FROM filters WHERE project_id = $1", id)
                .await?,
            sessions: self
                .count("SELECT count(*) FROM sessions WHERE project_id = $1", id)
                .await?,
            credentials: self
                .count("SELECT count(*) FROM credentials WHERE project_id = $1", id)
                .await?,
            networks: self
                .count("SELECT count(*) FROM networks WHERE project_id = $1", id)
                .await?,
            load_balancers: self
                .count(
                    "SELECT count(*) FROM load_balancers WHERE project_id = $1",
                    id,
                )
                .await?,
            eips: self
                .count("SELECT count(*) FROM eips WHERE project_id = $1", id)
                .await?,
        })
    }

    async fn host(&mut self, host_id: &str) -> StoreResult<Option<Host>> {
        let row = sqlx::query("SELECT * FROM hosts WHERE host_id = $1")
            .bind(host_id)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::host).transpose()
    }

    async fn host_by_token_hash(&mut self, token_hash: &str) -> StoreResult<Option<Host>> {
        let row = sqlx::query("SELECT * FROM hosts WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::host).transpose()
    }

    async fn hosts(&mut self) -> StoreResult<Vec<Host>> {
        let found = sqlx::query("SELECT * FROM hosts ORDER BY host_id")
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        found.iter().map(rows::host).collect()
    }

    async fn network(&mut self, id: &str) -> StoreResult<Option<Network>> {
        let row = sqlx::query("SELECT * FROM networks WHERE id = $1")
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::network).transpose()
    }

    async fn networks(&mut self) -> StoreResult<Vec<Network>> {
        let found = sqlx::query("SELECT * FROM networks ORDER BY seq")
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        found.iter().map(rows::network).collect()
    }

    async fn ports_in_network(&mut self, network_id: &str) -> StoreResult<Vec<Port>> {
        let found = sqlx::query("SELECT * FROM ports WHERE network_id = $1 ORDER BY seq")
            .bind(network_id)
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        found.iter().map(rows::port).collect()
    }

    async fn any_port(&mut self, id: PortId) -> StoreResult<Option<Port>> {
        let row = sqlx::query("SELECT * FROM ports WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::port).transpose()
    }

    async fn ports_with_ip(&mut self, ip: &str) -> StoreResult<Vec<Port>> {
        // Through the index of `port_addresses`, not the ports' JSON: this runs in every port
        // create's write transaction.
        let found = sqlx::query(
            "SELECT * FROM ports WHERE id IN \
             (SELECT port_id FROM port_addresses WHERE address = $1) ORDER BY seq",
        )
        .bind(ip)
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        found.iter().map(rows::port).collect()
    }

    async fn ports_with_interface(&mut self, name: &str) -> StoreResult<Vec<Port>> {
        let sql = format!(
            "SELECT * FROM ports t WHERE {} = $1 ORDER BY seq",
            D::INTERFACE_NAME
        );
        let found = sqlx::query(&sql)
            .bind(name)
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        found.iter().map(rows::port).collect()
    }
}

impl Ops<TxState> {
    /// Marks this transaction as a change to what authenticates callers.
    async fn auth_changed(&mut self) -> StoreResult<()> {
        let rev = self.revision().await?;
        sqlx::query("UPDATE meta SET auth_revision = $1 WHERE id = 1")
            .bind(rev)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn delete_by(&mut self, sql: &str, key: &str) -> StoreResult<bool> {
        let done = sqlx::query(sql)
            .bind(key)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl TenancyWrites for Ops<TxState> {
    async fn put_project(&mut self, p: &Project) -> StoreResult<()> {
        self.auth_changed().await?;
        sqlx::query(
            "INSERT INTO projects (id, name, created_at, quotas) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, quotas = excluded.quotas",
        )
        .bind(p.id.as_str())
        .bind(&p.name)
        .bind(p.created_at)
        .bind(to_json(&p.quotas))
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn delete_project(&mut self, id: &ProjectId) -> StoreResult<bool> {
        self.auth_changed().await?;
        // What only the Alibaba face kept of the project goes with it.
        for table in [
            "aliyun_service",
            "aliyun_client_tokens",
            "aliyun_tags",
            "aliyun_tombstones",
            // Its resources are gone already (they reference the project): all zeros.
            "project_counts",
        ] {
            let sql = format!("DELETE FROM {table} WHERE project_id = $1");
            self.delete_by(&sql, id.as_str()).await?;
        }
        self.delete_by("DELETE FROM projects WHERE id = $1", id.as_str())
            .await
    }

    async fn put_credential(&mut self, c: &Credential) -> StoreResult<()> {
        self.auth_changed().await?;
        sqlx::query(
            "INSERT INTO credentials (access_key, secret_key, project_id, is_admin, role, enabled,
                created_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (access_key) DO UPDATE SET secret_key = excluded.secret_key,
                project_id = excluded.project_id, is_admin = excluded.is_admin,
                role = excluded.role, enabled = excluded.enabled",
        )
        .bind(&c.access_key)
        .bind(self.sealer.seal(&c.access_key, &c.secret_key))
        .bind(c.project_id.as_str())
        .bind(c.role == Role::Operator)
        .bind(c.role.as_str())
        .bind(c.enabled)
        .bind(c.created_at)
        .bind(c.last_used_at)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn delete_credential(&mut self, access_key: &str) -> StoreResult<bool> {
        self.auth_changed().await?;
        self.delete_by("DELETE FROM credentials WHERE access_key = $1", access_key)
            .await
    }

    async fn put_host(&mut self, h: &Host) -> StoreResult<()> {
        self.auth_changed().await?;
        // Its agent's poll must see a disabled or rotated credential.
        self.scope_host(&h.host_id).await?;
        sqlx::query(
            "INSERT INTO hosts (host_id, token_hash, enabled, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (host_id) DO UPDATE SET token_hash = excluded.token_hash,
                enabled = excluded.enabled",
        )
        .bind(&h.host_id)
        .bind(&h.token_hash)
        .bind(h.enabled)
        .bind(h.created_at)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn delete_host(&mut self, host_id: &str) -> StoreResult<bool> {
        self.auth_changed().await?;
        self.scope_host(host_id).await?;
        self.delete_by("DELETE FROM hosts WHERE host_id = $1", host_id)
            .await
    }

    async fn put_network(&mut self, n: &Network) -> StoreResult<()> {
        self.revision().await?;
        sqlx::query(
            "INSERT INTO networks (id, name, project_id, cidrs, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, project_id = excluded.project_id,
                cidrs = excluded.cidrs",
        )
        .bind(&n.id)
        .bind(&n.name)
        .bind(n.project_id.as_ref().map(|p| p.as_str()))
        .bind(to_json(&n.cidrs))
        .bind(n.created_at)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn delete_network(&mut self, id: &str) -> StoreResult<bool> {
        self.revision().await?;
        self.delete_by("DELETE FROM networks WHERE id = $1", id)
            .await
    }
}
