//! Row ⇄ resource conversion for SQLite.

use std::str::FromStr;

use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use tmirror_model::*;

use crate::{StoreError, StoreResult};

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
    row: &'r SqliteRow,
    col: &str,
) -> StoreResult<T> {
    row.try_get(col).map_err(|e| corrupt(col, e))
}

fn parse<T: FromStr>(row: &SqliteRow, col: &str) -> StoreResult<T>
where
    T::Err: std::fmt::Display,
{
    let s: String = get(row, col)?;
    s.parse().map_err(|e| corrupt(col, e))
}

fn parse_opt<T: FromStr>(row: &SqliteRow, col: &str) -> StoreResult<Option<T>>
where
    T::Err: std::fmt::Display,
{
    let s: Option<String> = get(row, col)?;
    s.map(|s| s.parse().map_err(|e| corrupt(col, e)))
        .transpose()
}

fn json<T: serde::de::DeserializeOwned>(row: &SqliteRow, col: &str) -> StoreResult<T> {
    let s: String = get(row, col)?;
    serde_json::from_str(&s).map_err(|e| corrupt(col, e))
}

fn ranged<T: TryFrom<i64, Error = InvalidValue>>(row: &SqliteRow, col: &str) -> StoreResult<T> {
    let v: i64 = get(row, col)?;
    T::try_from(v).map_err(|e| corrupt(col, e))
}

fn ts(row: &SqliteRow, col: &str) -> StoreResult<Timestamp> {
    Ok(Timestamp(get(row, col)?))
}

fn project(row: &SqliteRow) -> StoreResult<ProjectId> {
    parse(row, "project_id")
}

pub(crate) fn port(row: &SqliteRow) -> StoreResult<Port> {
    Ok(Port {
        id: parse(row, "id")?,
        project_id: project(row)?,
        name: get(row, "name")?,
        network_id: get(row, "network_id")?,
        admin_state_up: get(row, "admin_state_up")?,
        mac_address: get(row, "mac_address")?,
        fixed_ips: json(row, "fixed_ips")?,
        device_id: get(row, "device_id")?,
        device_owner: get(row, "device_owner")?,
        status: get(row, "status")?,
        security_groups: json(row, "security_groups")?,
        host_id: get(row, "host_id")?,
        binding_profile: json(row, "binding_profile")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(crate) fn filter(row: &SqliteRow) -> StoreResult<Filter> {
    Ok(Filter {
        id: parse(row, "id")?,
        project_id: project(row)?,
        name: get(row, "name")?,
        description: get(row, "description")?,
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

pub(crate) fn rule(row: &SqliteRow) -> StoreResult<FilterRule> {
    let action: String = get(row, "action")?;
    let port_range = |col: &str| -> StoreResult<Option<PortRange>> {
        let s: Option<String> = get(row, col)?;
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
        protocol_spelling: get(row, "protocol_spelling")?,
        description: get(row, "description")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// A session; its sources come as the comma-separated `source_ids` column, in order.
pub(crate) fn session(row: &SqliteRow) -> StoreResult<Session> {
    let source_ids: Option<String> = get(row, "source_ids")?;
    let sources = source_ids
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|e| corrupt("source_ids", e)))
        .collect::<StoreResult<Vec<PortId>>>()?;
    Ok(Session {
        id: parse(row, "id")?,
        project_id: project(row)?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        filter_id: parse(row, "filter_id")?,
        sources,
        target_id: parse(row, "target_id")?,
        target_type: parse(row, "target_type")?,
        vni: ranged(row, "vni")?,
        packet_length: ranged(row, "packet_length")?,
        priority: ranged(row, "priority")?,
        enabled: get(row, "enabled")?,
        source_type: get(row, "source_type")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}
