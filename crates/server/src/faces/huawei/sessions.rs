//! `/v3/{project_id}/vpc/traffic-mirror-sessions`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use tmirror_model::*;
use tmirror_store::SessionField;

use super::error::{from_service, invalid};
use super::input::{self, check_description, check_name, lenient_bool, lenient_int, ranged};
use super::query::{list_query, Kind, Query, MAX_LIMIT};
use super::views::{PageInfo, SessionView};
use super::{path_id, V3};
use crate::auth::Caller;
use crate::http::{ApiError, RequestId};
use crate::service::{SessionCreate, SessionUpdate};
use crate::AppState;

#[derive(Deserialize)]
struct CreateBody {
    traffic_mirror_session: CreateOption,
}

#[derive(Deserialize)]
struct CreateOption {
    name: String,
    #[serde(default)]
    description: Option<String>,
    traffic_mirror_filter_id: String,
    traffic_mirror_sources: Vec<String>,
    traffic_mirror_target_id: String,
    traffic_mirror_target_type: String,
    #[serde(default, deserialize_with = "lenient_int")]
    virtual_network_id: Option<i64>,
    #[serde(default, deserialize_with = "lenient_int")]
    packet_length: Option<i64>,
    #[serde(deserialize_with = "lenient_int")]
    priority: Option<i64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    enabled: Option<bool>,
    #[serde(default, rename = "type")]
    source_type: Option<String>,
}

#[derive(Deserialize)]
struct UpdateBody {
    traffic_mirror_session: UpdateOption,
}

#[derive(Deserialize)]
struct UpdateOption {
    name: Option<String>,
    description: Option<String>,
    traffic_mirror_filter_id: Option<String>,
    traffic_mirror_target_id: Option<String>,
    traffic_mirror_target_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_int")]
    virtual_network_id: Option<i64>,
    #[serde(default, deserialize_with = "lenient_int")]
    packet_length: Option<i64>,
    #[serde(default, deserialize_with = "lenient_int")]
    priority: Option<i64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    enabled: Option<bool>,
    #[serde(default, rename = "type")]
    source_type: Option<String>,
}

#[derive(Deserialize)]
struct SourcesBody {
    traffic_mirror_session: SourcesOption,
}

#[derive(Deserialize)]
struct SourcesOption {
    traffic_mirror_sources: Vec<String>,
}

fn target_type(s: &str) -> Result<TargetType, ApiError> {
    s.parse().map_err(|e: InvalidValue| invalid(V3, e.0))
}

/// The mirror source type: `eni` (the 2025 pages add `eip`, which tmirror cannot mirror).
fn source_type(s: Option<String>) -> Result<Option<String>, ApiError> {
    match s.as_deref() {
        None => Ok(None),
        Some("eni") => Ok(Some("eni".into())),
        Some(other) => Err(invalid(
            V3,
            format!("type: only eni mirror sources are supported, not {other:?}"),
        )),
    }
}

fn ports(field: &str, ids: &[String]) -> Result<Vec<PortId>, ApiError> {
    ids.iter().map(|s| input::id(field, s, V3)).collect()
}

fn answer(status: StatusCode, s: &Session, rid: &RequestId) -> Response {
    (
        status,
        Json(json!({"traffic_mirror_session": SessionView::from(s), "request_id": rid.0})),
    )
        .into_response()
}

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
        sources: ports("traffic_mirror_sources", &o.traffic_mirror_sources)?,
        target_type: target_type(&o.traffic_mirror_target_type)?,
        target_id: input::id("traffic_mirror_target_id", &o.traffic_mirror_target_id, V3)?,
        vni: ranged(
            "virtual_network_id",
            o.virtual_network_id,
            0,
            16_777_215,
            V3,
        )?
        .unwrap_or(Vni::DEFAULT),
        packet_length: ranged("packet_length", o.packet_length, 1, 1460, V3)?
            .unwrap_or(PacketLength::DEFAULT),
        priority: ranged("priority", Some(priority), 1, 32766, V3)?.expect("given"),
        enabled: o.enabled.unwrap_or(false),
        source_type: source_type(o.source_type)?.unwrap_or_else(|| "eni".into()),
    };
    let s = st
        .service
        .session_create(&caller.project, input)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(answer(StatusCode::CREATED, &s, &rid))
}

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
    Ok(answer(StatusCode::OK, &s, &rid))
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
    let views: Vec<SessionView> = page.items.iter().map(SessionView::from).collect();
    let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    Ok(Json(json!({
        "traffic_mirror_sessions": views,
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
        target_id: o
            .traffic_mirror_target_id
            .map(|s| input::id("traffic_mirror_target_id", &s, V3))
            .transpose()?,
        target_type: o
            .traffic_mirror_target_type
            .as_deref()
            .map(target_type)
            .transpose()?,
        vni: ranged(
            "virtual_network_id",
            o.virtual_network_id,
            0,
            16_777_215,
            V3,
        )?,
        packet_length: ranged("packet_length", o.packet_length, 1, 1460, V3)?,
        priority: ranged("priority", o.priority, 1, 32766, V3)?,
        enabled: o.enabled,
        source_type: source_type(o.source_type)?,
    };
    let s = st
        .service
        .session_update(&caller.project, id, input)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(answer(StatusCode::OK, &s, &rid))
}

pub async fn delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Session, &id)?;
    st.service
        .session_delete(&caller.project, id)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn add_sources(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Session, &id)?;
    let o = input::parse::<SourcesBody>(&body, V3)?.traffic_mirror_session;
    let add = ports("traffic_mirror_sources", &o.traffic_mirror_sources)?;
    let s = st
        .service
        .session_add_sources(&caller.project, id, add)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(answer(StatusCode::OK, &s, &rid))
}

pub async fn remove_sources(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Session, &id)?;
    let o = input::parse::<SourcesBody>(&body, V3)?.traffic_mirror_session;
    let remove = ports("traffic_mirror_sources", &o.traffic_mirror_sources)?;
    let s = st
        .service
        .session_remove_sources(&caller.project, id, remove)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(answer(StatusCode::OK, &s, &rid))
}
