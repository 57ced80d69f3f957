//! Paging and filters of the ELB v3 lists: `limit`, `marker`, `page_reverse` and the equality
//! filters huaweicloudsdkelb's List* requests send, parsed as the VPC lists parse theirs
//! (unknown keys ignored, as Huawei does; a bad `limit`, `marker` or value is `VPC.0101`).
//!
//! Load balancers are paged by the store (SQL). Members live inside one load balancer, which
//! the store reads whole, bounded by the members quota: they are filtered and paged here.
//! Listeners and pools live in a load balancer's kept document (no column says whether one
//! exists), so SQL cannot page them without a schema change: their views, one per load
//! balancer of the project (bounded by the load-balancer quota), are filtered and paged here.

use serde_json::{json, Value as Json};
use tmirror_model::LbMember;
use tmirror_store::{ListQuery, LoadBalancerField, StoreError, Value};

use super::error::{from_service, invalid};
use super::query::{list_query, Kind, Query, MAX_LIMIT};
use super::V3;
use crate::http::ApiError;

/// The load-balancer filters tmirror can answer (fields it keeps as columns).
const LB_FIELDS: &[(&str, LoadBalancerField, Kind)] = &[
    ("id", LoadBalancerField::Id, Kind::Text),
    ("name", LoadBalancerField::Name, Kind::Text),
    ("description", LoadBalancerField::Description, Kind::Text),
    ("vip_address", LoadBalancerField::VipAddress, Kind::Text),
    (
        "admin_state_up",
        LoadBalancerField::AdminStateUp,
        Kind::Bool,
    ),
    (
        "member_address",
        LoadBalancerField::MemberAddress,
        Kind::Text,
    ),
];

/// The member filters tmirror can answer.
#[derive(Clone, Copy)]
pub enum MemberField {
    Id,
    Name,
    Address,
    ProtocolPort,
    Weight,
    AdminStateUp,
    SubnetCidrId,
    OperatingStatus,
}

const MEMBER_FIELDS: &[(&str, MemberField, Kind)] = &[
    ("id", MemberField::Id, Kind::Text),
    ("name", MemberField::Name, Kind::Text),
    ("address", MemberField::Address, Kind::Text),
    ("protocol_port", MemberField::ProtocolPort, Kind::Int),
    ("weight", MemberField::Weight, Kind::Int),
    ("admin_state_up", MemberField::AdminStateUp, Kind::Bool),
    ("subnet_cidr_id", MemberField::SubnetCidrId, Kind::Text),
    ("operating_status", MemberField::OperatingStatus, Kind::Text),
];

/// The listener filters: keys of the listener's view (`loadbalancer_id` is one of its
/// `loadbalancers`).
const LISTENER_FIELDS: &[(&str, &str, Kind)] = &[
    ("id", "id", Kind::Text),
    ("name", "name", Kind::Text),
    ("description", "description", Kind::Text),
    ("loadbalancer_id", "loadbalancer_id", Kind::Text),
    ("protocol", "protocol", Kind::Text),
    ("protocol_port", "protocol_port", Kind::Int),
    ("default_pool_id", "default_pool_id", Kind::Text),
    ("admin_state_up", "admin_state_up", Kind::Bool),
];

/// The pool filters, as the listener's (`listener_id` is one of its `listeners`).
const POOL_FIELDS: &[(&str, &str, Kind)] = &[
    ("id", "id", Kind::Text),
    ("name", "name", Kind::Text),
    ("description", "description", Kind::Text),
    ("loadbalancer_id", "loadbalancer_id", Kind::Text),
    ("listener_id", "listener_id", Kind::Text),
    ("protocol", "protocol", Kind::Text),
    ("lb_algorithm", "lb_algorithm", Kind::Text),
    ("healthmonitor_id", "healthmonitor_id", Kind::Text),
];

/// The health monitor filters: keys of the monitor's view (`pool_id` is one of its `pools`).
const MONITOR_FIELDS: &[(&str, &str, Kind)] = &[
    ("id", "id", Kind::Text),
    ("name", "name", Kind::Text),
    ("pool_id", "pool_id", Kind::Text),
    ("type", "type", Kind::Text),
    ("monitor_port", "monitor_port", Kind::Int),
    ("delay", "delay", Kind::Int),
    ("timeout", "timeout", Kind::Int),
    ("max_retries", "max_retries", Kind::Int),
    ("max_retries_down", "max_retries_down", Kind::Int),
    ("admin_state_up", "admin_state_up", Kind::Bool),
];

/// A parsed ELB list request: the query, and whether to page backwards.
pub struct ListRequest<F> {
    pub query: ListQuery<F>,
    pub reverse: bool,
}

fn request<F: Copy>(
    raw: Option<&str>,
    fields: &[(&str, F, Kind)],
) -> Result<ListRequest<F>, ApiError> {
    let q = Query::parse(raw);
    let reverse = match q.all("page_reverse") {
        [] => false,
        [one] => match one.trim().to_ascii_lowercase().as_str() {
            "" | "false" => false,
            "true" => true,
            _ => {
                return Err(invalid(
                    V3,
                    format!("query parameter page_reverse must be true or false, not {one:?}"),
                ))
            }
        },
        _ => {
            return Err(invalid(
                V3,
                "query parameter page_reverse may be given only once",
            ))
        }
    };
    // ELB's lists default to their largest page (2000), as the VPC face's do.
    let query = list_query(&q, fields, MAX_LIMIT, MAX_LIMIT, V3)?;
    Ok(ListRequest { query, reverse })
}

pub fn lb_request(raw: Option<&str>) -> Result<ListRequest<LoadBalancerField>, ApiError> {
    request(raw, LB_FIELDS)
}

pub fn member_request(raw: Option<&str>) -> Result<ListRequest<MemberField>, ApiError> {
    request(raw, MEMBER_FIELDS)
}

pub fn listener_request(raw: Option<&str>) -> Result<ListRequest<&'static str>, ApiError> {
    request(raw, LISTENER_FIELDS)
}

pub fn pool_request(raw: Option<&str>) -> Result<ListRequest<&'static str>, ApiError> {
    request(raw, POOL_FIELDS)
}

pub fn monitor_request(raw: Option<&str>) -> Result<ListRequest<&'static str>, ApiError> {
    request(raw, MONITOR_FIELDS)
}

/// Whether a view's `key` equals `v`; `loadbalancer_id`, `listener_id` and `pool_id` name one
/// of the view's `loadbalancers` / `listeners` / `pools` references.
fn view_matches(view: &Json, key: &str, v: &Value) -> bool {
    let refs = match key {
        "loadbalancer_id" => Some("loadbalancers"),
        "listener_id" => Some("listeners"),
        "pool_id" => Some("pools"),
        _ => None,
    };
    if let Some(refs) = refs {
        let Value::Text(want) = v else { return false };
        return view[refs]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["id"].as_str() == Some(want)));
    }
    match v {
        Value::Text(s) => view[key].as_str() == Some(s),
        Value::Int(i) => view[key].as_i64() == Some(*i),
        Value::Bool(b) => view[key].as_bool() == Some(*b),
    }
}

/// One page of `views` (in creation order) as `r` asks, as [`member_page`] pages members.
pub fn view_page(
    views: Vec<Json>,
    r: &ListRequest<&'static str>,
) -> Result<(Vec<Json>, bool), ApiError> {
    let q = &r.query;
    let matching: Vec<Json> = views
        .into_iter()
        .filter(|view| {
            q.conditions
                .iter()
                .all(|c| c.values.iter().any(|v| view_matches(view, c.field, v)))
        })
        .collect();
    let ids: Vec<String> = matching
        .iter()
        .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let (start, end) = window(&ids, r)?;
    Ok(slice(matching, start, end, r))
}

/// The range of `ids` a page is taken from: after the marker, or before it backwards (an id
/// not among `ids` is refused as the store refuses an unknown marker).
fn window<F>(ids: &[String], r: &ListRequest<F>) -> Result<(usize, usize), ApiError> {
    match &r.query.marker {
        // Without a marker, backwards is the last page.
        None => Ok((0, ids.len())),
        Some(marker) => {
            let at = ids.iter().position(|id| id == marker).ok_or_else(|| {
                from_service(StoreError::UnknownMarker(marker.clone()).into(), V3)
            })?;
            Ok(if r.reverse {
                (0, at)
            } else {
                (at + 1, ids.len())
            })
        }
    }
}

/// `limit` items of `items[start..end]`, from its start (or its end, backwards), and whether
/// more remain in the paging direction.
fn slice<T, F>(items: Vec<T>, start: usize, end: usize, r: &ListRequest<F>) -> (Vec<T>, bool) {
    let limit = r.query.limit.max(1) as usize;
    let len = end - start;
    let (from, to) = if r.reverse {
        (end - len.min(limit), end)
    } else {
        (start, start + len.min(limit))
    };
    let page = items.into_iter().skip(from).take(to - from).collect();
    (page, len > limit)
}

fn member_matches(m: &LbMember, field: MemberField, v: &Value) -> bool {
    match (field, v) {
        (MemberField::Id, Value::Text(s)) => m.id.to_string() == *s,
        (MemberField::Name, Value::Text(s)) => m.name == *s,
        // Compared as addresses, so that `::1` and `0:0::1` agree.
        (MemberField::Address, Value::Text(s)) => {
            s.parse::<std::net::IpAddr>().ok() == Some(m.address)
        }
        (MemberField::ProtocolPort, Value::Int(i)) => i64::from(m.port) == *i,
        (MemberField::Weight, Value::Int(i)) => i64::from(m.weight.get()) == *i,
        (MemberField::AdminStateUp, Value::Bool(b)) => m.admin_state_up == *b,
        (MemberField::SubnetCidrId, Value::Text(s)) => m.subnet_id == *s,
        (MemberField::OperatingStatus, Value::Text(s)) => m.operating_status.as_str() == s,
        _ => false,
    }
}

/// One page of `members` (a load balancer's, in order of addition) as `r` asks: filters
/// first, then the marker (a member of the filtered list, or the request is refused as the
/// store refuses an unknown marker), then `limit` items forwards or backwards. Returns the
/// page and whether more follow in the paging direction.
pub fn member_page<'a>(
    members: &'a [LbMember],
    r: &ListRequest<MemberField>,
) -> Result<(Vec<&'a LbMember>, bool), ApiError> {
    let q = &r.query;
    let matching: Vec<&LbMember> = members
        .iter()
        .filter(|m| {
            q.conditions
                .iter()
                .all(|c| c.values.iter().any(|v| member_matches(m, c.field, v)))
        })
        .collect();
    let ids: Vec<String> = matching.iter().map(|m| m.id.to_string()).collect();
    let (start, end) = window(&ids, r)?;
    Ok(slice(matching, start, end, r))
}

/// Huawei's `page_info`. Items are always in creation order. Forwards, `previous_marker` is
/// the first item and `next_marker` the last when more follow; backwards (`page_reverse`),
/// `previous_marker` is the first item when earlier ones remain and `next_marker` the last
/// (the items after it are the ones the marker started from).
pub fn page_info(ids: &[String], more: bool, reverse: bool) -> Json {
    let (previous, next) = if reverse {
        (ids.first().filter(|_| more), ids.last())
    } else {
        (ids.first(), ids.last().filter(|_| more))
    };
    let mut info = json!({ "current_count": ids.len() });
    if let Some(p) = previous {
        info["previous_marker"] = json!(p);
    }
    if let Some(n) = next {
        info["next_marker"] = json!(n);
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_info_forward_and_reverse() {
        let ids = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(
            page_info(&ids, true, false),
            json!({"current_count": 2, "previous_marker": "a", "next_marker": "b"})
        );
        assert_eq!(
            page_info(&ids, false, false),
            json!({"current_count": 2, "previous_marker": "a"})
        );
        assert_eq!(
            page_info(&ids, false, true),
            json!({"current_count": 2, "next_marker": "b"})
        );
        assert_eq!(page_info(&[], false, false), json!({"current_count": 0}));
    }
}
