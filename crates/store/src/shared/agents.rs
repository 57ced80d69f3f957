//! Agent bookkeeping, for both back-ends (a template: see `crate::shared`): each host's last
//! report, and the queries the desired-state document is built from.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row};
use tmirror_model::{FilterId, Port, Session, TargetType};

use super::reads::SESSION_COLUMNS;
use super::{db_err, Db, Ops, Pooled, D};
use crate::rows;
use crate::shared::Dialect;
use crate::{
    AgentData, AgentRecord, AgentSeen, AliyunTombstone, ChangeScopes, HostRows, Reads, StoreResult,
};

/// Inserts or updates an agent's record (`registered_at` kept from the first). `last_seen`
/// and `applied_generation` never go down, as in [`AgentData::flush_seen`]: a server writes
/// a record it read a moment before, and another server may have written a later report
/// of the same agent in between.
pub(super) async fn upsert_agent(
    conn: &mut <Db as sqlx::Database>::Connection,
    a: &AgentRecord,
) -> StoreResult<()> {
    let update = format!(
        "DO UPDATE SET last_seen = {0}(agents.last_seen, excluded.last_seen),
            applied_generation = {0}(agents.applied_generation, excluded.applied_generation),
            interfaces = excluded.interfaces, report = excluded.report",
        D::GREATEST
    );
    insert_agent(conn, a, &update).await
}

/// Inserts an agent's record, doing `on_conflict` (`DO …`) when it has one.
async fn insert_agent(
    conn: &mut <Db as sqlx::Database>::Connection,
    a: &AgentRecord,
    on_conflict: &str,
) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO agents (host_id, registered_at, last_seen, applied_generation, interfaces, report)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (host_id) {on_conflict}"
    ))
    .bind(&a.host_id)
    .bind(a.registered_at)
    .bind(a.last_seen)
    .bind(a.applied_generation as i64)
    .bind(serde_json::to_string(&a.interfaces).expect("strings serialise"))
    .bind(a.report.to_string())
    .execute(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

#[async_trait]
impl AgentData for Ops<Pooled> {
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
        upsert_agent(self.conn(), a).await
    }

    async fn add_agent(&mut self, a: &AgentRecord) -> StoreResult<()> {
        insert_agent(self.conn(), a, "DO NOTHING").await
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

    async fn host_rows(&mut self, host_id: &str, interfaces: &[String]) -> StoreResult<HostRows> {
        // Read first: the rows reflect at least this revision.
        let revision = self.current_revision().await?;
        let mut ports = Vec::new();
        // Ports bound to the host, then each batch of interface names (one batch but for a
        // host with hundreds of interfaces) among unbound ports, by the partial index.
        let mut b = QueryBuilder::<Db>::new("SELECT * FROM ports t WHERE t.host_id = ");
        b.push_bind(host_id.to_owned());
        let found = b.build().fetch_all(self.conn()).await.map_err(db_err)?;
        ports.extend(
            found
                .iter()
                .map(rows::port)
                .collect::<StoreResult<Vec<_>>>()?,
        );
        for chunk in interfaces.chunks(D::IN_CHUNK) {
            let mut b = QueryBuilder::<Db>::new(format!(
                "SELECT * FROM ports t WHERE t.host_id = '' AND {}",
                D::CAPTURE_NAME
            ));
            D::push_in(&mut b, chunk);
            let found = b.build().fetch_all(self.conn()).await.map_err(db_err)?;
            ports.extend(
                found
                    .iter()
                    .map(rows::port)
                    .collect::<StoreResult<Vec<_>>>()?,
            );
        }
        // The EIPs this host is the gateway of that enabled sessions mirror, with their
        // pool's external interface, and those sessions: two queries, whatever their number.
        let found = sqlx::query(
            "SELECT e.*, p.interface_name AS gateway_interface FROM eips e \
             JOIN eip_pools p ON p.id = e.pool_id WHERE p.host_id = $1 AND e.id IN \
             (SELECT ses.eip_id FROM session_eip_sources ses \
              JOIN sessions s ON s.id = ses.session_id WHERE s.enabled) ORDER BY e.seq",
        )
        .bind(host_id)
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let eips = found
            .iter()
            .map(|row| {
                Ok((
                    rows::eip(row)?,
                    row.try_get("gateway_interface").map_err(db_err)?,
                ))
            })
            .collect::<StoreResult<Vec<(tmirror_model::Eip, String)>>>()?;
        if ports.is_empty() && eips.is_empty() {
            return Ok(HostRows {
                revision,
                ..HostRows::default()
            });
        }
        let mut sessions = Vec::new();
        if !eips.is_empty() {
            let sql = format!(
                "SELECT {SESSION_COLUMNS} FROM sessions t WHERE t.enabled AND t.id IN \
                 (SELECT ses.session_id FROM session_eip_sources ses \
                  JOIN eips e ON e.id = ses.eip_id JOIN eip_pools p ON p.id = e.pool_id \
                  WHERE p.host_id = $1)"
            );
            let found = sqlx::query(&sql)
                .bind(host_id)
                .fetch_all(self.conn())
                .await
                .map_err(db_err)?;
            for row in &found {
                sessions.push(rows::session(row)?);
            }
        }
        let port_ids: Vec<String> = ports.iter().map(|p| p.id.to_string()).collect();
        for chunk in port_ids.chunks(D::IN_CHUNK) {
            let mut b = QueryBuilder::<Db>::new(format!(
                "SELECT {SESSION_COLUMNS} FROM sessions t WHERE t.enabled AND t.id IN \
                 (SELECT session_id FROM session_sources WHERE port_id"
            ));
            D::push_in(&mut b, chunk);
            b.push(")");
            let found = b.build().fetch_all(self.conn()).await.map_err(db_err)?;
            for row in &found {
                let s = rows::session(row)?;
                if !sessions.iter().any(|x: &Session| x.id == s.id) {
                    sessions.push(s);
                }
            }
        }
        sessions.sort_by_key(|s| s.priority);
        let mut filters: Vec<FilterId> = sessions.iter().map(|s| s.filter_id).collect();
        filters.sort_by_key(|f| f.to_string());
        filters.dedup();
        let rules = self.rules_of_filters(&filters).await?;
        let mut target_ids: Vec<String> = sessions
            .iter()
            .filter_map(|s| s.target.port())
            .map(|p| p.to_string())
            .collect();
        target_ids.sort();
        target_ids.dedup();
        let mut targets = Vec::new();
        for chunk in target_ids.chunks(D::IN_CHUNK) {
            let mut b = QueryBuilder::<Db>::new("SELECT * FROM ports t WHERE t.id");
            D::push_in(&mut b, chunk);
            let found = b.build().fetch_all(self.conn()).await.map_err(db_err)?;
            targets.extend(
                found
                    .iter()
                    .map(rows::port)
                    .collect::<StoreResult<Vec<_>>>()?,
            );
        }
        let mut lb_ids: Vec<String> = sessions
            .iter()
            .filter(|s| s.target.kind() == TargetType::Elb)
            .map(|s| s.target.id().to_string())
            .collect();
        lb_ids.sort();
        lb_ids.dedup();
        let load_balancers = super::load_balancers::by_ids(self.conn(), &lb_ids).await?;
        Ok(HostRows {
            revision,
            ports,
            sessions,
            rules,
            targets,
            load_balancers,
            eips,
        })
    }

    async fn change_scopes(&mut self, after: u64, upto: u64) -> StoreResult<ChangeScopes> {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT scope FROM revision_scopes WHERE revision > $1 AND revision <= $2
             UNION ALL SELECT '*' FROM meta WHERE id = 1 AND scopes_kept_after > $1",
        )
        .bind(after as i64)
        .bind(upto as i64)
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let mut scopes = ChangeScopes::default();
        for scope in found {
            if let Some(h) = scope.strip_prefix("host:") {
                scopes.hosts.push(h.to_owned());
            } else if let Some(i) = scope.strip_prefix("interface:") {
                scopes.interfaces.push(i.to_owned());
            } else if let Some(h) = scope.strip_prefix("agent:") {
                scopes.agents.push(h.to_owned());
            } else {
                scopes.all = true;
            }
        }
        for list in [
            &mut scopes.hosts,
            &mut scopes.interfaces,
            &mut scopes.agents,
        ] {
            list.sort();
            list.dedup();
        }
        Ok(scopes)
    }

    async fn flush_seen(&mut self, seen: &[AgentSeen]) -> StoreResult<()> {
        // Four parameters a row: far below either back-end's limit per statement.
        for chunk in seen.chunks(250) {
            let mut b = QueryBuilder::<Db>::new(format!(
                "UPDATE agents SET last_seen = {0}(agents.last_seen, v.column2), \
                 applied_generation = {0}(agents.applied_generation, v.column3), \
                 report = COALESCE(v.column4, agents.report) FROM (",
                D::GREATEST
            ));
            b.push_values(chunk, |mut row, a| {
                row.push_bind(a.host_id.clone())
                    .push_bind(a.last_seen)
                    .push_bind(a.applied_generation as i64)
                    .push_bind(a.report.as_ref().map(|r| r.to_string()));
            });
            b.push(") AS v WHERE agents.host_id = v.column1");
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
