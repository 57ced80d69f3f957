//! `/v3/{project_id}/vpc/traffic-mirror-filters`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use tmirror_model::*;
use tmirror_store::FilterField;
use utoipa::ToSchema;

use super::doc::{self, FilterPath, ProjectPath, V3Error};
use super::error::from_service;
use super::input::{self, check_description, check_name};
use super::query::{list_query, Kind, Query, MAX_LIMIT};
use super::views::{body, FilterListReply, FilterReply, FilterView, PageInfo};
use super::{path_id, V3};
use crate::auth::Caller;
use crate::http::{ApiError, RequestId};
use crate::service::{FilterCreate, FilterUpdate};
use crate::AppState;

/// The collection path, as in the annotations below.
pub(super) const COLLECTION: &str = "/v3/{project_id}/vpc/traffic-mirror-filters";

/// `{"traffic_mirror_filter": CreateTrafficMirrorFilterOption}`.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreateTrafficMirrorFilterRequestBody)]
struct CreateBody {
    traffic_mirror_filter: CreateOption,
}

/// A new traffic mirror filter, without rules.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreateTrafficMirrorFilterOption)]
struct CreateOption {
    /// 1–64 letters (Chinese included), digits, `_`, `-`, `.`.
    name: String,
    /// 0–255 characters without `<` or `>`; default `""`.
    #[serde(default)]
    description: Option<String>,
}

/// `{"traffic_mirror_filter": UpdateTrafficMirrorFilterOption}`.
#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateTrafficMirrorFilterRequestBody)]
struct UpdateBody {
    traffic_mirror_filter: UpdateOption,
}

/// Changes to a traffic mirror filter; absent fields are left as they are.
#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateTrafficMirrorFilterOption)]
struct UpdateOption {
    /// 1–64 letters (Chinese included), digits, `_`, `-`, `.`.
    name: Option<String>,
    /// 0–255 characters without `<` or `>`.
    description: Option<String>,
}

fn answer(status: StatusCode, f: &FilterWithRules, rid: &RequestId) -> Response {
    let reply = FilterReply {
        request_id: rid.0.clone(),
        traffic_mirror_filter: FilterView::from(f),
    };
    (status, body(&reply)).into_response()
}

/// Creates a traffic mirror filter.
#[utoipa::path(
    post,
    path = "/v3/{project_id}/vpc/traffic-mirror-filters",
    operation_id = "create_traffic_mirror_filter",
    tag = doc::FILTERS,
    params(ProjectPath),
    request_body = CreateBody,
    responses(
        (status = 201, description = "The filter was created, with no rules.", body = FilterReply),
        (status = 400, description = "Invalid request (`VPC.0101`).", body = V3Error),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`).", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V3Error),
        (status = 409, description = "The project holds as many filters as its quota allows (`VPC.0114`).", body = V3Error),
    ),
)]
pub async fn create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let o = input::parse::<CreateBody>(&body, V3)?.traffic_mirror_filter;
    check_name("name", &o.name, V3)?;
    let description = o.description.unwrap_or_default();
    check_description("description", &description, V3)?;
    let f = st
        .service
        .filter_create(
            &caller.actor(),
            FilterCreate {
                name: o.name,
                description,
            },
        )
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(answer(StatusCode::CREATED, &f, &rid))
}

/// Shows a traffic mirror filter with its rules.
#[utoipa::path(
    get,
    path = "/v3/{project_id}/vpc/traffic-mirror-filters/{traffic_mirror_filter_id}",
    operation_id = "show_traffic_mirror_filter",
    tag = doc::FILTERS,
    params(FilterPath),
    responses(
        (status = 200, description = "The filter.", body = FilterReply),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`).", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V3Error),
        (status = 404, description = "No such filter (`VPC.1702`).", body = V3Error),
    ),
)]
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

/// Lists traffic mirror filters with their rules, in creation order, one page at a time.
#[utoipa::path(
    get,
    path = "/v3/{project_id}/vpc/traffic-mirror-filters",
    operation_id = "list_traffic_mirror_filters",
    tag = doc::FILTERS,
    params(ProjectPath),
    responses(
        (status = 200, description = "A page of filters.", body = FilterListReply),
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
        .filter_list(&caller.project, &q)
        .await
        .map_err(|e| from_service(e, V3))?;
    let views: Vec<FilterView> = page.items.iter().map(FilterView::from).collect();
    let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    let reply = FilterListReply {
        page_info: PageInfo::new(&ids, page.more),
        request_id: rid.0,
        traffic_mirror_filters: views,
    };
    Ok(body(&reply).into_response())
}

/// Updates a traffic mirror filter's name or description.
#[utoipa::path(
    put,
    path = "/v3/{project_id}/vpc/traffic-mirror-filters/{traffic_mirror_filter_id}",
    operation_id = "update_traffic_mirror_filter",
    tag = doc::FILTERS,
    params(FilterPath),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The updated filter.", body = FilterReply),
        (status = 400, description = "Invalid request (`VPC.0101`).", body = V3Error),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`).", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V3Error),
        (status = 404, description = "No such filter (`VPC.1702`).", body = V3Error),
    ),
)]
pub async fn update(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Filter, &id)?;
    let o = input::parse::<UpdateBody>(&body, V3)?.traffic_mirror_filter;
    if let Some(n) = &o.name {
        check_name("name", n, V3)?;
    }
    if let Some(d) = &o.description {
        check_description("description", d, V3)?;
    }
    let f = st
        .service
        .filter_update(
            &caller.actor(),
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

/// Deletes a traffic mirror filter and its rules.
#[utoipa::path(
    delete,
    path = "/v3/{project_id}/vpc/traffic-mirror-filters/{traffic_mirror_filter_id}",
    operation_id = "delete_traffic_mirror_filter",
    tag = doc::FILTERS,
    params(FilterPath),
    responses(
        (status = 204, description = "The filter and its rules were deleted; no body."),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`).", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V3Error),
        (status = 404, description = "No such filter (`VPC.1702`).", body = V3Error),
        (status = 409, description = "A session uses the filter (`VPC.1711`).", body = V3Error),
    ),
)]
pub async fn delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Filter, &id)?;
    st.service
        .filter_delete(&caller.actor(), id)
        .await
        .map_err(|e| from_service(e, V3))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The list's query parameters, from [`FIELDS`].
pub(super) fn list_parameters() -> Vec<utoipa::openapi::path::Parameter> {
    doc::list_parameters(FIELDS, MAX_LIMIT)
}
