//! Writes, for both back-ends (a template: see `crate::shared`). Every write first takes the
//! transaction's revision (bumping the global one once per transaction) and stamps it on the
//! rows it touches.

use async_trait::async_trait;
use tmirror_model::*;

use super::{db_err, Db, Ops, TxState, D};
use crate::shared::{port_scope, protocol_key, to_json};
use crate::{AgentRecord, StoreResult, WriteTx};

/// Wake-up scopes of this many revisions are kept...
const SCOPES_KEPT: i64 = 10_000;
/// ...and older ones forgotten every this many revisions.
const SCOPES_FORGET_EVERY: i64 = 1_000;

/// The ports (`t`) of one port id.
pub(super) const PORT: &str = "FROM ports t WHERE t.id = $2";
/// The sources of the enabled sessions that `{}` selects (`s`).
const SOURCES_OF: &str = "FROM ports t JOIN session_sources ss ON ss.port_id = t.id \
    JOIN sessions s ON s.id = ss.session_id WHERE s.enabled AND ";

/// The EIP sources (`e`) of the session `$2`.
const SESSION_EIPS: &str =
    "e.id IN (SELECT ses.eip_id FROM session_eip_sources ses WHERE ses.session_id = $2)";

/// The EIP sources (`e`) of the enabled sessions that `{}` selects (`s`).
pub(super) fn eip_sources_of(condition: &str) -> String {
    format!(
        "e.id IN (SELECT ses.eip_id FROM session_eip_sources ses \
         JOIN sessions s ON s.id = ses.session_id WHERE s.enabled AND {condition})"
    )
}

fn sources_of(condition: &str) -> String {
    format!("{SOURCES_OF}{condition}")
}

impl Ops<TxState> {
    /// The revision of this transaction, bumping the global one on first use.
    pub(super) async fn revision(&mut self) -> StoreResult<i64> {
        if let Some(r) = self.conn.revision {
            return Ok(r);
        }
        let r: i64 = sqlx::query_scalar(
            "UPDATE meta SET revision = revision + 1 WHERE id = 1 RETURNING revision",
        )
        .fetch_one(&mut *self.conn.tx)
        .await
        .map_err(db_err)?;
        self.conn.revision = Some(r);
        if r % SCOPES_FORGET_EVERY == 0 && r > SCOPES_KEPT {
            // Forget old wake-up scopes now and then (a server lagging this far wakes all).
            let below = r - SCOPES_KEPT;
            sqlx::query("DELETE FROM revision_scopes WHERE revision <= $1")
                .bind(below)
                .execute(&mut *self.conn.tx)
                .await
                .map_err(db_err)?;
            sqlx::query("UPDATE meta SET scopes_kept_after = $1 WHERE id = 1")
                .bind(below)
                .execute(&mut *self.conn.tx)
                .await
                .map_err(db_err)?;
        }
        Ok(r)
    }

    /// Records that this transaction concerns the hosts where the ports that `from_where`
    /// selects (`t`, with `$2` bound to `arg`) are captured, as they are now: called before a
    /// change for the hosts it leaves and after it for those it reaches.
    pub(super) async fn scope_ports(&mut self, from_where: &str, arg: String) -> StoreResult<()> {
        let rev = self.revision().await?;
        let sql = format!(
            "INSERT INTO revision_scopes (revision, scope) SELECT DISTINCT $1, {} {from_where} \
             ON CONFLICT DO NOTHING",
            port_scope::<D>()
        );
        sqlx::query(&sql)
            .bind(rev)
            .bind(arg)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Records that this transaction concerns `host` itself (its enrolment).
    pub(super) async fn scope_host(&mut self, host: &str) -> StoreResult<()> {
        let rev = self.revision().await?;
        sqlx::query(
            "INSERT INTO revision_scopes (revision, scope) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(rev)
        .bind(format!("host:{host}"))
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Deletes the resource of `project` with `id` from `table`; whether there was one.
    pub(super) async fn delete(
        &mut self,
        table: &str,
        project: &ProjectId,
        id: String,
    ) -> StoreResult<bool> {
        self.revision().await?;
        let sql = format!("DELETE FROM {table} WHERE id = $1 AND project_id = $2");
        let done = sqlx::query(&sql)
            .bind(id)
            .bind(project.as_str())
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }
}

impl Ops<TxState> {
    /// Brings the port's rows of `port_addresses` in step with its network and fixed IPs, in
    /// the transaction that writes the port: the rows it no longer has go, the new ones come
    /// (a duplicate in the network fails the unique index, `port_address`). Rows that stay
    /// are left alone, so a legacy duplicate (see the migration) keeps its mark.
    async fn index_addresses(&mut self, p: &Port) -> StoreResult<()> {
        let port_id = p.id.to_string();
        let mut wanted: Vec<String> = Vec::new();
        for a in p.fixed_ips.iter().map(|f| f.ip_address.to_string()) {
            if !wanted.contains(&a) {
                wanted.push(a);
            }
        }
        let held: Vec<(String, String)> =
            sqlx::query_as("SELECT network_id, address FROM port_addresses WHERE port_id = $1")
                .bind(&port_id)
                .fetch_all(self.conn())
                .await
                .map_err(db_err)?;
        for (network, address) in &held {
            if *network != p.network_id || !wanted.contains(address) {
                sqlx::query("DELETE FROM port_addresses WHERE port_id = $1 AND address = $2")
                    .bind(&port_id)
                    .bind(address)
                    .execute(self.conn())
                    .await
                    .map_err(db_err)?;
            }
        }
        for address in wanted {
            let kept = held
                .iter()
                .any(|(n, a)| *n == p.network_id && *a == address);
            if kept {
                continue;
            }
            sqlx::query(
                "INSERT INTO port_addresses (port_id, network_id, address) VALUES ($1, $2, $3)",
            )
            .bind(&port_id)
            .bind(&p.network_id)
            .bind(&address)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        }
        Ok(())
    }
}

#[async_trait]
impl WriteTx for Ops<TxState> {
    async fn put_port(&mut self, p: &Port) -> StoreResult<()> {
        let rev = self.revision().await?;
        // The port's host before and after; the hosts of sessions aimed at it (its address).
        self.scope_ports(PORT, p.id.to_string()).await?;
        sqlx::query(
            "INSERT INTO ports (id, project_id, name, network_id, admin_state_up, mac_address, fixed_ips,
                device_id, device_owner, status, security_groups, host_id, binding_profile,
                created_at, updated_at, revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, network_id = excluded.network_id,
                admin_state_up = excluded.admin_state_up, mac_address = excluded.mac_address,
                fixed_ips = excluded.fixed_ips, device_id = excluded.device_id,
                device_owner = excluded.device_owner, status = excluded.status,
                security_groups = excluded.security_groups, host_id = excluded.host_id,
                binding_profile = excluded.binding_profile, updated_at = excluded.updated_at,
                revision = excluded.revision",
        )
        .bind(p.id.to_string())
        .bind(p.project_id.as_str())
        .bind(&p.name)
        .bind(&p.network_id)
        .bind(p.admin_state_up)
        .bind(&p.mac_address)
        .bind(to_json(&p.fixed_ips))
        .bind(&p.device_id)
        .bind(&p.device_owner)
        .bind(&p.status)
        .bind(to_json(&p.security_groups))
        .bind(&p.host_id)
        .bind(to_json(&p.binding_profile))
        .bind(p.created_at.0)
        .bind(p.updated_at.0)
        .bind(rev)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        self.index_addresses(p).await?;
        self.scope_ports(PORT, p.id.to_string()).await?;
        self.scope_ports(&sources_of("s.target_id = $2"), p.id.to_string())
            .await?;
        self.scope_eip_hosts(&eip_sources_of("s.target_id = $2"), p.id.to_string())
            .await?;
        Ok(())
    }

    async fn delete_port(&mut self, project: &ProjectId, id: PortId) -> StoreResult<bool> {
        self.scope_ports(PORT, id.to_string()).await?;
        self.scope_ports(&sources_of("s.target_id = $2"), id.to_string())
            .await?;
        self.scope_eip_hosts(&eip_sources_of("s.target_id = $2"), id.to_string())
            .await?;
        self.delete("ports", project, id.to_string()).await
    }

    async fn put_filter(&mut self, f: &Filter) -> StoreResult<()> {
        let rev = self.revision().await?;
        sqlx::query(
            "INSERT INTO filters (id, project_id, name, description, created_at, updated_at, revision,
                created_revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description,
                updated_at = excluded.updated_at, revision = excluded.revision",
        )
        .bind(f.id.to_string())
        .bind(f.project_id.as_str())
        .bind(&f.name)
        .bind(&f.description)
        .bind(f.created_at.0)
        .bind(f.updated_at.0)
        .bind(rev)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn delete_filter(&mut self, project: &ProjectId, id: FilterId) -> StoreResult<bool> {
        // Rules go with their filter (ON DELETE CASCADE).
        self.delete("filters", project, id.to_string()).await
    }

    async fn put_rule(&mut self, r: &FilterRule) -> StoreResult<()> {
        let rev = self.revision().await?;
        // The hosts of the enabled sessions that use the filter.
        self.scope_ports(&sources_of("s.filter_id = $2"), r.filter_id.to_string())
            .await?;
        self.scope_eip_hosts(&eip_sources_of("s.filter_id = $2"), r.filter_id.to_string())
            .await?;
        let m = &r.matches;
        sqlx::query(
            "INSERT INTO rules (id, project_id, filter_id, direction, priority, action, ethertype,
                protocol, protocol_spelling, source_cidr, destination_cidr, source_port_range,
                destination_port_range, description, created_at, updated_at, revision, created_revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17)
             ON CONFLICT (id) DO UPDATE SET priority = excluded.priority, action = excluded.action,
                ethertype = excluded.ethertype, protocol = excluded.protocol,
                protocol_spelling = excluded.protocol_spelling, source_cidr = excluded.source_cidr,
                destination_cidr = excluded.destination_cidr,
                source_port_range = excluded.source_port_range,
                destination_port_range = excluded.destination_port_range,
                description = excluded.description, updated_at = excluded.updated_at,
                revision = excluded.revision",
        )
        .bind(r.id.to_string())
        .bind(r.project_id.as_str())
        .bind(r.filter_id.to_string())
        .bind(r.direction.as_str())
        .bind(i64::from(r.priority))
        .bind(r.action.as_str())
        .bind(m.ethertype.as_str())
        .bind(protocol_key(m.protocol))
        .bind(&r.protocol_spelling)
        .bind(m.source_cidr.map(|c| c.to_string()))
        .bind(m.destination_cidr.map(|c| c.to_string()))
        .bind(m.source_port_range.map(|p| p.to_string()))
        .bind(m.destination_port_range.map(|p| p.to_string()))
        .bind(&r.description)
        .bind(r.created_at.0)
        .bind(r.updated_at.0)
        .bind(rev)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn delete_rule(&mut self, project: &ProjectId, id: RuleId) -> StoreResult<bool> {
        self.scope_ports(
            &sources_of("s.filter_id = (SELECT filter_id FROM rules WHERE id = $2)"),
            id.to_string(),
        )
        .await?;
        self.scope_eip_hosts(
            &eip_sources_of("s.filter_id = (SELECT filter_id FROM rules WHERE id = $2)"),
            id.to_string(),
        )
        .await?;
        self.delete("rules", project, id.to_string()).await
    }

    async fn put_session(&mut self, s: &Session) -> StoreResult<()> {
        let rev = self.revision().await?;
        // The hosts of its sources before (if it was enabled) and after (if it is).
        let session_sources = sources_of("s.id = $2");
        self.scope_ports(&session_sources, s.id.to_string()).await?;
        self.scope_eip_hosts(SESSION_EIPS, s.id.to_string()).await?;
        sqlx::query(
            "INSERT INTO sessions (id, project_id, name, description, filter_id, target_id, target_type,
                vni, packet_length, priority, enabled, source_type, created_at, updated_at, revision,
                created_revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description,
                filter_id = excluded.filter_id, target_id = excluded.target_id,
                target_type = excluded.target_type, vni = excluded.vni,
                packet_length = excluded.packet_length, priority = excluded.priority,
                enabled = excluded.enabled, source_type = excluded.source_type,
                updated_at = excluded.updated_at, revision = excluded.revision",
        )
        .bind(s.id.to_string())
        .bind(s.project_id.as_str())
        .bind(&s.name)
        .bind(&s.description)
        .bind(s.filter_id.to_string())
        .bind(s.target.id().to_string())
        .bind(s.target.kind().as_str())
        .bind(i64::from(s.vni))
        .bind(i64::from(s.packet_length))
        .bind(i64::from(s.priority))
        .bind(s.enabled)
        .bind(s.sources.source_type().as_str())
        .bind(s.created_at.0)
        .bind(s.updated_at.0)
        .bind(rev)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        for table in ["session_sources", "session_eip_sources"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE session_id = $1"))
                .bind(s.id.to_string())
                .execute(self.conn())
                .await
                .map_err(db_err)?;
        }
        let id = s.id.to_string();
        let sources: Vec<(i64, String)> = (0..).zip(s.sources.ids()).collect();
        // Each type of source has its own table, whose foreign key checks that it exists.
        let insert = match s.sources.source_type() {
            SourceType::Eni => "INSERT INTO session_sources (session_id, port_id, position) ",
            SourceType::Eip => "INSERT INTO session_eip_sources (session_id, eip_id, position) ",
        };
        // A few hundred rows a statement keep it under either back-end's limit of parameters.
        for chunk in sources.chunks(500) {
            let mut b = sqlx::QueryBuilder::<Db>::new(insert);
            b.push_values(chunk, |mut row, (position, port)| {
                row.push_bind(id.clone())
                    .push_bind(port.clone())
                    .push_bind(*position);
            });
            b.build().execute(self.conn()).await.map_err(db_err)?;
        }
        self.scope_ports(&session_sources, s.id.to_string()).await?;
        self.scope_eip_hosts(SESSION_EIPS, s.id.to_string()).await?;
        Ok(())
    }

    async fn delete_session(&mut self, project: &ProjectId, id: SessionId) -> StoreResult<bool> {
        self.scope_ports(&sources_of("s.id = $2"), id.to_string())
            .await?;
        self.scope_eip_hosts(SESSION_EIPS, id.to_string()).await?;
        self.delete("sessions", project, id.to_string()).await
    }

    async fn put_agent_interfaces(&mut self, a: &AgentRecord) -> StoreResult<()> {
        let rev = self.revision().await?;
        sqlx::query(
            "INSERT INTO revision_scopes (revision, scope) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(rev)
        .bind(format!("agent:{}", a.host_id))
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        super::agents::upsert_agent(self.conn(), a).await
    }

    async fn commit(self: Box<Self>) -> StoreResult<u64> {
        self.conn.commit().await
    }
}
