//! `/v3/{project_id}/vpc/traffic-mirror-filter-rules`: a top-level collection; the filter id
//! travels in the body.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::json;
use tmirror_model::*;
use tmirror_store::RuleField;

use super::error::{from_service, invalid};
use super::input::{self, check_description, lenient_int, ranged};
use super::query::{list_query, Kind, Query, MAX_LIMIT};
use super::views::{PageInfo, RuleView};
use super::{path_id, V3};
use crate::auth::Caller;
use crate::http::{ApiError, RequestId};
use crate::service::{RuleCreate, RuleUpdate};
use crate::AppState;

#[derive(Deserialize)]
struct Body<T> {
    traffic_mirror_filter_rule: T,
}

#[derive(Deserialize)]
struct CreateOption {
    traffic_mirror_filter_id: String,
    direction: String,
    protocol: String,
    ethertype: String,
    action: String,
    #[serde(deserialize_with = "lenient_int")]
    priority: Option<i64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    source_cidr_block: Option<String>,
    #[serde(default)]
    destination_cidr_block: Option<String>,
    #[serde(default)]
    source_port_range: Option<String>,
    #[serde(default)]
    destination_port_range: Option<String>,
}

#[derive(Deserialize)]
struct UpdateOption {
    protocol: Option<String>,
    ethertype: Option<String>,
    action: Option<String>,
    #[serde(default, deserialize_with = "lenient_int")]
    priority: Option<i64>,
    description: Option<String>,
    source_cidr_block: Option<String>,
    destination_cidr_block: Option<String>,
    source_port_range: Option<String>,
    destination_port_range: Option<String>,
}

fn direction(s: &str) -> Result<Direction, ApiError> {
    s.parse()
        .map_err(|e: InvalidValue| invalid(V3, format!("direction: {e}")))
}

fn protocol(s: &str) -> Result<(Protocol, String), ApiError> {
    let p = s
        .trim()
        .parse()
        .map_err(|e: InvalidValue| invalid(V3, format!("protocol: {e}")))?;
    Ok((p, s.trim().to_owned()))
}

fn ethertype(s: &str) -> Result<Ethertype, ApiError> {
    s.trim()
        .parse()
        .map_err(|e: InvalidValue| invalid(V3, format!("ethertype: {e}")))
}

fn action(s: &str) -> Result<RuleAction, ApiError> {
    match s.trim() {
        "accept" => Ok(RuleAction::Accept),
        "reject" => Ok(RuleAction::Reject),
        other => Err(invalid(
            V3,
            format!("action: must be accept or reject, not {other:?}"),
        )),
    }
}

/// An optional CIDR: surrounding spaces are trimmed and `""` means "any".
fn cidr(field: &str, s: &str) -> Result<Option<IpNet>, ApiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<IpNet>().map(Some).map_err(|_| {
        invalid(
            V3,
            format!("{field}: {s:?} is not a CIDR such as 192.168.0.0/24 or 2002:50::44/128"),
        )
    })
}

/// An optional port range `from-to`; `""` means "any".
fn port_range(field: &str, s: &str) -> Result<Option<PortRange>, ApiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    PortRange::parse_with(s, '-')
        .map(Some)
        .map_err(|e| invalid(V3, format!("{field}: {e}")))
}

fn answer(status: StatusCode, r: &FilterRule, rid: &RequestId) -> Response {
    (
        status,
        Json(json!({"traffic_mirror_filter_rule": RuleView::from(r), "request_id": rid.0})),
    )
        .into_response()
}

pub async fn create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let o = input::parse::<Body<CreateOption>>(&body, V3)?.traffic_mirror_filter_rule;
    let description = o.description.unwrap_or_default();
    check_description("description", &description, V3)?;
    let (protocol, spelling) = protocol(&o.protocol)?;
    let priority = o
        .priority
        .ok_or_else(|| invalid(V3, "priority: required"))?;
    let input = RuleCreate {
        filter_id: input::id("traffic_mirror_filter_id", &o.traffic_mirror_filter_id, V3)?,
        direction: direction(&o.direction)?,
        priority: ranged("priority", Some(priority), 1, 65535, V3)?.expect("given"),
        action: action(&o.action)?,
        matches: RuleMatch {
            ethertype: ethertype(&o.ethertype)?,
            protocol,
            source_cidr: o
                .source_cidr_block
                .as_deref()
                .map(|s| cidr("source_cidr_block", s))
                .transpose()?
                .flatten(),
            destination_cidr: o
                .destination_cidr_block
                .as_deref()
                .map(|s| cidr("destination_cidr_block", s))
                .transpose()?
                .flatten(),
            source_port_range: o
                .source_port_range
                .as_deref()
                .map(|s| port_range("source_port_range", s))
                .transpose()?
                .flatten(),
            destination_port_range: o
                .destination_port_range
                .as_deref()
                .map(|s| port_range("destination_port_range", s))
                .transpose()?
                .flatten(),
        },
        protocol_spelling: spelling,
        description,
    };
    let r = st
        .service
        .rule_create(&caller.project, input)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(answer(StatusCode::CREATED, &r, &rid))
}

pub async fn show(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Rule, &id)?;
    let r = st
        .service
        .rule_show(&caller.project, id)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(answer(StatusCode::OK, &r, &rid))
}

const FIELDS: &[(&str, RuleField, Kind)] = &[
    ("id", RuleField::Id, Kind::Text),
    ("description", RuleField::Description, Kind::Text),
    ("traffic_mirror_filter_id", RuleField::FilterId, Kind::Text),
    ("direction", RuleField::Direction, Kind::Text),
    ("protocol", RuleField::Protocol, Kind::Text),
    ("ethertype", RuleField::Ethertype, Kind::Text),
    ("source_cidr_block", RuleField::SourceCidr, Kind::Text),
    (
        "destination_cidr_block",
        RuleField::DestinationCidr,
        Kind::Text,
    ),
    ("source_port_range", RuleField::SourcePortRange, Kind::Text),
    (
        "destination_port_range",
        RuleField::DestinationPortRange,
        Kind::Text,
    ),
    ("action", RuleField::Action, Kind::Text),
    ("priority", RuleField::Priority, Kind::Int),
];

pub async fn list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = list_query(
        &Query::parse(raw.as_deref()),
        FIELDS,
        MAX_LIMIT,
        MAX_LIMIT,
        V3,
    )?;
    let page = st
        .service
        .rule_list(&caller.project, &q)
        .await
        .map_err(|e| from_service(e, V3))?;
    let views: Vec<RuleView> = page.items.iter().map(RuleView::from).collect();
    let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    Ok(Json(json!({
        "traffic_mirror_filter_rules": views,
        "page_info": PageInfo::new(&ids, page.more),
        "request_id": rid.0,
    }))
    .into_response())
}

pub async fn update(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Rule, &id)?;
    let o = input::parse::<Body<UpdateOption>>(&body, V3)?.traffic_mirror_filter_rule;
    if let Some(d) = &o.description {
        check_description("description", d, V3)?;
    }
    let input = RuleUpdate {
        priority: ranged("priority", o.priority, 1, 65535, V3)?,
        action: o.action.as_deref().map(action).transpose()?,
        ethertype: o.ethertype.as_deref().map(ethertype).transpose()?,
        protocol: o.protocol.as_deref().map(protocol).transpose()?,
        source_cidr: o
            .source_cidr_block
            .as_deref()
            .map(|s| cidr("source_cidr_block", s))
            .transpose()?,
        destination_cidr: o
            .destination_cidr_block
            .as_deref()
            .map(|s| cidr("destination_cidr_block", s))
            .transpose()?,
        source_port_range: o
            .source_port_range
            .as_deref()
            .map(|s| port_range("source_port_range", s))
            .transpose()?,
        destination_port_range: o
            .destination_port_range
            .as_deref()
            .map(|s| port_range("destination_port_range", s))
            .transpose()?,
        description: o.description,
    };
    let r = st
        .service
        .rule_update(&caller.project, id, input)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(answer(StatusCode::OK, &r, &rid))
}

pub async fn delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Rule, &id)?;
    st.service
        .rule_delete(&caller.project, id)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
