//! Read queries, for both back-ends (a template: see `crate::shared`), shared by pooled
//! connections and write transactions.

use std::ops::DerefMut;

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row as _};
use tmirror_model::*;

use super::{db_err, Db, Ops, D};
use crate::query::*;
use crate::rows;
use crate::shared::fields::{as_text, Column, Field, Kind};
use crate::shared::{parse_id, Dialect};
use crate::{AgentRecord, Reads, StoreError, StoreResult};

type Conn = <Db as sqlx::Database>::Connection;
type Row = <Db as sqlx::Database>::Row;

/// `(v1, v2, ...)` after `IN`, or `(NULL)` (matches nothing) when there is none.
fn push_values(b: &mut QueryBuilder<'_, Db>, values: &[Value], lower: bool) {
    if values.is_empty() {
        b.push("NULL");
        return;
    }
    let mut sep = b.separated(", ");
    for v in values {
        if lower {
            sep.push("lower(");
            sep.push_bind_unseparated(as_text(v));
            sep.push_unseparated(")");
            continue;
        }
        match v {
            Value::Text(s) => sep.push_bind(s.clone()),
            Value::Int(i) => sep.push_bind(*i),
            Value::Bool(x) => sep.push_bind(*x),
        };
    }
}

/// A session's sources as one comma-separated column of `position:id` items: one query per
/// read instead of two. A session has sources of its type only, so at most one of the two
/// tables has any. The items are put in order by the reader (`rows::session`): an aggregate
/// with its own `ORDER BY` makes SQLite build a temporary b-tree at every evaluation, a
/// tenth of the instructions of a show (docs/performance.md).
pub(super) const SESSION_COLUMNS: &str =
    "t.*, COALESCE((SELECT string_agg(CAST(ss.position AS TEXT) || ':' || ss.port_id, ',') \
     FROM session_sources ss WHERE ss.session_id = t.id), \
     (SELECT string_agg(CAST(es.position AS TEXT) || ':' || es.eip_id, ',') \
     FROM session_eip_sources es WHERE es.session_id = t.id)) AS source_ids";

fn columns(table: &str) -> &'static str {
    if table == "sessions" {
        SESSION_COLUMNS
    } else {
        "t.*"
    }
}

/// `SELECT * FROM table t WHERE project_id = ? AND <conditions> AND seq > <marker> ORDER BY seq LIMIT n+1`.
async fn list<F: Field, T>(
    conn: &mut Conn,
    table: &'static str,
    project: &ProjectId,
    q: &ListQuery<F>,
    decode: fn(&Row) -> StoreResult<T>,
) -> StoreResult<Page<T>> {
    list_of(conn, table, columns(table), project, q, decode).await
}

/// [`list`] selecting `columns` (of the table `t` and subqueries beside it).
pub(super) async fn list_of<F: Field, T>(
    conn: &mut Conn,
    table: &'static str,
    columns: &str,
    project: &ProjectId,
    q: &ListQuery<F>,
    decode: fn(&Row) -> StoreResult<T>,
) -> StoreResult<Page<T>> {
    let mut b = QueryBuilder::<Db>::new(format!("SELECT {columns} FROM {table} t"));
    push_where(&mut b, project, q);
    if let Some(marker) = &q.marker {
        let seq: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT seq FROM {table} WHERE id = $1 AND project_id = $2"
        ))
        .bind(marker)
        .bind(project.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
        let seq = seq.ok_or_else(|| StoreError::UnknownMarker(marker.clone()))?;
        b.push(" AND t.seq > ");
        b.push_bind(seq);
    }
    b.push(" ORDER BY t.seq LIMIT ");
    b.push_bind(i64::from(q.limit.max(1)) + 1);
    let mut found = b.build().fetch_all(&mut *conn).await.map_err(db_err)?;
    let more = found.len() > q.limit.max(1) as usize;
    found.truncate(q.limit.max(1) as usize);
    let items = found.iter().map(decode).collect::<StoreResult<_>>()?;
    Ok(Page { items, more })
}

/// How many resources of `table` the whole list `q` has (its marker and page size aside).
async fn count<F: Field>(
    conn: &mut Conn,
    table: &'static str,
    project: &ProjectId,
    q: &ListQuery<F>,
) -> StoreResult<u64> {
    if q.conditions.iter().all(|c| c.values.is_empty()) {
        // The whole project: its counter row, not one index entry per resource.
        return Ok(u64::from(counted(conn, table, project).await?));
    }
    let mut b = QueryBuilder::<Db>::new(format!("SELECT COUNT(*) FROM {table} t"));
    push_where(&mut b, project, q);
    let n: i64 = b
        .build_query_scalar()
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(n.max(0) as u64)
}

/// How many rows of `table` belong to `project`, from `project_counts` (kept by the triggers
/// of SQLite's migration 0012, PostgreSQL's 0009; no row: none yet).
pub(super) async fn counted(
    conn: &mut Conn,
    table: &'static str,
    project: &ProjectId,
) -> StoreResult<u32> {
    let n: Option<i64> =
        sqlx::query_scalar("SELECT n FROM project_counts WHERE project_id = $1 AND kind = $2")
            .bind(project.as_str())
            .bind(table)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    Ok(n.unwrap_or(0).max(0) as u32)
}

/// ` WHERE t.project_id = ? AND <conditions>`: OR within a condition, AND across them.
pub(super) fn push_where<F: Field>(
    b: &mut QueryBuilder<'_, Db>,
    project: &ProjectId,
    q: &ListQuery<F>,
) {
    b.push(" WHERE t.project_id = ");
    b.push_bind(project.as_str().to_owned());
    for cond in &q.conditions {
        if cond.values.is_empty() {
            continue;
        }
        let subquery = |b: &mut QueryBuilder<'_, Db>, negated: &str, sql: &str| {
            let (head, tail) = sql.split_once("{}").expect("subquery has a {} placeholder");
            b.push(format!(" AND {negated}EXISTS ({head}"));
            let values: Vec<Value> = cond
                .values
                .iter()
                .filter_map(|v| D::bind_value(v, Kind::Text))
                .collect();
            push_values(b, &values, false);
            b.push(format!("{tail})"));
        };
        match cond.field.column::<D>() {
            Column::Plain(col, kind) => {
                let values: Vec<Value> = cond
                    .values
                    .iter()
                    .filter_map(|v| D::bind_value(v, kind))
                    .collect();
                b.push(format!(" AND t.{col} IN ("));
                push_values(b, &values, false);
                b.push(")");
            }
            Column::CaseInsensitive(col) => {
                b.push(format!(" AND lower(t.{col}) IN ("));
                push_values(b, &cond.values, true);
                b.push(")");
            }
            Column::Exists(sql) => subquery(b, "", sql),
            Column::NotExists(sql) => subquery(b, "NOT ", sql),
        }
    }
}

/// One resource of `project` by id, decoded by `decode`.
async fn get<T>(
    conn: &mut Conn,
    table: &'static str,
    project: &ProjectId,
    id: String,
    decode: fn(&Row) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let sql = format!(
        "SELECT {} FROM {table} t WHERE t.id = $1 AND t.project_id = $2",
        columns(table)
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(project.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    row.as_ref().map(decode).transpose()
}

async fn ids<T: std::str::FromStr>(conn: &mut Conn, sql: &str, arg: String) -> StoreResult<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    let found: Vec<String> = sqlx::query_scalar(sql)
        .bind(arg)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    found.into_iter().map(parse_id).collect()
}

#[async_trait]
impl<C: DerefMut<Target = Conn> + Send> Reads for Ops<C> {
    async fn count_in_project(
        &mut self,
        project: &ProjectId,
        kind: ResourceKind,
    ) -> StoreResult<u32> {
        let table = match kind {
            ResourceKind::Session => "sessions",
            ResourceKind::Filter => "filters",
            ResourceKind::Rule => "rules",
            ResourceKind::Port => "ports",
            ResourceKind::LoadBalancer => "load_balancers",
            ResourceKind::Member => "load_balancer_members",
            ResourceKind::Eip => "eips",
        };
        counted(self.conn(), table, project).await
    }

    async fn get_port(&mut self, project: &ProjectId, id: PortId) -> StoreResult<Option<Port>> {
        get(self.conn(), "ports", project, id.to_string(), rows::port).await
    }

    async fn ports_by_ids(
        &mut self,
        project: &ProjectId,
        ids: &[PortId],
    ) -> StoreResult<Vec<Port>> {
        // By id alone, the project checked here: with the project in the query too, SQLite
        // (which plans without statistics) prefers the project's index over 100 id lookups
        // and walks every port of the project.
        let ids: Vec<String> = ids.iter().map(|p| p.to_string()).collect();
        let mut found = Vec::new();
        for chunk in ids.chunks(D::IN_CHUNK) {
            let mut b = QueryBuilder::<Db>::new("SELECT * FROM ports t WHERE t.id");
            D::push_in(&mut b, chunk);
            let rows = b.build().fetch_all(self.conn()).await.map_err(db_err)?;
            for r in &rows {
                let port = rows::port(r)?;
                if &port.project_id == project {
                    found.push(port);
                }
            }
        }
        Ok(found)
    }

    async fn list_ports(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<PortField>,
    ) -> StoreResult<Page<Port>> {
        list(self.conn(), "ports", project, q, rows::port).await
    }

    async fn get_filter(
        &mut self,
        project: &ProjectId,
        id: FilterId,
    ) -> StoreResult<Option<Filter>> {
        get(
            self.conn(),
            "filters",
            project,
            id.to_string(),
            rows::filter,
        )
        .await
    }

    async fn list_filters(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<FilterField>,
    ) -> StoreResult<Page<Filter>> {
        list(self.conn(), "filters", project, q, rows::filter).await
    }

    async fn count_filters(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<FilterField>,
    ) -> StoreResult<u64> {
        count(self.conn(), "filters", project, q).await
    }

    async fn get_rule(
        &mut self,
        project: &ProjectId,
        id: RuleId,
    ) -> StoreResult<Option<FilterRule>> {
        get(self.conn(), "rules", project, id.to_string(), rows::rule).await
    }

    async fn list_rules(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<RuleField>,
    ) -> StoreResult<Page<FilterRule>> {
        list(self.conn(), "rules", project, q, rows::rule).await
    }

    async fn rules_of_filters(&mut self, filters: &[FilterId]) -> StoreResult<Vec<FilterRule>> {
        if filters.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let mut b = QueryBuilder::<Db>::new("SELECT * FROM rules WHERE filter_id");
        D::push_in(&mut b, &ids);
        b.push(format!(
            " ORDER BY filter_id{0}, direction{0}, priority",
            D::BYTEWISE
        ));
        let found = b.build().fetch_all(self.conn()).await.map_err(db_err)?;
        found.iter().map(rows::rule).collect()
    }

    async fn rule_with_priority(
        &mut self,
        filter: FilterId,
        direction: Direction,
        priority: RulePriority,
    ) -> StoreResult<Option<RuleId>> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT id FROM rules WHERE filter_id = $1 AND direction = $2 AND priority = $3",
        )
        .bind(filter.to_string())
        .bind(direction.as_str())
        .bind(i64::from(priority))
        .fetch_optional(self.conn())
        .await
        .map_err(db_err)?;
        found.map(parse_id).transpose()
    }

    async fn count_rules(&mut self, filter: FilterId, direction: Direction) -> StoreResult<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM rules WHERE filter_id = $1 AND direction = $2",
        )
        .bind(filter.to_string())
        .bind(direction.as_str())
        .fetch_one(self.conn())
        .await
        .map_err(db_err)?;
        Ok(n as u32)
    }

    async fn get_session(
        &mut self,
        project: &ProjectId,
        id: SessionId,
    ) -> StoreResult<Option<Session>> {
        get(
            self.conn(),
            "sessions",
            project,
            id.to_string(),
            rows::session,
        )
        .await
    }

    async fn list_sessions(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<SessionField>,
    ) -> StoreResult<Page<Session>> {
        list(self.conn(), "sessions", project, q, rows::session).await
    }

    async fn count_sessions(
        &mut self,
        project: &ProjectId,
        q: &ListQuery<SessionField>,
    ) -> StoreResult<u64> {
        count(self.conn(), "sessions", project, q).await
    }

    async fn session_with_priority(
        &mut self,
        project: &ProjectId,
        priority: SessionPriority,
    ) -> StoreResult<Option<SessionId>> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT id FROM sessions WHERE project_id = $1 AND priority = $2")
                .bind(project.as_str())
                .bind(i64::from(priority))
                .fetch_optional(self.conn())
                .await
                .map_err(db_err)?;
        found.map(parse_id).transpose()
    }

    async fn sessions_with_source(&mut self, port: PortId) -> StoreResult<Vec<SessionId>> {
        let sql = format!(
            "SELECT session_id FROM session_sources WHERE port_id = $1 ORDER BY session_id{}",
            D::BYTEWISE
        );
        ids(self.conn(), &sql, port.to_string()).await
    }

    async fn sessions_with_target(&mut self, port: PortId) -> StoreResult<Vec<SessionId>> {
        ids(
            self.conn(),
            "SELECT id FROM sessions WHERE target_id = $1 ORDER BY seq",
            port.to_string(),
        )
        .await
    }

    async fn sessions_with_filter(&mut self, filter: FilterId) -> StoreResult<Vec<SessionId>> {
        ids(
            self.conn(),
            "SELECT id FROM sessions WHERE filter_id = $1 ORDER BY seq",
            filter.to_string(),
        )
        .await
    }

    async fn agents_concerned(
        &mut self,
        hosts: &[String],
        interfaces: &[String],
    ) -> StoreResult<Vec<AgentRecord>> {
        let mut found = Vec::new();
        for chunk in hosts.chunks(D::IN_CHUNK) {
            let mut b = QueryBuilder::<Db>::new("SELECT * FROM agents t WHERE t.host_id");
            D::push_in(&mut b, chunk);
            let rows = b.build().fetch_all(self.conn()).await.map_err(db_err)?;
            found.extend(
                rows.iter()
                    .map(rows::agent)
                    .collect::<StoreResult<Vec<_>>>()?,
            );
        }
        for chunk in interfaces.chunks(D::IN_CHUNK) {
            // By the interfaces' own table (kept by triggers on `agents`), not by searching
            // every agent's list.
            let mut b = QueryBuilder::<Db>::new(
                "SELECT * FROM agents t WHERE t.host_id IN \
                 (SELECT i.host_id FROM agent_interfaces i WHERE i.interface",
            );
            D::push_in(&mut b, chunk);
            b.push(")");
            let rows = b.build().fetch_all(self.conn()).await.map_err(db_err)?;
            for a in rows.iter().map(rows::agent) {
                let a = a?;
                if !found.iter().any(|x: &AgentRecord| x.host_id == a.host_id) {
                    found.push(a);
                }
            }
        }
        found.sort_by(|a, b| a.host_id.cmp(&b.host_id));
        Ok(found)
    }

    async fn filter_hosts(
        &mut self,
        project: &ProjectId,
        filters: &[String],
        unbound_by_interface: bool,
    ) -> StoreResult<Vec<(String, String)>> {
        // One statement of two parts, each with the filters' list: the database reads the
        // sessions of the filters (by their index) and answers only distinct pairs, so a
        // filter shared by 25,000 sessions on 100 hosts answers 100 rows. A source port is
        // captured on the host it is bound to, or, bound to none, on the hosts that reported
        // its interface (one walk of the sessions' ports for both). No condition on the
        // project past the sessions' own: a source is a port or EIP of the session's project
        // (the service checks it when the session is written). Unbound ports captured
        // nowhere: the join finds no agent, and the port no host.
        let by_interface = if unbound_by_interface {
            format!("t.host_id = '' AND i.interface = {}", D::CAPTURE_NAME)
        } else {
            "1 = 0".to_owned()
        };
        let parts = [
            format!(
                "SELECT x.filter_id, x.host_id FROM (SELECT s.filter_id, \
                 CASE WHEN t.host_id <> '' THEN t.host_id ELSE i.host_id END AS host_id \
                 FROM sessions s JOIN session_sources ss ON ss.session_id = s.id \
                 JOIN ports t ON t.id = ss.port_id \
                 LEFT JOIN agent_interfaces i ON {by_interface} \
                 WHERE s.project_id = "
            ),
            ") x WHERE x.host_id IS NOT NULL \
             UNION SELECT s.filter_id, g.host_id FROM sessions s \
             JOIN session_eip_sources es ON es.session_id = s.id JOIN eips e ON e.id = es.eip_id \
             JOIN eip_pools g ON g.id = e.pool_id WHERE g.host_id <> '' AND s.project_id = "
                .to_owned(),
        ];
        let mut found = Vec::new();
        for chunk in filters.chunks(D::IN_CHUNK / parts.len()) {
            let mut b = QueryBuilder::<Db>::new("");
            for part in &parts {
                b.push(part);
                b.push_bind(project.as_str());
                b.push(" AND s.filter_id");
                D::push_in(&mut b, chunk);
            }
            let rows = b.build().fetch_all(self.conn()).await.map_err(db_err)?;
            for row in rows {
                found.push((
                    row.try_get::<String, _>(0).map_err(db_err)?,
                    row.try_get::<String, _>(1).map_err(db_err)?,
                ));
            }
        }
        found.sort();
        found.dedup();
        Ok(found)
    }
}
