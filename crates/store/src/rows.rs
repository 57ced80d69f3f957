//! Row ⇄ resource conversion, shared by both back-ends: they store the same columns (SQLite's
//! integers and booleans are PostgreSQL's BIGINT and BOOLEAN; JSON is text in both).

use std::str::FromStr;

use sqlx::Row;
use tmirror_model::*;

use crate::{StoreError, StoreResult};

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// The column types the store uses, read from a row of either back-end.
pub(crate) trait Columns {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    fn int(&self, col: &str) -> StoreResult<i64>;
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>>;
    fn flag(&self, col: &str) -> StoreResult<bool>;
}

macro_rules! columns {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, col: &str) -> StoreResult<String> {
                self.try_get(col).map_err(|e| corrupt(col, e))
            }
            fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
                self.try_get(col).map_err(|e| corrupt(col, e))
            }
            fn int(&self, col: &str) -> StoreResult<i64> {
                self.try_get(col).map_err(|e| corrupt(col, e))
            }
            fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
                self.try_get(col).map_err(|e| corrupt(col, e))
            }
            fn flag(&self, col: &str) -> StoreResult<bool> {
                self.try_get(col).map_err(|e| corrupt(col, e))
            }
        }
    };
}

columns!(sqlx::sqlite::SqliteRow);
columns!(sqlx::postgres::PgRow);

pub(crate) fn parse<T: FromStr>(row: &impl Columns, col: &str) -> StoreResult<T>
where
    T::Err: std::fmt::Display,
{
    row.text(col)?.parse().map_err(|e| corrupt(col, e))
}

fn parse_opt<T: FromStr>(row: &impl Columns, col: &str) -> StoreResult<Option<T>>
where
    T::Err: std::fmt::Display,
{
    row.opt_text(col)?
        .map(|s| s.parse().map_err(|e| corrupt(col, e)))
        .transpose()
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(
    row: &impl Columns,
    col: &str,
) -> StoreResult<T> {
    serde_json::from_str(&row.text(col)?).map_err(|e| corrupt(col, e))
}

fn ranged<T: TryFrom<i64, Error = InvalidValue>>(row: &impl Columns, col: &str) -> StoreResult<T> {
    T::try_from(row.int(col)?).map_err(|e| corrupt(col, e))
}

fn ts(row: &impl Columns, col: &str) -> StoreResult<Timestamp> {
    Ok(Timestamp(row.int(col)?))
}

fn project<R: Columns>(row: &R) -> StoreResult<ProjectId> {
    parse(row, "project_id")
}

pub(crate) fn port<R: Columns>(row: &R) -> StoreResult<Port> {
    Ok(Port {
        id: parse(row, "id")?,
        project_id: project(row)?,
        name: row.text("name")?,
        network_id: row.text("network_id")?,
        admin_state_up: row.flag("admin_state_up")?,
        mac_address: row.text("mac_address")?,
        fixed_ips: json(row, "fixed_ips")?,
        device_id: row.text("device_id")?,
        device_owner: row.text("device_owner")?,
        status: row.text("status")?,
        security_groups: json(row, "security_groups")?,
        host_id: row.text("host_id")?,
        binding_profile: json(row, "binding_profile")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(crate) fn filter<R: Columns>(row: &R) -> StoreResult<Filter> {
    Ok(Filter {
        id: parse(row, "id")?,
        project_id: project(row)?,
        name: row.text("name")?,
        description: row.text("description")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(crate) fn action_from(s: &str) -> Result<RuleAction, String> {
    match s {
        "accept" => Ok(RuleAction::Accept),
        "reject" => Ok(RuleAction::Reject),
        other => Err(format!("unknown action {other:?}")),
    }
}

pub(crate) fn rule<R: Columns>(row: &R) -> StoreResult<FilterRule> {
    let action: String = row.text("action")?;
    let port_range = |col: &str| -> StoreResult<Option<PortRange>> {
        let s: Option<String> = row.opt_text(col)?;
        s.map(|s| PortRange::parse_with(&s, '-').map_err(|e| corrupt(col, e)))
            .transpose()
    };
    Ok(FilterRule {
        id: parse(row, "id")?,
        project_id: project(row)?,
        filter_id: parse(row, "filter_id")?,
        direction: parse(row, "direction")?,
        priority: ranged(row, "priority")?,
        action: action_from(&action).map_err(|e| corrupt("action", e))?,
        matches: RuleMatch {
            ethertype: parse(row, "ethertype")?,
            protocol: parse(row, "protocol")?,
            source_cidr: parse_opt(row, "source_cidr")?,
            destination_cidr: parse_opt(row, "destination_cidr")?,
            source_port_range: port_range("source_port_range")?,
            destination_port_range: port_range("destination_port_range")?,
        },
        protocol_spelling: row.text("protocol_spelling")?,
        description: row.text("description")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// A session; its sources come as the comma-separated `source_ids` column of `position:id`
/// items, in any order.
pub(crate) fn session<R: Columns>(row: &R) -> StoreResult<Session> {
    let source_ids: Option<String> = row.opt_text("source_ids")?;
    let mut sources = source_ids
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (position, id) = item
                .split_once(':')
                .ok_or_else(|| corrupt("source_ids", format!("{item:?} has no position")))?;
            let position: i64 = position.parse().map_err(|e| corrupt("source_ids", e))?;
            let id: uuid::Uuid = id.parse().map_err(|e| corrupt("source_ids", e))?;
            Ok((position, id))
        })
        .collect::<StoreResult<Vec<(i64, uuid::Uuid)>>>()?;
    sources.sort_unstable_by_key(|(position, _)| *position);
    let sources: Vec<uuid::Uuid> = sources.into_iter().map(|(_, id)| id).collect();
    let source_type: SourceType = parse(row, "source_type")?;
    Ok(Session {
        id: parse(row, "id")?,
        project_id: project(row)?,
        name: row.text("name")?,
        description: row.text("description")?,
        filter_id: parse(row, "filter_id")?,
        sources: SessionSources::from_raw(source_type, sources),
        target: SessionTarget::of_kind(parse(row, "target_type")?, parse(row, "target_id")?),
        vni: ranged(row, "vni")?,
        packet_length: ranged(row, "packet_length")?,
        priority: ranged(row, "priority")?,
        enabled: row.flag("enabled")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// A credential, its secret opened by `sealer`.
pub(crate) fn credential<R: Columns>(
    row: &R,
    sealer: &crate::SecretSealer,
) -> StoreResult<crate::Credential> {
    let access_key = row.text("access_key")?;
    Ok(crate::Credential {
        secret_key: sealer.open(&access_key, &row.text("secret_key")?)?,
        access_key,
        project_id: project(row)?,
        role: parse(row, "role")?,
        enabled: row.flag("enabled")?,
        created_at: row.int("created_at")?,
        last_used_at: row.opt_int("last_used_at")?,
    })
}

pub(crate) fn project_record<R: Columns>(row: &R) -> StoreResult<Project> {
    Ok(Project {
        id: parse(row, "id")?,
        name: row.text("name")?,
        created_at: row.int("created_at")?,
        quotas: json(row, "quotas")?,
    })
}

pub(crate) fn host<R: Columns>(row: &R) -> StoreResult<Host> {
    Ok(Host {
        host_id: row.text("host_id")?,
        token_hash: row.text("token_hash")?,
        enabled: row.flag("enabled")?,
        created_at: row.int("created_at")?,
    })
}

pub(crate) fn network<R: Columns>(row: &R) -> StoreResult<Network> {
    Ok(Network {
        id: row.text("id")?,
        name: row.text("name")?,
        project_id: parse_opt(row, "project_id")?,
        cidrs: json(row, "cidrs")?,
        created_at: row.int("created_at")?,
    })
}

pub(crate) fn eip_pool<R: Columns>(row: &R) -> StoreResult<EipPool> {
    Ok(EipPool {
        id: row.text("id")?,
        cidrs: json(row, "cidrs")?,
        host_id: row.text("host_id")?,
        interface_name: row.text("interface_name")?,
        created_at: row.int("created_at")?,
    })
}

pub(crate) fn eip<R: Columns>(row: &R) -> StoreResult<Eip> {
    Ok(Eip {
        id: parse(row, "id")?,
        project_id: project(row)?,
        pool_id: row.text("pool_id")?,
        address: parse(row, "address")?,
        name: row.text("name")?,
        port_id: parse_opt(row, "port_id")?,
        bandwidth: json(row, "bandwidth")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(crate) fn agent<R: Columns>(row: &R) -> StoreResult<crate::AgentRecord> {
    Ok(crate::AgentRecord {
        host_id: row.text("host_id")?,
        registered_at: row.int("registered_at")?,
        last_seen: row.int("last_seen")?,
        applied_generation: row.int("applied_generation")? as u64,
        interfaces: json(row, "interfaces")?,
        report: json(row, "report")?,
    })
}

pub(crate) fn tag<R: Columns>(row: &R) -> StoreResult<crate::AliyunTag> {
    Ok(crate::AliyunTag {
        resource_type: row.text("resource_type")?,
        resource_id: row.text("resource_id")?,
        key: row.text("tag_key")?,
        value: row.text("tag_value")?,
    })
}

pub(crate) fn tombstone<R: Columns>(row: &R) -> StoreResult<crate::AliyunTombstone> {
    Ok(crate::AliyunTombstone {
        id: row.text("id")?,
        kind: row.text("kind")?,
        revision: row.int("revision")? as u64,
        view: json(row, "view")?,
        hosts: json(row, "hosts")?,
    })
}
