//! The HTTP layer shared by every face: request ids, error rendering, body limits, health.
//!
//! Every response carries `X-Request-Id`. Faces return [`ApiError`]s, which carry their cloud's
//! format; the request-id middleware renders them with the id, so that the id in the body and
//! in the header always agree.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;

/// The id of one request, as sent in `X-Request-Id` and in bodies.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Largest accepted request body; bigger ones are refused before they are read in full.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Which cloud's error body an [`ApiError`] is rendered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorFormat {
    /// The agent API: `{"request_id", "code", "message"}`.
    Agent,
    /// Huawei v3: `{"request_id", "error_code", "error_msg"}`.
    HuaweiV3,
    /// Huawei v1 (ports): `{"code", "message"}`.
    HuaweiV1,
    /// Alibaba Cloud RPC: `{"RequestId", "HostId", "Code", "Message", "Recommend"}`.
    Aliyun,
}

/// An error answer: status, code and message, rendered in a cloud's format.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub format: ErrorFormat,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<String>,
        message: impl Into<String>,
        format: ErrorFormat,
    ) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            format,
        }
    }

    fn render(&self, request_id: &str, host: &str) -> serde_json::Value {
        match self.format {
            ErrorFormat::HuaweiV3 => json!({
                "request_id": request_id, "error_code": self.code, "error_msg": self.message
            }),
            ErrorFormat::HuaweiV1 => json!({"code": self.code, "message": self.message}),
            ErrorFormat::Agent => json!({
                "request_id": request_id, "code": self.code, "message": self.message
            }),
            ErrorFormat::Aliyun => json!({
                "RequestId": request_id, "HostId": host, "Code": self.code,
                "Message": self.message,
                "Recommend": format!(
                    "https://api.aliyun.com/troubleshoot?q={}&product=Vpc&requestId={request_id}",
                    self.code
                ),
            }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The body is rendered by `request_id_layer`, which knows the id.
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Gives the request an id, renders pending errors, and sets `X-Request-Id`.
async fn request_id_layer(mut request: Request, next: Next) -> Response {
    let mut id = uuid::Uuid::new_v4().to_string();
    if request.uri().path() == "/" {
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
        let mut rendered = (status, Json(error.render(&id, &host))).into_response();
        std::mem::swap(rendered.headers_mut(), response.headers_mut());
        rendered.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response = rendered;
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.service.store().read().await {
        Ok(_) => (StatusCode::OK, Json(json!({"status": "ok"}))).into_response(),
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
        .route("/openapi.json", get(crate::faces::huawei::openapi_json))
        .merge(crate::faces::huawei::router(state.clone()))
        .merge(crate::faces::aliyun::router())
        .merge(crate::faces::agent::router(state.clone()))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "VPC.0404",
                "no such API; see /openapi.json",
                ErrorFormat::HuaweiV3,
            )
        })
        .with_state(state)
        .layer(middleware::from_fn(request_id_layer))
}

/// Reads a request body completely, refusing one larger than [`MAX_BODY_BYTES`].
pub async fn read_body(body: Body) -> Result<axum::body::Bytes, axum::Error> {
    axum::body::to_bytes(body, MAX_BODY_BYTES).await
}
