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
use crate::http::{ApiError, ErrorContext, RequestId};
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
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
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
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "VPC.0404",
                "no such API; see /openapi.json",
                huawei::V3,
            )
        })
        .with_state(state)
        .layer(middleware::from_fn(request_id_layer))
}
