//! Paging and filters of the ELB v3 lists: `limit`, `marker`, `page_reverse` and the equality
//! filters huaweicloudsdkelb's List* requests send, parsed as the VPC lists parse theirs
//! (unknown keys ignored, as Huawei does; a bad `limit`, `marker` or value is `VPC.0101`).
//!
//! Load balancers are paged by the store (SQL). Members live inside one load balancer, which
//! the store reads whole, bounded by the members quota: they are filtered and paged here.

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
    ("admin_state_up", LoadBalancerField::AdminStateUp, Kind::Bool),
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
    let (start, end) = match &q.marker {
        // Without a marker, backwards is the last page.
        None => (0, matching.len()),
        Some(marker) => {
            let at = matching
                .iter()
                .position(|m| m.id.to_string() == *marker)
                .ok_or_else(|| {
                    from_service(StoreError::UnknownMarker(marker.clone()).into(), V3)
                })?;
            if r.reverse {
                (0, at)
            } else {
                (at + 1, matching.len())
            }
        }
    };
    let window = &matching[start..end];
    let limit = q.limit.max(1) as usize;
    let more = window.len() > limit;
    let page = if r.reverse {
        window[window.len().saturating_sub(limit)..].to_vec()
    } else {
        window[..window.len().min(limit)].to_vec()
    };
    Ok((page, more))
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
