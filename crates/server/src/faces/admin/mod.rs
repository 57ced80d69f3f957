//! The admin API (`/admin/v1`, documented in `docs/admin-api.md`): projects, credentials,
//! enrolled hosts, networks and port bindings. Requests are signed like the Huawei face's
//! (SDK-HMAC-SHA256 or SM3) with a credential of the operator, or of a project's admin for
//! that project's own credentials; who may do what is the service's rule
//! (`service::tenancy`).

mod eip_pools;
mod handlers;
pub(crate) mod views;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::json;

use crate::auth::huawei::{check_headers, read_signed_body, verify_request, Refusal};
use crate::auth::Caller;
use crate::http::{ApiError, BodyRefusal, ErrorFormat};
use crate::service::ServiceError;
use crate::throttle::{Scope, Throttled};
use crate::AppState;
use tmirror_model::DomainError;

/// The admin API's error bodies: `{"request_id", "code", "message"}`.
pub const F: ErrorFormat = ErrorFormat::new(
    "admin",
    |e, c| json!({"request_id": c.request_id, "code": e.code, "message": e.message}),
);

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message, F)
}

pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
    error(StatusCode::BAD_REQUEST, "InvalidRequest", message)
}

/// The admin API's throttling answer: 429 `Throttled`, with `Retry-After`.
pub fn throttled(t: &Throttled) -> ApiError {
    let whose = match t.scope {
        Scope::Key => "this credential's requests",
        Scope::Address => "requests from this address",
        Scope::AuthFailures => "failed authentications from this address",
    };
    error(
        StatusCode::TOO_MANY_REQUESTS,
        "Throttled",
        format!(
            "too many requests: {whose} are limited to {} per {}; retry after the Retry-After seconds",
            t.rate.rate,
            t.period()
        ),
    )
    .retry_after(t.retry_after_secs())
}

/// The admin API's answer to a service error.
pub(crate) fn from_service(e: ServiceError) -> ApiError {
    match e {
        ServiceError::Domain(d) => {
            let (status, code) = match &d {
                DomainError::Invalid { .. } => (StatusCode::BAD_REQUEST, "InvalidRequest"),
                DomainError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
                DomainError::NotFound { .. } | DomainError::UnknownRecord { .. } => {
                    (StatusCode::NOT_FOUND, "NotFound")
                }
                DomainError::QuotaExceeded { .. } => (StatusCode::CONFLICT, "QuotaExceeded"),
                _ => (StatusCode::CONFLICT, "Conflict"),
            };
            error(status, code, d.to_string())
        }
        ServiceError::Busy => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "the change conflicted with concurrent ones and was not applied; send it again",
        )
        .retry_after(1),
        ServiceError::Store(e) => {
            tracing::error!(error = %e, "admin API: store failure");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "internal error; retry",
            )
        }
    }
}

/// Verifies the signature and hands the request on with its [`Caller`].
async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let refused = |r: Refusal| {
        match r {
            Refusal::Body(BodyRefusal::TooLarge) => error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "InvalidRequest",
                format!(
                    "request body larger than {} bytes",
                    crate::http::MAX_BODY_BYTES
                ),
            ),
            Refusal::Body(BodyRefusal::TooSlow) => error(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeout",
                "the request body did not arrive in time",
            ),
            Refusal::Body(BodyRefusal::Busy) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                "the server is busy reading other requests; retry",
            )
            .retry_after(1),
            Refusal::Unauthorized(m) => error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                format!("the request is not signed by a known, enabled credential: {m}"),
            ),
            Refusal::Internal => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "internal error; retry",
            ),
            Refusal::Throttled(t) => throttled(&t),
        }
        .into_response()
    };
    if let Err(r) = check_headers(&state, &parts).await {
        return refused(r);
    }
    let body = match read_signed_body(&state, &parts, body).await {
        Ok(b) => b,
        Err(r) => return refused(r),
    };
    let credential = match verify_request(&state, &parts, &body).await {
        Ok(c) => c,
        Err(r) => return refused(r),
    };
    parts.extensions.insert(Caller::of(&credential));
    // A credential or host disabled, enabled, rotated or deleted here is refused (or accepted)
    // here from this answer on: the commit moves this server's revision feed before the
    // answer, and every lookup catches up with a feed that moved (`CredentialCache`).
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// Routes of the admin API, behind its signature check.
pub fn router(state: AppState) -> Router<AppState> {
    use handlers::*;
    Router::new()
        .route("/admin/v1/projects", post(project_create).get(project_list))
        .route(
            "/admin/v1/projects/{project_id}",
            get(project_show)
                .patch(project_update)
                .delete(project_delete),
        )
        .route(
            "/admin/v1/projects/{project_id}/credentials",
            post(credential_create).get(credential_list),
        )
        .route(
            "/admin/v1/credentials/{access_key}",
            axum::routing::delete(credential_delete),
        )
        .route(
            "/admin/v1/credentials/{access_key}/disable",
            post(credential_disable),
        )
        .route(
            "/admin/v1/credentials/{access_key}/enable",
            post(credential_enable),
        )
        .route(
            "/admin/v1/projects/{project_id}/sessions/{session_id}/delivery",
            get(session_delivery),
        )
        .route("/admin/v1/hosts", post(host_create).get(host_list))
        .route(
            "/admin/v1/hosts/{host_id}",
            get(host_show).delete(host_delete),
        )
        .route("/admin/v1/hosts/{host_id}/disable", post(host_disable))
        .route("/admin/v1/hosts/{host_id}/enable", post(host_enable))
        .route("/admin/v1/hosts/{host_id}/rotate", post(host_rotate))
        .route("/admin/v1/networks", post(network_create).get(network_list))
        .route(
            "/admin/v1/networks/{network_id}",
            axum::routing::delete(network_delete),
        )
        .route("/admin/v1/ports/{port_id}/binding", put(port_bind))
        .route("/admin/v1/eip-pools", get(eip_pools::list_pools))
        .route(
            "/admin/v1/eip-pools/{pool_id}",
            put(eip_pools::put_pool).delete(eip_pools::delete_pool),
        )
        .route_layer(middleware::from_fn_with_state(state, authenticate))
}
