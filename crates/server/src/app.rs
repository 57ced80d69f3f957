//! The root of the HTTP server: every face's routes, health, and the request-id layer that
//! renders the faces' pending errors.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::faces::{admin, agent, aliyun, huawei};
use crate::http::{ApiError, ErrorContext, ErrorFormat, RequestId};
use crate::AppState;

/// Gives the request an id, renders pending errors, and sets `X-Request-Id`.
async fn request_id_layer(mut request: Request, next: Next) -> Response {
    let mut id = uuid::Uuid::new_v4().to_string();
    if request.uri().path() == aliyun::PATH {
        // The Alibaba face's RequestIds are upper-case UUIDs.
        id.make_ascii_uppercase();
    }
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let path = request.uri().path().to_owned();
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if is_framework_error(&response) {
        response = framework_error(&path, response).await.into_response();
    }
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        if error.status.is_server_error() {
            tracing::error!(request_id = %id, code = %error.code, "{}", error.message);
        }
        let status = response.status();
        let body = error.render(&ErrorContext {
            request_id: &id,
            host: &host,
        });
        let mut rendered = (status, Json(body)).into_response();
        std::mem::swap(rendered.headers_mut(), response.headers_mut());
        rendered.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = error.retry_after {
            rendered
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response = rendered;
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// An error answer the framework made itself (a wrong method, a malformed path or query
/// parameter): not JSON and without a face's pending error.
fn is_framework_error(response: &Response) -> bool {
    let status = response.status();
    (status.is_client_error() || status.is_server_error())
        && response.extensions().get::<ApiError>().is_none()
        && !response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
}

/// The face of a path, with its error format and the code it gives a status.
fn face_of(path: &str, status: StatusCode) -> (ErrorFormat, &'static str) {
    let generic = match status {
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        s if s.is_server_error() => "InternalError",
        _ => "InvalidRequest",
    };
    if path.starts_with("/admin/") {
        (admin::F, generic)
    } else if path.starts_with("/agent/") {
        (agent::F, generic)
    } else if path == aliyun::PATH {
        let code = match status {
            StatusCode::NOT_FOUND => "InvalidAction.NotFound",
            StatusCode::METHOD_NOT_ALLOWED => "UnsupportedHTTPMethod",
            s if s.is_server_error() => "InternalError",
            _ => "InvalidParameter",
        };
        (aliyun::FORMAT, code)
    } else {
        let code = match status {
            StatusCode::NOT_FOUND => "VPC.0404",
            StatusCode::METHOD_NOT_ALLOWED => "VPC.0405",
            s if s.is_server_error() => "VPC.0500",
            _ => "VPC.0101",
        };
        let format = if path.starts_with("/v1/") {
            huawei::V1
        } else {
            huawei::V3
        };
        (format, code)
    }
}

/// The framework's answer, in the face's own error format, with its explanation.
async fn framework_error(path: &str, response: Response) -> ApiError {
    let status = response.status();
    let text = axum::body::to_bytes(response.into_body(), 2048)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = match (status, text.is_empty()) {
        (StatusCode::NOT_FOUND, _) => {
            "no such API; see /openapi.json for the Huawei face, docs/ for the others".to_owned()
        }
        (StatusCode::METHOD_NOT_ALLOWED, _) => "this method is not allowed on this path".to_owned(),
        (_, false) => text,
        (_, true) => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned(),
    };
    let (format, code) = face_of(path, status);
    ApiError::new(status, code, message, format)
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.service.ready().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ok"}))).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "database unavailable"})),
            )
                .into_response()
        }
    }
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(huawei::openapi_json))
        .merge(huawei::router(state.clone()))
        .merge(aliyun::router())
        .merge(agent::router(state.clone()))
        .merge(admin::router(state.clone()))
        // Rendered in the path's face's format by `request_id_layer`.
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(state)
        .layer(middleware::from_fn(request_id_layer))
}
