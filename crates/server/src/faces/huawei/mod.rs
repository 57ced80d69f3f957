//! The Huawei Cloud face: VPC v3 traffic mirroring and v1 ports, signed with SDK-HMAC-SHA256.

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
use axum::routing::{get, put};
use axum::Router;
use tmirror_model::{DomainError, ResourceKind};

use crate::http::{ApiError, ErrorFormat};
use crate::AppState;

const V3: ErrorFormat = ErrorFormat::HuaweiV3;
const V1: ErrorFormat = ErrorFormat::HuaweiV1;

/// An id from the path; one that does not parse names no resource (404, as for an unknown id).
fn path_id<T: std::str::FromStr>(kind: ResourceKind, s: &str) -> Result<T, ApiError> {
    let format = if kind == ResourceKind::Port { V1 } else { V3 };
    s.parse()
        .map_err(|_| error::from_service(DomainError::not_found(kind, s).into(), format))
}

/// Routes of the face, behind signature verification.
pub fn router(state: AppState) -> Router<AppState> {
    let v3 = "/v3/{project_id}/vpc";
    let api = Router::new()
        .route(
            &format!("{v3}/traffic-mirror-sessions"),
            get(sessions::list).post(sessions::create),
        )
        .route(
            &format!("{v3}/traffic-mirror-sessions/{{id}}"),
            get(sessions::show)
                .put(sessions::update)
                .delete(sessions::delete),
        )
        .route(
            &format!("{v3}/traffic-mirror-sessions/{{id}}/add-sources"),
            put(sessions::add_sources),
        )
        .route(
            &format!("{v3}/traffic-mirror-sessions/{{id}}/remove-sources"),
            put(sessions::remove_sources),
        )
        .route(
            &format!("{v3}/traffic-mirror-filters"),
            get(filters::list).post(filters::create),
        )
        .route(
            &format!("{v3}/traffic-mirror-filters/{{id}}"),
            get(filters::show)
                .put(filters::update)
                .delete(filters::delete),
        )
        .route(
            &format!("{v3}/traffic-mirror-filter-rules"),
            get(rules::list).post(rules::create),
        )
        .route(
            &format!("{v3}/traffic-mirror-filter-rules/{{id}}"),
            get(rules::show).put(rules::update).delete(rules::delete),
        )
        .route(
            "/v1/{project_id}/ports",
            get(ports::list).post(ports::create),
        )
        .route(
            "/v1/{project_id}/ports/{id}",
            get(ports::show).put(ports::update).delete(ports::delete),
        )
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "VPC.0405",
                "method not allowed on this path",
                V3,
            )
        });
    api.route_layer(middleware::from_fn_with_state(
        state,
        crate::auth::huawei::authenticate,
    ))
}
