//! `/v3/{project_id}/vpc/traffic-mirror-sessions`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use tmirror_model::*;
use tmirror_store::SessionField;
use utoipa::ToSchema;

use super::doc::{self, LenientBoolean, LenientInteger, ProjectPath, SessionPath, V3Error};
use super::error::{from_service, invalid};
use super::input::{
    self, check_description, check_name, lenient_bool, lenient_int, ranged, ranged_within,
};
use super::query::{list_query, Kind, Query, MAX_LIMIT};
use super::views::{body, PageInfo, SessionListReply, SessionReply, SessionView};
use super::{path_id, V3};
use crate::auth::Caller;
use crate::http::{ApiError, RequestId};
use crate::service::{SessionCreate, SessionUpdate, TargetChange};
use crate::AppState;

/// The collection path, as in the annotations below.
pub(super) const COLLECTION: &str = "/v3/{project_id}/vpc/traffic-mirror-sessions";

/// `{"traffic_mirror_session": CreateTrafficMirrorSessionOption}`.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreateTrafficMirrorSessionRequestBody)]
struct CreateBody {
    traffic_mirror_session: CreateOption,
}

/// A new traffic mirror session.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreateTrafficMirrorSessionOption)]
struct CreateOption {
    /// 1–64 letters (Chinese included), digits, `_`, `-`, `.`.
    name: String,
    /// 0–255 characters without `<` or `>`; default `""`.
    #[serde(default)]
    description: Option<String>,
    /// An existing filter of the project.
    traffic_mirror_filter_id: String,
    /// Existing ports of the project, without duplicates, at most 10; may be empty.
    traffic_mirror_sources: Vec<String>,
    /// An existing port of the project (`eni`) that is not also a source, or an existing load
    /// balancer of the project (`elb`).
    traffic_mirror_target_id: String,
    /// `eni` (a port) or `elb` (a load balancer).
    #[schema(example = "eni")]
    traffic_mirror_target_type: String,
    /// VXLAN network identifier, 0–16777215; default 1.
    #[serde(default, deserialize_with = "lenient_int")]
    #[schema(value_type = Option<LenientInteger>)]
    virtual_network_id: Option<i64>,
    /// Largest mirrored packet length ("MTU"), 1–1460; default 96.
    #[serde(default, deserialize_with = "lenient_int")]
    #[schema(value_type = Option<LenientInteger>)]
    packet_length: Option<i64>,
    /// 1–32766, unique within the project (`VPC.1710`); a smaller value is a higher priority.
    #[serde(deserialize_with = "lenient_int")]
    #[schema(value_type = LenientInteger, required = true)]
    priority: Option<i64>,
    /// Whether the session mirrors traffic; default `false`.
    #[serde(default, deserialize_with = "lenient_bool")]
    #[schema(value_type = Option<LenientBoolean>)]
    enabled: Option<bool>,
    /// Mirror source type: `eni` (the default and the only one supported).
    #[serde(default, rename = "type")]
    #[schema(example = "eni")]
    source_type: Option<String>,
}

/// `{"traffic_mirror_session": UpdateTrafficMirrorSessionOption}`.
#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateTrafficMirrorSessionRequestBody)]
struct UpdateBody {
    traffic_mirror_session: UpdateOption,
}

/// Changes to a traffic mirror session; absent fields are left as they are. Sources change
/// only through add-sources and remove-sources.
#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateTrafficMirrorSessionOption)]
struct UpdateOption {
    /// 1–64 letters (Chinese included), digits, `_`, `-`, `.`.
    name: Option<String>,
    /// 0–255 characters without `<` or `>`.
    description: Option<String>,
    /// An existing filter of the project.
    traffic_mirror_filter_id: Option<String>,
    /// An existing port of the project that is not a source of the session, or load balancer
    /// of the project; of the type given with it, else of the session's current type.
    traffic_mirror_target_id: Option<String>,
    /// `eni` (a port) or `elb` (a load balancer); alone, it keeps the current target id.
    #[schema(example = "eni")]
    traffic_mirror_target_type: Option<String>,
    /// VXLAN network identifier, 0–16777215.
    #[serde(default, deserialize_with = "lenient_int")]
    #[schema(value_type = Option<LenientInteger>)]
    virtual_network_id: Option<i64>,
    /// Largest mirrored packet length ("MTU"), 1–1460.
    #[serde(default, deserialize_with = "lenient_int")]
    #[schema(value_type = Option<LenientInteger>)]
    packet_length: Option<i64>,
    /// 1–32766, unique within the project (`VPC.1710`).
    #[serde(default, deserialize_with = "lenient_int")]
    #[schema(value_type = Option<LenientInteger>)]
    priority: Option<i64>,
    /// Whether the session mirrors traffic.
    #[serde(default, deserialize_with = "lenient_bool")]
    #[schema(value_type = Option<LenientBoolean>)]
    enabled: Option<bool>,
    /// Mirror source type: `eni`.
    #[serde(default, rename = "type")]
    #[schema(example = "eni")]
    source_type: Option<String>,
}

/// `{"traffic_mirror_session": TrafficMirrorSourcesOption}`.
#[derive(Deserialize, ToSchema)]
#[schema(as = TrafficMirrorSourcesRequestBody)]
struct SourcesBody {
    traffic_mirror_session: SourcesOption,
}

/// Source ports to add to or remove from a session.
#[derive(Deserialize, ToSchema)]
#[schema(as = TrafficMirrorSourcesOption)]
struct SourcesOption {
    /// Port ids, without duplicates.
    traffic_mirror_sources: Vec<String>,
}

fn vni(v: Option<i64>) -> Result<Option<Vni>, ApiError> {
    v.map(|v| ranged("virtual_network_id", v, V3)).transpose()
}

/// Huawei copies at most 1460 bytes of a packet (the model allows up to 8500, for Alibaba).
const PACKET_LENGTH: std::ops::RangeInclusive<i64> = PacketLength::LOWEST..=1460;

fn packet_length(v: Option<i64>) -> Result<Option<PacketLength>, ApiError> {
    v.map(|v| ranged_within("packet_length", v, PACKET_LENGTH, V3))
        .transpose()
}

fn target_type(s: &str) -> Result<TargetType, ApiError> {
    s.parse().map_err(|e: InvalidValue| invalid(V3, e.0))
}

/// The mirror source type: `eni` (ports) or `eip` (elastic IPs, the 2025 pages).
fn source_type(s: Option<String>) -> Result<Option<SourceType>, ApiError> {
    s.map(|s| s.parse().map_err(|e: InvalidValue| invalid(V3, e.0)))
        .transpose()
}

/// Source ids; what they name (ports or elastic IPs) is the session's `type`.
fn source_ids(field: &str, ids: &[String]) -> Result<Vec<uuid::Uuid>, ApiError> {
    ids.iter()
        .map(|s| input::id::<PortId>(field, s, V3).map(|p| p.0))
        .collect()
}

async fn answer(
    st: &AppState,
    status: StatusCode,
    s: &Session,
    rid: &RequestId,
) -> Result<Response, ApiError> {
    let degraded = st
        .service
        .session_targets_degraded(&s.project_id, std::slice::from_ref(s))
        .await
        .map_err(|e| from_service(e, V3))?;
    let reply = SessionReply {
        request_id: rid.0.clone(),
        traffic_mirror_session: SessionView::new(s, degraded.get(&s.id).copied()),
    };
    Ok((status, body(&reply)).into_response())
}

/// Creates a traffic mirror session.
#[utoipa::path(
    post,
    path = "/v3/{project_id}/vpc/traffic-mirror-sessions",
    operation_id = "create_traffic_mirror_session",
    tag = doc::SESSIONS,
    params(ProjectPath),
    request_body = CreateBody,
    responses(
        (status = 201, description = "The session was created.", body = SessionReply),
        (status = 400, description = "Invalid request (`VPC.0101`); a port both source and target (`VPC.1713`); a target port without a fixed IP (`VPC.1714`).", body = V3Error),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`).", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V3Error),
        (status = 404, description = "The filter (`VPC.1702`), a port (`VPC.1704`) or the target load balancer (`ELB.8902`) does not exist.", body = V3Error),
        (status = 409, description = "Priority in use (`VPC.1710`); quota exceeded: sources per session, sessions per source port, sessions per project (`VPC.0114`).", body = V3Error),
    ),
)]
pub async fn create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let o = input::parse::<CreateBody>(&body, V3)?.traffic_mirror_session;
    check_name("name", &o.name, V3)?;
    let description = o.description.unwrap_or_default();
    check_description("description", &description, V3)?;
    let priority = o
        .priority
        .ok_or_else(|| invalid(V3, "priority: required"))?;
    let input = SessionCreate {
        name: o.name,
        description,
        filter_id: input::id("traffic_mirror_filter_id", &o.traffic_mirror_filter_id, V3)?,
        sources: SessionSources::from_raw(
            source_type(o.source_type)?.unwrap_or_default(),
            source_ids("traffic_mirror_sources", &o.traffic_mirror_sources)?,
        ),
        target: SessionTarget::of_kind(
            target_type(&o.traffic_mirror_target_type)?,
            input::id("traffic_mirror_target_id", &o.traffic_mirror_target_id, V3)?,
        ),
        vni: vni(o.virtual_network_id)?.unwrap_or(Vni::DEFAULT),
        packet_length: packet_length(o.packet_length)?.unwrap_or(PacketLength::DEFAULT),
        priority: ranged("priority", priority, V3)?,
        enabled: o.enabled.unwrap_or(false),
    };
    let s = st
        .service
        .session_create(&caller.actor(), input)
        .await
        .map_err(|e| from_service(e, V3))?;
    answer(&st, StatusCode::CREATED, &s, &rid).await
}

/// Shows a traffic mirror session.
#[utoipa::path(
    get,
    path = "/v3/{project_id}/vpc/traffic-mirror-sessions/{traffic_mirror_session_id}",
    operation_id = "show_traffic_mirror_session",
    tag = doc::SESSIONS,
    params(SessionPath),
    responses(
        (status = 200, description = "The session.", body = SessionReply),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`).", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V3Error),
        (status = 404, description = "No such session (`VPC.1701`).", body = V3Error),
    ),
)]
pub async fn show(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Session, &id)?;
    let s = st
        .service
        .session_show(&caller.project, id)
        .await
        .map_err(|e| from_service(e, V3))?;
    answer(&st, StatusCode::OK, &s, &rid).await
}

const FIELDS: &[(&str, SessionField, Kind)] = &[
    ("id", SessionField::Id, Kind::Text),
    ("name", SessionField::Name, Kind::Text),
    ("description", SessionField::Description, Kind::Text),
    (
        "traffic_mirror_filter_id",
        SessionField::FilterId,
        Kind::Text,
    ),
    (
        "traffic_mirror_target_id",
        SessionField::TargetId,
        Kind::Text,
    ),
    (
        "traffic_mirror_target_type",
        SessionField::TargetType,
        Kind::Text,
    ),
    ("virtual_network_id", SessionField::Vni, Kind::Int),
    ("packet_length", SessionField::PacketLength, Kind::Int),
    ("priority", SessionField::Priority, Kind::Int),
    ("enabled", SessionField::Enabled, Kind::Bool),
    ("type", SessionField::SourceType, Kind::Text),
    ("created_at", SessionField::CreatedAt, Kind::Time),
    ("updated_at", SessionField::UpdatedAt, Kind::Time),
];

/// Lists traffic mirror sessions, in creation order, one page at a time.
#[utoipa::path(
    get,
    path = "/v3/{project_id}/vpc/traffic-mirror-sessions",
    operation_id = "list_traffic_mirror_sessions",
    tag = doc::SESSIONS,
    params(ProjectPath),
    responses(
        (status = 200, description = "A page of sessions.", body = SessionListReply),
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
        .session_list(&caller.project, &q)
        .await
        .map_err(|e| from_service(e, V3))?;
    let degraded = st
        .service
        .session_targets_degraded(&caller.project, &page.items)
        .await
        .map_err(|e| from_service(e, V3))?;
    let views: Vec<SessionView> = page
        .items
        .iter()
        .map(|s| SessionView::new(s, degraded.get(&s.id).copied()))
        .collect();
    let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    let reply = SessionListReply {
        page_info: PageInfo::new(&ids, page.more),
        request_id: rid.0,
        traffic_mirror_sessions: views,
    };
    Ok(body(&reply).into_response())
}

/// Updates a traffic mirror session.
#[utoipa::path(
    put,
    path = "/v3/{project_id}/vpc/traffic-mirror-sessions/{traffic_mirror_session_id}",
    operation_id = "update_traffic_mirror_session",
    tag = doc::SESSIONS,
    params(SessionPath),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The updated session.", body = SessionReply),
        (status = 400, description = "Invalid request (`VPC.0101`); a port both source and target (`VPC.1713`); a target port without a fixed IP (`VPC.1714`).", body = V3Error),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`).", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V3Error),
        (status = 404, description = "No such session (`VPC.1701`), filter (`VPC.1702`) or port (`VPC.1704`).", body = V3Error),
        (status = 409, description = "Priority in use (`VPC.1710`); quota exceeded (`VPC.0114`).", body = V3Error),
    ),
)]
pub async fn update(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Session, &id)?;
    let o = input::parse::<UpdateBody>(&body, V3)?.traffic_mirror_session;
    if let Some(n) = &o.name {
        check_name("name", n, V3)?;
    }
    if let Some(d) = &o.description {
        check_description("description", d, V3)?;
    }
    let input = SessionUpdate {
        name: o.name,
        description: o.description,
        filter_id: o
            .traffic_mirror_filter_id
            .map(|s| input::id("traffic_mirror_filter_id", &s, V3))
            .transpose()?,
        target: TargetChange {
            kind: o
                .traffic_mirror_target_type
                .as_deref()
                .map(target_type)
                .transpose()?,
            id: o
                .traffic_mirror_target_id
                .map(|s| input::id("traffic_mirror_target_id", &s, V3))
                .transpose()?,
        },
        vni: vni(o.virtual_network_id)?,
        packet_length: packet_length(o.packet_length)?,
        priority: o.priority.map(|p| ranged("priority", p, V3)).transpose()?,
        enabled: o.enabled,
        source_type: source_type(o.source_type)?,
    };
    let s = st
        .service
        .session_update(&caller.actor(), id, input)
        .await
        .map_err(|e| from_service(e, V3))?;
    answer(&st, StatusCode::OK, &s, &rid).await
}

/// Deletes a traffic mirror session.
#[utoipa::path(
    delete,
    path = "/v3/{project_id}/vpc/traffic-mirror-sessions/{traffic_mirror_session_id}",
    operation_id = "delete_traffic_mirror_session",
    tag = doc::SESSIONS,
    params(SessionPath),
    responses(
        (status = 204, description = "The session was deleted; no body."),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`).", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V3Error),
        (status = 404, description = "No such session (`VPC.1701`).", body = V3Error),
    ),
)]
pub async fn delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Session, &id)?;
    st.service
        .session_delete(&caller.actor(), id)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Adds source ports to a traffic mirror session, after the present ones.
#[utoipa::path(
    put,
    path = "/v3/{project_id}/vpc/traffic-mirror-sessions/{traffic_mirror_session_id}/add-sources",
    operation_id = "add_sources_to_traffic_mirror_session",
    tag = doc::SESSIONS,
    params(SessionPath),
    request_body = SourcesBody,
    responses(
        (status = 200, description = "The session with its new sources.", body = SessionReply),
        (status = 400, description = "Invalid request or duplicate ids (`VPC.0101`); a source that is the target (`VPC.1713`).", body = V3Error),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`).", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V3Error),
        (status = 404, description = "No such session (`VPC.1701`) or port (`VPC.1704`).", body = V3Error),
        (status = 409, description = "A port already a source (`VPC.1712`); quota exceeded (`VPC.0114`).", body = V3Error),
    ),
)]
pub async fn add_sources(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Session, &id)?;
    let o = input::parse::<SourcesBody>(&body, V3)?.traffic_mirror_session;
    let add = source_ids("traffic_mirror_sources", &o.traffic_mirror_sources)?;
    let s = st
        .service
        .session_add_sources(&caller.actor(), id, add)
        .await
        .map_err(|e| from_service(e, V3))?;
    answer(&st, StatusCode::OK, &s, &rid).await
}

/// Removes source ports from a traffic mirror session; a session may be left with none.
#[utoipa::path(
    put,
    path = "/v3/{project_id}/vpc/traffic-mirror-sessions/{traffic_mirror_session_id}/remove-sources",
    operation_id = "remove_sources_from_traffic_mirror_session",
    tag = doc::SESSIONS,
    params(SessionPath),
    request_body = SourcesBody,
    responses(
        (status = 200, description = "The session without those sources.", body = SessionReply),
        (status = 400, description = "Invalid request or duplicate ids (`VPC.0101`).", body = V3Error),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`).", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V3Error),
        (status = 404, description = "No such session (`VPC.1701`).", body = V3Error),
        (status = 409, description = "A port that is not a source of the session (`VPC.1712`).", body = V3Error),
    ),
)]
pub async fn remove_sources(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Session, &id)?;
    let o = input::parse::<SourcesBody>(&body, V3)?.traffic_mirror_session;
    let remove = source_ids("traffic_mirror_sources", &o.traffic_mirror_sources)?;
    let s = st
        .service
        .session_remove_sources(&caller.actor(), id, remove)
        .await
        .map_err(|e| from_service(e, V3))?;
    answer(&st, StatusCode::OK, &s, &rid).await
}

/// The list's query parameters, from [`FIELDS`].
pub(super) fn list_parameters() -> Vec<utoipa::openapi::path::Parameter> {
    doc::list_parameters(FIELDS, MAX_LIMIT)
}
