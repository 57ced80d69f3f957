//! Read queries for SQLite, shared by pooled connections and write transactions.

use std::ops::DerefMut;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{QueryBuilder, Sqlite};
use tmirror_model::*;

use super::{db_err, Ops};
use crate::query::*;
use crate::rows;
use crate::{Credential, Reads, StoreError, StoreResult};

/// How one filterable field is compared, in SQL.
enum Column {
    /// `table.col IN (...)`.
    Plain(&'static str),
    /// `lower(col) IN (lower(...))`.
    CaseInsensitive(&'static str),
    /// `EXISTS (... subquery with the values ...)`; `{}` is replaced by the value list.
    Exists(&'static str),
}

trait Field: Copy {
    fn column(self) -> Column;
}

impl Field for SessionField {
    fn column(self) -> Column {
        use Column::*;
        match self {
            SessionField::Id => Plain("id"),
            SessionField::Name => Plain("name"),
            SessionField::Description => Plain("description"),
            SessionField::FilterId => Plain("filter_id"),
            SessionField::TargetId => Plain("target_id"),
            SessionField::TargetType => Plain("target_type"),
            SessionField::Vni => Plain("vni"),
            SessionField::PacketLength => Plain("packet_length"),
            SessionField::Priority => Plain("priority"),
            SessionField::Enabled => Plain("enabled"),
            SessionField::SourceType => Plain("source_type"),
            SessionField::CreatedAt => Plain("created_at"),
            SessionField::UpdatedAt => Plain("updated_at"),
            SessionField::SourceId => Exists(
                "SELECT 1 FROM session_sources ss WHERE ss.session_id = t.id AND ss.port_id IN ({})",
            ),
        }
    }
}

impl Field for FilterField {
    fn column(self) -> Column {
        match self {
            FilterField::Id => Column::Plain("id"),
            FilterField::Name => Column::Plain("name"),
            FilterField::Description => Column::Plain("description"),
            FilterField::CreatedAt => Column::Plain("created_at"),
            FilterField::UpdatedAt => Column::Plain("updated_at"),
        }
    }
}

impl Field for RuleField {
    fn column(self) -> Column {
        use Column::*;
        match self {
            RuleField::Id => Plain("id"),
            RuleField::Description => Plain("description"),
            RuleField::FilterId => Plain("filter_id"),
            RuleField::Direction => Plain("direction"),
            RuleField::Protocol => CaseInsensitive("protocol"),
            RuleField::Ethertype => CaseInsensitive("ethertype"),
            RuleField::SourceCidr => Plain("source_cidr"),
            RuleField::DestinationCidr => Plain("destination_cidr"),
            RuleField::SourcePortRange => Plain("source_port_range"),
            RuleField::DestinationPortRange => Plain("destination_port_range"),
            RuleField::Action => Plain("action"),
            RuleField::Priority => Plain("priority"),
        }
    }
}

impl Field for PortField {
    fn column(self) -> Column {
        use Column::*;
        match self {
            PortField::Id => Plain("id"),
            PortField::Name => Plain("name"),
            PortField::NetworkId => Plain("network_id"),
            PortField::MacAddress => CaseInsensitive("mac_address"),
            PortField::DeviceId => Plain("device_id"),
            PortField::DeviceOwner => Plain("device_owner"),
            PortField::Status => Plain("status"),
            PortField::AdminStateUp => Plain("admin_state_up"),
            PortField::HostId => Plain("host_id"),
            PortField::FixedIpAddress => Exists(
                "SELECT 1 FROM json_each(t.fixed_ips) j WHERE json_extract(j.value, '$.ip_address') IN ({})",
            ),
            PortField::SecurityGroup => Exists(
                "SELECT 1 FROM json_each(t.security_groups) j WHERE j.value IN ({})",
            ),
            PortField::FixedIpSubnet => Exists(
                "SELECT 1 FROM json_each(t.fixed_ips) j WHERE json_extract(j.value, '$.subnet_id') IN ({})",
            ),
        }
    }
}

fn push_values(b: &mut QueryBuilder<'_, Sqlite>, values: &[Value], lower: bool) {
    let mut sep = b.separated(", ");
    for v in values {
        if lower {
            sep.push("lower(");
            sep.push_bind_unseparated(match v {
                Value::Text(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                Value::Bool(x) => x.to_string(),
            });
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

/// A session's sources, in order, as one comma-separated column: one query per read instead
/// of two.
const SESSION_COLUMNS: &str = "t.*, (SELECT group_concat(ss.port_id, ',' ORDER BY ss.position) \
     FROM session_sources ss WHERE ss.session_id = t.id) AS source_ids";

fn columns(table: &str) -> &'static str {
    if table == "sessions" {
        SESSION_COLUMNS
    } else {
        "t.*"
    }
}

/// `SELECT * FROM table t WHERE project_id = ? AND <conditions> AND seq > <marker> ORDER BY seq LIMIT n+1`.
async fn list<F: Field, T>(
    conn: &mut SqliteConnection,
    table: &'static str,
    project: &ProjectId,
    q: &ListQuery<F>,
    decode: fn(&SqliteRow) -> StoreResult<T>,
) -> StoreResult<Page<T>> {
    let mut b = QueryBuilder::<Sqlite>::new(format!(
        "SELECT {} FROM {table} t WHERE t.project_id = ",
        columns(table)
    ));
    b.push_bind(project.as_str().to_owned());
    for cond in &q.conditions {
        if cond.values.is_empty() {
            continue;
        }
        match cond.field.column() {
            Column::Plain(col) => {
                b.push(format!(" AND t.{col} IN ("));
                push_values(&mut b, &cond.values, false);
                b.push(")");
            }
            Column::CaseInsensitive(col) => {
                b.push(format!(" AND lower(t.{col}) IN ("));
                push_values(&mut b, &cond.values, true);
                b.push(")");
            }
            Column::Exists(sql) => {
                let (head, tail) = sql.split_once("{}").expect("subquery has a {} placeholder");
                b.push(format!(" AND EXISTS ({head}"));
                push_values(&mut b, &cond.values, false);
                b.push(format!("{tail})"));
            }
        }
    }
    if let Some(marker) = &q.marker {
        let seq: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT seq FROM {table} WHERE id = ? AND project_id = ?"
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

/// One resource of `project` by id, decoded by `decode`.
async fn get<T>(
    conn: &mut SqliteConnection,
    table: &'static str,
    project: &ProjectId,
    id: String,
    decode: fn(&SqliteRow) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let sql = format!(
        "SELECT {} FROM {table} t WHERE t.id = ? AND t.project_id = ?",
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

async fn ids<T: std::str::FromStr>(
    conn: &mut SqliteConnection,
    sql: &str,
    arg: String,
) -> StoreResult<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    let found: Vec<String> = sqlx::query_scalar(sql)
        .bind(arg)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    found
        .into_iter()
        .map(|s| {
            s.parse()
                .map_err(|e| StoreError::Corrupt(format!("id: {e}")))
        })
        .collect()
}

#[async_trait]
impl<C: DerefMut<Target = SqliteConnection> + Send> Reads for Ops<C> {
    async fn credential(&mut self, access_key: &str) -> StoreResult<Option<Credential>> {
        let row = sqlx::query("SELECT * FROM credentials WHERE access_key = ?")
            .bind(access_key)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::credential).transpose()
    }

    async fn admin_credential(&mut self) -> StoreResult<Option<Credential>> {
        let row =
            sqlx::query("SELECT * FROM credentials WHERE is_admin = 1 ORDER BY rowid LIMIT 1")
                .fetch_optional(self.conn())
                .await
                .map_err(db_err)?;
        row.as_ref().map(rows::credential).transpose()
    }

    async fn get_port(&mut self, project: &ProjectId, id: PortId) -> StoreResult<Option<Port>> {
        get(self.conn(), "ports", project, id.to_string(), rows::port).await
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
        let mut b = QueryBuilder::<Sqlite>::new("SELECT * FROM rules WHERE filter_id IN (");
        let mut sep = b.separated(", ");
        for f in filters {
            sep.push_bind(f.to_string());
        }
        b.push(") ORDER BY filter_id, direction, priority");
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
            "SELECT id FROM rules WHERE filter_id = ? AND direction = ? AND priority = ?",
        )
        .bind(filter.to_string())
        .bind(direction.as_str())
        .bind(i64::from(priority))
        .fetch_optional(self.conn())
        .await
        .map_err(db_err)?;
        found
            .map(|s| {
                s.parse()
                    .map_err(|e| StoreError::Corrupt(format!("id: {e}")))
            })
            .transpose()
    }

    async fn count_rules(&mut self, filter: FilterId, direction: Direction) -> StoreResult<u32> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM rules WHERE filter_id = ? AND direction = ?")
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

    async fn session_with_priority(
        &mut self,
        project: &ProjectId,
        priority: SessionPriority,
    ) -> StoreResult<Option<SessionId>> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT id FROM sessions WHERE project_id = ? AND priority = ?")
                .bind(project.as_str())
                .bind(i64::from(priority))
                .fetch_optional(self.conn())
                .await
                .map_err(db_err)?;
        found
            .map(|s| {
                s.parse()
                    .map_err(|e| StoreError::Corrupt(format!("id: {e}")))
            })
            .transpose()
    }

    async fn sessions_with_source(&mut self, port: PortId) -> StoreResult<Vec<SessionId>> {
        ids(
            self.conn(),
            "SELECT session_id FROM session_sources WHERE port_id = ? ORDER BY session_id",
            port.to_string(),
        )
        .await
    }

    async fn sessions_with_target(&mut self, port: PortId) -> StoreResult<Vec<SessionId>> {
        ids(
            self.conn(),
            "SELECT id FROM sessions WHERE target_id = ? ORDER BY seq",
            port.to_string(),
        )
        .await
    }

    async fn sessions_with_filter(&mut self, filter: FilterId) -> StoreResult<Vec<SessionId>> {
        ids(
            self.conn(),
            "SELECT id FROM sessions WHERE filter_id = ? ORDER BY seq",
            filter.to_string(),
        )
        .await
    }
}
