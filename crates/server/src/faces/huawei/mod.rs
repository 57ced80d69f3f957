//! The Huawei Cloud face: VPC v3 traffic mirroring, v1 ports and the ELB v3 subset that
//! stands up load-balanced targets, signed with SDK-HMAC-SHA256 or SDK-HMAC-SM3.

mod doc;
mod eips;
mod elb;
mod elb_list;
mod error;
mod filters;
mod input;
mod ports;
mod query;
mod rules;
mod sessions;
mod views;

use axum::http::StatusCode;
use axum::middleware;
use axum::Router;
use tmirror_model::{DomainError, ResourceKind};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use doc::serve as openapi_json;

pub use error::{format_for, throttled, V1, V3};

use crate::http::ApiError;
use crate::AppState;

/// An id from the path; one that does not parse names no resource (404, as for an unknown id).
fn path_id<T: std::str::FromStr>(kind: ResourceKind, s: &str) -> Result<T, ApiError> {
    let format = if matches!(kind, ResourceKind::Port | ResourceKind::Eip) {
        V1
    } else {
        V3
    };
    s.parse()
        .map_err(|_| error::from_service(DomainError::not_found(kind, s).into(), format))
}

/// The routes of the face with their documentation: each `routes!` group registers the handlers
/// of one path under the path and methods of their `#[utoipa::path]` annotations.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(doc::ApiDoc::openapi())
        .routes(routes!(sessions::list, sessions::create))
        .routes(routes!(sessions::show, sessions::update, sessions::delete))
        .routes(routes!(sessions::add_sources))
        .routes(routes!(sessions::remove_sources))
        .routes(routes!(filters::list, filters::create))
        .routes(routes!(filters::show, filters::update, filters::delete))
        .routes(routes!(rules::list, rules::create))
        .routes(routes!(rules::show, rules::update, rules::delete))
        .routes(routes!(ports::list, ports::create))
        .routes(routes!(ports::show, ports::update, ports::delete))
        .routes(routes!(eips::list, eips::create))
        .routes(routes!(eips::show, eips::update, eips::delete))
}

/// The OpenAPI document of the face, with the list filters taken from the tables the list
/// handlers match with.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut openapi) = routes().split_for_parts();
    doc::add_get_parameters(
        &mut openapi,
        sessions::COLLECTION,
        sessions::list_parameters(),
    );
    doc::add_get_parameters(
        &mut openapi,
        filters::COLLECTION,
        filters::list_parameters(),
    );
    doc::add_get_parameters(&mut openapi, rules::COLLECTION, rules::list_parameters());
    doc::add_get_parameters(&mut openapi, ports::COLLECTION, ports::list_parameters());
    doc::add_get_parameters(&mut openapi, eips::COLLECTION, eips::list_parameters());
    openapi
}

/// Routes of the face, behind signature verification.
pub fn router(state: AppState) -> Router<AppState> {
    let (api, _) = routes().split_for_parts();
    // The ELB subset is not in the VPC face's OpenAPI document (docs/load-balancers.md).
    let api = api.merge(elb::routes());
    let api = api.method_not_allowed_fallback(|uri: axum::http::Uri| async move {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "VPC.0405",
            "method not allowed on this path",
            format_for(uri.path()),
        )
    });
    api.route_layer(middleware::from_fn_with_state(
        state,
        crate::auth::huawei::authenticate,
    ))
}
