//! The root of the HTTP server: every face's routes, health, and the request-id layer that
//! renders the faces' pending errors.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::audit::{AuditEntry, AuditNote};
use crate::faces::{admin, agent, aliyun, huawei};
use crate::http::{ApiError, ErrorContext, ErrorFormat, RequestId};
use crate::throttle::{Scope, Throttled};
use crate::AppState;

/// The face a path belongs to, as the audit trail names it.
fn face_name(path: &str) -> &'static str {
    if crate::console::is_console(path) {
        "console"
    } else if path.starts_with("/admin/") {
        "admin"
    } else if path.starts_with("/agent/") {
        "agent"
    } else if path == aliyun::PATH {
        "aliyun"
    } else {
        "huawei"
    }
}

/// Opens the request's audit note: who is calling from where, and what a Huawei or admin
/// request does (its method and path, with the ids in the path). The Alibaba face names its
/// action itself; agent bookkeeping is recorded only when refused.
fn open_note(request: &Request, request_id: &str) -> AuditNote {
    let path = request.uri().path();
    let face = face_name(path);
    let method = request.method();
    // The console's posts are its sign-ins and sign-outs: recorded like changes.
    let mutating = matches!(face, "huawei" | "admin" | "console")
        && !matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD);
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let note = AuditNote::new(AuditEntry {
        time: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        request_id: request_id.to_owned(),
        client,
        face,
        action: format!("{method} {path}"),
        mutating,
        ..AuditEntry::default()
    });
    let segments: Vec<&str> = path.split('/').collect();
    match face {
        // /admin/v1/<collection>/<id>/...
        "admin" => {
            if let Some(id) = segments.get(4) {
                note.resource(id);
            }
        }
        // /v3/{project}/vpc/<collection>/<id>, /v1/{project}/ports/<id>
        "huawei" => {
            for s in segments.iter().skip(3) {
                if uuid::Uuid::try_parse(s).is_ok() {
                    note.resource(s);
                }
            }
        }
        _ => {}
    }
    note
}

/// Writes the request's audit line, if it is one to record, with the ids of the answer.
async fn audit(state: &AppState, note: &AuditNote, response: Response) -> Response {
    let status = response.status().as_u16();
    let Some(_) = note.finish(status, None) else {
        return response;
    };
    let (parts, body) = response.into_parts();
    // Answers are small JSON documents; the ids of a create are only in its answer.
    let bytes = axum::body::to_bytes(body, crate::http::MAX_BODY_BYTES)
        .await
        .unwrap_or_default();
    let json = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
    let shown = if (200..300).contains(&status) {
        json.as_ref()
    } else {
        None
    };
    if let Some(entry) = note.finish(status, shown) {
        state.audit.write(&entry);
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Gives the request an id, renders pending errors, sets `X-Request-Id`, and writes the
/// audit line.
async fn request_id_layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut request = request;
    // A v4 UUID from the thread's generator: `Uuid::new_v4` asks the kernel (a getrandom
    // system call) for every request, and a request id is no secret.
    let mut id = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string();
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
    let started = std::time::Instant::now();
    // The route template (`/v3/{project_id}/vpc/…`), not the path: metric labels stay few.
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| format!("{} {}", request.method(), m.as_str()));
    let note = open_note(&request, &id);
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
        .filter(|_| is_throttled_path(&path));
    let refused = client.and_then(|ip| state.throttle.request(ip).err());
    request.extensions_mut().insert(note.clone());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = match refused {
        // Refused before anything is read or looked up: nothing changes.
        Some(t) => {
            if t.scope == Scope::AuthFailures {
                note.refused(
                    None,
                    "throttled: too many failed authentications from this address",
                );
            }
            if crate::console::is_console(&path) {
                crate::console::throttled(&t)
            } else {
                throttled_answer(&path, &t).into_response()
            }
        }
        None => next.run(request).await,
    };
    // A refused authentication counts against its address (not a server failure, which says
    // nothing about the caller).
    if let (Some(ip), None) = (client, refused) {
        if note.is_refused() && !response.status().is_server_error() {
            state.throttle.auth_failed(ip);
        }
    }
    // The console answers with pages of its own, not an API's error documents.
    if is_framework_error(&response) && !crate::console::is_console(&path) {
        response = framework_error(&path, response).await.into_response();
    }
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        if error.status.is_server_error() {
            tracing::error!(request_id = %id, code = %error.code, message = ?error.message, "internal error");
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
    let face = face_name(&path);
    let action = match face {
        "aliyun" => note.action_name().unwrap_or_else(|| "unknown".to_owned()),
        _ => route.unwrap_or_else(|| "unmatched".to_owned()),
    };
    state
        .metrics
        .observe(face, &action, response.status().as_u16(), started.elapsed());
    if refused.is_some_and(|t| t.scope == Scope::Address) {
        // A flood: one line per refused request would fill the audit log for it.
        return response;
    }
    audit(&state, &note, response).await
}

/// Whether a path's requests are throttled: not health checks (load balancers poll them),
/// not the agent API (each agent holds one long poll at a time, and an agent refused
/// would leave its host's mirroring stale).
fn is_throttled_path(path: &str) -> bool {
    path != "/healthz" && !path.starts_with("/agent/")
}

/// The throttling answer of a path's face.
fn throttled_answer(path: &str, t: &Throttled) -> ApiError {
    match face_name(path) {
        "admin" | "agent" => admin::throttled(t),
        "aliyun" => aliyun::throttled(t),
        _ => huawei::throttled(huawei::format_for(path), t),
    }
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
        .merge(crate::console::router())
        // Rendered in the path's face's format by `request_id_layer`.
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_id_layer,
        ))
        .with_state(state)
}
