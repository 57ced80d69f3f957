//! Load balancers and their members, for both back-ends (a template: see `crate::shared`).
//!
//! A load balancer is one row; its members are rows of their own, in the order they were
//! added (`position`), replaced as a set on every write, as a session's sources are. The
//! health-check lease is one row that says which server checks members until when.

use std::collections::HashMap;
use std::ops::DerefMut;

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row as _};
use tmirror_model::*;

use super::writes::eip_sources_of;
use super::{db_err, Db, Ops, TxState, D};
use crate::query::{ListQuery, LoadBalancerField, Page};
use crate::shared::{parse_id, to_json, Dialect};
use crate::{LoadBalancerReads, LoadBalancerWrites, StoreError, StoreResult};

type Conn = <Db as sqlx::Database>::Connection;
type Row = <Db as sqlx::Database>::Row;

fn corrupt(col: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{col}: {e}"))
}

fn text(row: &Row, col: &str) -> StoreResult<String> {
    row.try_get(col).map_err(|e| corrupt(col, e))
}

fn int(row: &Row, col: &str) -> StoreResult<i64> {
    row.try_get(col).map_err(|e| corrupt(col, e))
}

fn flag(row: &Row, col: &str) -> StoreResult<bool> {
    row.try_get(col).map_err(|e| corrupt(col, e))
}

fn json<T: serde::de::DeserializeOwned>(row: &Row, col: &str) -> StoreResult<Option<T>> {
    let raw: Option<String> = row.try_get(col).map_err(|e| corrupt(col, e))?;
    raw.map(|s| serde_json::from_str(&s).map_err(|e| corrupt(col, e)))
        .transpose()
}

fn parsed<T: std::str::FromStr>(row: &Row, col: &str) -> StoreResult<T>
where
    T::Err: std::fmt::Display,
{
    text(row, col)?.parse().map_err(|e| corrupt(col, e))
}

fn health(s: &str) -> StoreResult<MemberHealth> {
    Ok(match s {
        "NO_MONITOR" => MemberHealth::NoMonitor,
        "INITIAL" => MemberHealth::Initial,
        "ONLINE" => MemberHealth::Online,
        "OFFLINE" => MemberHealth::Offline,
        other => return Err(corrupt("operating_status", other)),
    })
}

fn member(row: &Row) -> StoreResult<(LoadBalancerId, LbMember)> {
    let port: i64 = int(row, "port")?;
    let port_id: Option<String> = row.try_get("port_id").map_err(|e| corrupt("port_id", e))?;
    Ok((
        parse_id::<LoadBalancerId>(text(row, "load_balancer_id")?)?,
        LbMember {
            id: MemberId(parsed(row, "id")?),
            name: text(row, "name")?,
            address: parsed(row, "address")?,
            port: u16::try_from(port).map_err(|e| corrupt("port", e))?,
            weight: MemberWeight::new(int(row, "weight")?).map_err(|e| corrupt("weight", e))?,
            admin_state_up: flag(row, "admin_state_up")?,
            operating_status: health(&text(row, "operating_status")?)?,
            port_id: port_id.map(parse_id).transpose()?,
            subnet_id: text(row, "subnet_id")?,
        },
    ))
}

fn load_balancer(row: &Row) -> StoreResult<LoadBalancer> {
    let vip: Option<String> = row
        .try_get("vip_address")
        .map_err(|e| corrupt("vip_address", e))?;
    Ok(LoadBalancer {
        id: parse_id(text(row, "id")?)?,
        project_id: parsed(row, "project_id")?,
        name: text(row, "name")?,
        description: text(row, "description")?,
        vip_address: vip
            .map(|v| v.parse().map_err(|e| corrupt("vip_address", e)))
            .transpose()?,
        admin_state_up: flag(row, "admin_state_up")?,
        members: Vec::new(),
        health_monitor: json(row, "health_monitor")?,
        kept: json(row, "kept")?.unwrap_or(serde_json::Value::Null),
        created_at: Timestamp(int(row, "created_at")?),
        updated_at: Timestamp(int(row, "updated_at")?),
    })
}

/// The load balancers `select` finds (`… FROM load_balancers t WHERE …`, ordered), each with
/// its members.
async fn with_members(
    conn: &mut Conn,
    mut b: QueryBuilder<'_, Db>,
) -> StoreResult<Vec<LoadBalancer>> {
    let rows = b.build().fetch_all(&mut *conn).await.map_err(db_err)?;
    let mut lbs = rows
        .iter()
        .map(load_balancer)
        .collect::<StoreResult<Vec<_>>>()?;
    if lbs.is_empty() {
        return Ok(lbs);
    }
    let ids: Vec<String> = lbs.iter().map(|l| l.id.to_string()).collect();
    let mut members: HashMap<LoadBalancerId, Vec<LbMember>> = HashMap::new();
    for chunk in ids.chunks(D::IN_CHUNK) {
        let mut q =
            QueryBuilder::<Db>::new("SELECT * FROM load_balancer_members WHERE load_balancer_id");
        D::push_in(&mut q, chunk);
        q.push(" ORDER BY load_balancer_id, position");
        for row in q.build().fetch_all(&mut *conn).await.map_err(db_err)? {
            let (lb, m) = member(&row)?;
            members.entry(lb).or_default().push(m);
        }
    }
    for lb in &mut lbs {
        lb.members = members.remove(&lb.id).unwrap_or_default();
    }
    Ok(lbs)
}

/// The load balancers of `ids`, whatever their project (the caller checks ownership).
pub(super) async fn by_ids(conn: &mut Conn, ids: &[String]) -> StoreResult<Vec<LoadBalancer>> {
    let mut found = Vec::new();
    for chunk in ids.chunks(D::IN_CHUNK) {
        let mut b = QueryBuilder::<Db>::new("SELECT * FROM load_balancers t WHERE t.id");
        D::push_in(&mut b, chunk);
        b.push(" ORDER BY t.seq");
        found.extend(with_members(conn, b).await?);
    }
    Ok(found)
}

#[async_trait]
impl<C: DerefMut<Target = Conn> + Send> LoadBalancerReads for Ops<C> {
    async fn get_load_balancer(
        &mut self,
        project: &ProjectId,
        id: LoadBalancerId,
    ) -> StoreResult<Option<LoadBalancer>> {
        let mut b = QueryBuilder::<Db>::new("SELECT * FROM load_balancers t WHERE t.id = ");
        b.push_bind(id.to_string());
        b.push(" AND t.project_id = ");
        b.push_bind(project.as_str().to_owned());
        Ok(with_members(self.conn(), b).await?.pop())
    }

    async fn load_balancers(&mut self, project: &ProjectId) -> StoreResult<Vec<LoadBalancer>> {
        let mut b = QueryBuilder::<Db>::new("SELECT * FROM load_balancers t WHERE t.project_id = ");
        b.push_bind(project.as_str().to_owned());
        b.push(" ORDER BY t.seq");
        with_members(self.conn(), b).await
    }

    async fn list_load_balancers(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<LoadBalancerField>,
        reverse: bool,
    ) -> StoreResult<Page<LoadBalancer>> {
        let limit = q.limit.max(1);
        let mut b = QueryBuilder::<Db>::new("SELECT * FROM load_balancers t");
        super::reads::push_where(&mut b, project, q);
        if let Some(marker) = &q.marker {
            // Another project's id is as unknown as one nobody holds: the lookup is scoped.
            let seq: Option<i64> = sqlx::query_scalar(
                "SELECT seq FROM load_balancers WHERE id = $1 AND project_id = $2",
            )
            .bind(marker)
            .bind(project.as_str())
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
            let seq = seq.ok_or_else(|| StoreError::UnknownMarker(marker.clone()))?;
            b.push(if reverse {
                " AND t.seq < "
            } else {
                " AND t.seq > "
            });
            b.push_bind(seq);
        }
        // One row past the page tells whether more follow, without a count.
        b.push(if reverse {
            " ORDER BY t.seq DESC LIMIT "
        } else {
            " ORDER BY t.seq LIMIT "
        });
        b.push_bind(i64::from(limit) + 1);
        let mut items = with_members(self.conn(), b).await?;
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        if reverse {
            items.reverse();
        }
        Ok(Page { items, more })
    }

    async fn monitored_load_balancers(&mut self) -> StoreResult<Vec<LoadBalancer>> {
        let b = QueryBuilder::<Db>::new(
            "SELECT * FROM load_balancers t WHERE t.health_monitor IS NOT NULL ORDER BY t.seq",
        );
        with_members(self.conn(), b).await
    }

    async fn sessions_with_load_balancer(
        &mut self,
        id: LoadBalancerId,
    ) -> StoreResult<Vec<SessionId>> {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM sessions WHERE target_id = $1 AND target_type = 'elb' ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        found.into_iter().map(parse_id).collect()
    }
}

/// The sources of the enabled sessions aimed at the load balancer `$2`: the hosts a change of
/// it concerns.
const SOURCES_OF_TARGET: &str = "FROM ports t JOIN session_sources ss ON ss.port_id = t.id \
    JOIN sessions s ON s.id = ss.session_id WHERE s.enabled AND s.target_id = $2";

#[async_trait]
impl LoadBalancerWrites for Ops<TxState> {
    async fn put_load_balancer(&mut self, lb: &LoadBalancer) -> StoreResult<()> {
        let rev = self.revision().await?;
        self.scope_ports(SOURCES_OF_TARGET, lb.id.to_string())
            .await?;
        // The gateways of the EIPs that eip sessions aimed at it mirror.
        self.scope_eip_hosts(&eip_sources_of("s.target_id = $2"), lb.id.to_string())
            .await?;
        sqlx::query(
            "INSERT INTO load_balancers (id, project_id, name, description, vip_address,
                admin_state_up, health_monitor, kept, created_at, updated_at, revision,
                created_revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                description = excluded.description, vip_address = excluded.vip_address,
                admin_state_up = excluded.admin_state_up,
                health_monitor = excluded.health_monitor, kept = excluded.kept,
                updated_at = excluded.updated_at, revision = excluded.revision",
        )
        .bind(lb.id.to_string())
        .bind(lb.project_id.as_str())
        .bind(&lb.name)
        .bind(&lb.description)
        .bind(lb.vip_address.map(|a| a.to_string()))
        .bind(lb.admin_state_up)
        .bind(lb.health_monitor.as_ref().map(to_json))
        .bind(to_json(&lb.kept))
        .bind(lb.created_at.0)
        .bind(lb.updated_at.0)
        .bind(rev)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        sqlx::query("DELETE FROM load_balancer_members WHERE load_balancer_id = $1")
            .bind(lb.id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        for (position, m) in lb.members.iter().enumerate() {
            sqlx::query(
                "INSERT INTO load_balancer_members (id, load_balancer_id, project_id, position,
                    name, address, port, weight, admin_state_up, operating_status, port_id,
                    subnet_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(m.id.to_string())
            .bind(lb.id.to_string())
            .bind(lb.project_id.as_str())
            .bind(position as i64)
            .bind(&m.name)
            .bind(m.address.to_string())
            .bind(i64::from(m.port))
            .bind(i64::from(m.weight))
            .bind(m.admin_state_up)
            .bind(m.operating_status.as_str())
            .bind(m.port_id.map(|p| p.to_string()))
            .bind(&m.subnet_id)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        }
        Ok(())
    }

    async fn delete_load_balancer(
        &mut self,
        project: &ProjectId,
        id: LoadBalancerId,
    ) -> StoreResult<bool> {
        self.scope_ports(SOURCES_OF_TARGET, id.to_string()).await?;
        self.scope_eip_hosts(&eip_sources_of("s.target_id = $2"), id.to_string())
            .await?;
        // Members go with their load balancer (ON DELETE CASCADE).
        self.delete("load_balancers", project, id.to_string()).await
    }

    async fn take_health_lease(&mut self, holder: &str, now: i64, until: i64) -> StoreResult<bool> {
        // No revision: the lease concerns no agent. The row is taken when it is free, has
        // expired, or is already the holder's; the conditional upsert decides atomically.
        let taken = sqlx::query(
            "INSERT INTO health_lease (id, holder, expires_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET holder = excluded.holder,
                expires_at = excluded.expires_at
             WHERE health_lease.holder = excluded.holder OR health_lease.expires_at < $3",
        )
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(taken.rows_affected() > 0)
    }
}
