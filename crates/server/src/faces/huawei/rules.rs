//! `/v3/{project_id}/vpc/traffic-mirror-filter-rules`: a top-level collection; the filter id
//! travels in the body.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use ipnet::IpNet;
use serde::Deserialize;
use tmirror_model::*;
use tmirror_store::RuleField;
use utoipa::ToSchema;

use super::doc::{self, LenientInteger, ProjectPath, RulePath, V3Error};
use super::error::{from_service, invalid};
use super::input::{self, check_description, lenient_int, ranged};
use super::query::{list_query, Kind, Query, MAX_LIMIT};
use super::views::{body, PageInfo, RuleListReply, RuleReply, RuleView};
use super::{path_id, V3};
use crate::auth::Caller;
use crate::http::{ApiError, RequestId};
use crate::service::{RuleCreate, RuleUpdate};
use crate::AppState;

/// The collection path, as in the annotations below.
pub(super) const COLLECTION: &str = "/v3/{project_id}/vpc/traffic-mirror-filter-rules";

/// `{"traffic_mirror_filter_rule": CreateTrafficMirrorFilterRuleOption}`.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreateTrafficMirrorFilterRuleRequestBody)]
struct CreateBody {
    traffic_mirror_filter_rule: CreateOption,
}

/// A new traffic mirror filter rule.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreateTrafficMirrorFilterRuleOption)]
struct CreateOption {
    /// An existing filter of the project; at most 10 rules per direction.
    traffic_mirror_filter_id: String,
    /// `ingress` or `egress`.
    #[schema(example = "ingress")]
    direction: String,
    /// `TCP`, `UDP`, `ICMP`, `ICMPV6` or `ALL`, in any letter case (kept as given).
    #[schema(example = "TCP")]
    protocol: String,
    /// `IPv4` or `IPv6`, in any letter case.
    #[schema(example = "IPv4")]
    ethertype: String,
    /// `accept` (mirror) or `reject` (do not mirror).
    #[schema(example = "accept")]
    action: String,
    /// 1–65535, unique within the filter and direction (`VPC.1710`); a smaller value is a
    /// higher priority.
    #[serde(deserialize_with = "lenient_int")]
    #[schema(value_type = LenientInteger, required = true)]
    priority: Option<i64>,
    /// 0–255 characters without `<` or `>`; default `""`.
    #[serde(default)]
    description: Option<String>,
    /// IPv4 or IPv6 CIDR (surrounding spaces are trimmed); absent or `""` means any.
    #[serde(default)]
    #[schema(example = "192.168.0.0/24")]
    source_cidr_block: Option<String>,
    /// IPv4 or IPv6 CIDR; absent or `""` means any.
    #[serde(default)]
    #[schema(example = "192.168.0.0/24")]
    destination_cidr_block: Option<String>,
    /// `from-to`, ports 1–65535, only for TCP and UDP; absent or `""` means any.
    #[serde(default)]
    #[schema(example = "80-200")]
    source_port_range: Option<String>,
    /// `from-to`, ports 1–65535, only for TCP and UDP; absent or `""` means any.
    #[serde(default)]
    #[schema(example = "80-200")]
    destination_port_range: Option<String>,
}

/// `{"traffic_mirror_filter_rule": UpdateTrafficMirrorFilterRuleOption}`.
#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateTrafficMirrorFilterRuleRequestBody)]
struct UpdateBody {
    traffic_mirror_filter_rule: UpdateOption,
}

/// Changes to a traffic mirror filter rule; absent fields are left as they are, `""` clears a
/// CIDR or port range. A protocol without ports clears the port ranges.
#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateTrafficMirrorFilterRuleOption)]
struct UpdateOption {
    /// `TCP`, `UDP`, `ICMP`, `ICMPV6` or `ALL`, in any letter case.
    #[schema(example = "TCP")]
    protocol: Option<String>,
    /// `IPv4` or `IPv6`, in any letter case.
    #[schema(example = "IPv4")]
    ethertype: Option<String>,
    /// `accept` or `reject`.
    #[schema(example = "accept")]
    action: Option<String>,
    /// 1–65535, unique within the filter and direction (`VPC.1710`).
    #[serde(default, deserialize_with = "lenient_int")]
    #[schema(value_type = Option<LenientInteger>)]
    priority: Option<i64>,
    /// 0–255 characters without `<` or `>`.
    description: Option<String>,
    /// IPv4 or IPv6 CIDR; `""` means any.
    source_cidr_block: Option<String>,
    /// IPv4 or IPv6 CIDR; `""` means any.
    destination_cidr_block: Option<String>,
    /// `from-to`, ports 1–65535; `""` means any.
    source_port_range: Option<String>,
    /// `from-to`, ports 1–65535; `""` means any.
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
    let reply = RuleReply {
        request_id: rid.0.clone(),
        traffic_mirror_filter_rule: RuleView::from(r),
    };
    (status, body(&reply)).into_response()
}

/// Creates a traffic mirror filter rule in a filter.
#[utoipa::path(
    post,
    path = "/v3/{project_id}/vpc/traffic-mirror-filter-rules",
    operation_id = "create_traffic_mirror_filter_rule",
    tag = doc::RULES,
    params(ProjectPath),
    request_body = CreateBody,
    responses(
        (status = 201, description = "The rule was created.", body = RuleReply),
        (status = 400, description = "Invalid request (`VPC.0101`), e.g. port ranges on a protocol without ports.", body = V3Error),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`).", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V3Error),
        (status = 404, description = "No such filter (`VPC.1702`).", body = V3Error),
        (status = 409, description = "Priority in use in the filter and direction (`VPC.1710`); quota exceeded (`VPC.0114`).", body = V3Error),
    ),
)]
pub async fn create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let o = input::parse::<CreateBody>(&body, V3)?.traffic_mirror_filter_rule;
    let description = o.description.unwrap_or_default();
    check_description("description", &description, V3)?;
    let (protocol, spelling) = protocol(&o.protocol)?;
    let priority = o
        .priority
        .ok_or_else(|| invalid(V3, "priority: required"))?;
    let input = RuleCreate {
        filter_id: input::id("traffic_mirror_filter_id", &o.traffic_mirror_filter_id, V3)?,
        direction: direction(&o.direction)?,
        priority: ranged("priority", priority, V3)?,
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
        .rule_create(&caller.actor(), input)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(answer(StatusCode::CREATED, &r, &rid))
}

/// Shows a traffic mirror filter rule.
#[utoipa::path(
    get,
    path = "/v3/{project_id}/vpc/traffic-mirror-filter-rules/{traffic_mirror_filter_rule_id}",
    operation_id = "show_traffic_mirror_filter_rule",
    tag = doc::RULES,
    params(RulePath),
    responses(
        (status = 200, description = "The rule.", body = RuleReply),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`).", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V3Error),
        (status = 404, description = "No such rule (`VPC.1703`).", body = V3Error),
    ),
)]
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

/// Lists traffic mirror filter rules of all filters, in creation order, one page at a time.
#[utoipa::path(
    get,
    path = "/v3/{project_id}/vpc/traffic-mirror-filter-rules",
    operation_id = "list_traffic_mirror_filter_rules",
    tag = doc::RULES,
    params(ProjectPath),
    responses(
        (status = 200, description = "A page of rules.", body = RuleListReply),
        (status = 400, description = "Bad query parameter, limit or marker (`VPC.0101`).", body = V3Error),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`).", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V3Error),
    ),
)]
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
    let reply = RuleListReply {
        page_info: PageInfo::new(&ids, page.more),
        request_id: rid.0,
        traffic_mirror_filter_rules: views,
    };
    Ok(body(&reply).into_response())
}

/// Updates a traffic mirror filter rule.
#[utoipa::path(
    put,
    path = "/v3/{project_id}/vpc/traffic-mirror-filter-rules/{traffic_mirror_filter_rule_id}",
    operation_id = "update_traffic_mirror_filter_rule",
    tag = doc::RULES,
    params(RulePath),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The updated rule.", body = RuleReply),
        (status = 400, description = "Invalid request (`VPC.0101`).", body = V3Error),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`).", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V3Error),
        (status = 404, description = "No such rule (`VPC.1703`).", body = V3Error),
        (status = 409, description = "Priority in use in the filter and direction (`VPC.1710`).", body = V3Error),
    ),
)]
pub async fn update(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Rule, &id)?;
    let o = input::parse::<UpdateBody>(&body, V3)?.traffic_mirror_filter_rule;
    if let Some(d) = &o.description {
        check_description("description", d, V3)?;
    }
    let input = RuleUpdate {
        priority: o.priority.map(|p| ranged("priority", p, V3)).transpose()?,
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
        .rule_update(&caller.actor(), id, input)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(answer(StatusCode::OK, &r, &rid))
}

/// Deletes a traffic mirror filter rule.
#[utoipa::path(
    delete,
    path = "/v3/{project_id}/vpc/traffic-mirror-filter-rules/{traffic_mirror_filter_rule_id}",
    operation_id = "delete_traffic_mirror_filter_rule",
    tag = doc::RULES,
    params(RulePath),
    responses(
        (status = 204, description = "The rule was deleted; no body."),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`).", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V3Error),
        (status = 404, description = "No such rule (`VPC.1703`).", body = V3Error),
    ),
)]
pub async fn delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Rule, &id)?;
    st.service
        .rule_delete(&caller.actor(), id)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The list's query parameters, from [`FIELDS`].
pub(super) fn list_parameters() -> Vec<utoipa::openapi::path::Parameter> {
    doc::list_parameters(FIELDS, MAX_LIMIT)
}
