//! `/v3/{project_id}/vpc/traffic-mirror-filters`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use tmirror_model::*;
use tmirror_store::FilterField;

use super::error::from_service;
use super::input::{self, check_description, check_name};
use super::query::{list_query, Kind, Query, MAX_LIMIT};
use super::views::{FilterView, PageInfo};
use super::{path_id, V3};
use crate::auth::Caller;
use crate::http::{ApiError, RequestId};
use crate::service::{FilterCreate, FilterUpdate};
use crate::AppState;

#[derive(Deserialize)]
struct Body<T> {
    traffic_mirror_filter: T,
}

#[derive(Deserialize)]
struct CreateOption {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct UpdateOption {
    name: Option<String>,
    description: Option<String>,
}

fn answer(status: StatusCode, f: &FilterWithRules, rid: &RequestId) -> Response {
    (
        status,
        Json(json!({"traffic_mirror_filter": FilterView::from(f), "request_id": rid.0})),
    )
        .into_response()
}

pub async fn create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let o = input::parse::<Body<CreateOption>>(&body, V3)?.traffic_mirror_filter;
    check_name("name", &o.name, V3)?;
    let description = o.description.unwrap_or_default();
    check_description("description", &description, V3)?;
    let f = st
        .service
        .filter_create(
            &caller.project,
            FilterCreate {
                name: o.name,
                description,
            },
        )
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(answer(StatusCode::CREATED, &f, &rid))
}

pub async fn show(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Filter, &id)?;
    let f = st
        .service
        .filter_show(&caller.project, id)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(answer(StatusCode::OK, &f, &rid))
}

const FIELDS: &[(&str, FilterField, Kind)] = &[
    ("id", FilterField::Id, Kind::Text),
    ("name", FilterField::Name, Kind::Text),
    ("description", FilterField::Description, Kind::Text),
    ("created_at", FilterField::CreatedAt, Kind::Time),
    ("updated_at", FilterField::UpdatedAt, Kind::Time),
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
        .filter_list(&caller.project, &q)
        .await
        .map_err(|e| from_service(e, V3))?;
    let views: Vec<FilterView> = page.items.iter().map(FilterView::from).collect();
    let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    Ok(Json(json!({
        "traffic_mirror_filters": views,
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
    let id = path_id(ResourceKind::Filter, &id)?;
    let o = input::parse::<Body<UpdateOption>>(&body, V3)?.traffic_mirror_filter;
    if let Some(n) = &o.name {
        check_name("name", n, V3)?;
    }
    if let Some(d) = &o.description {
        check_description("description", d, V3)?;
    }
    let f = st
        .service
        .filter_update(
            &caller.project,
            id,
            FilterUpdate {
                name: o.name,
                description: o.description,
            },
        )
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(answer(StatusCode::OK, &f, &rid))
}

pub async fn delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Filter, &id)?;
    st.service
        .filter_delete(&caller.project, id)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
