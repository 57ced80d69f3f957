//! The agent API (`/agent/v1`, documented in `docs/agent-protocol.md`): host agents register,
//! long-poll their desired state, and report what they applied.
//!
//! Each host authenticates with its own token (`Authorization: Bearer <token>`), issued when
//! the operator enrolled it (`POST /admin/v1/hosts`). A host's token reads only that host's
//! desired state and registers and reports only as that host: a leaked token exposes one
//! host's plan, never another's, and cannot mark another host's changes as applied.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use tmirror_model::agent::{AgentHello, AgentReport, AgentView, AGENT_PROTOCOL_VERSION};
use tmirror_model::{Host, Timestamp};
use tmirror_store::AgentRecord;

use crate::http::{ApiError, ErrorFormat};
use crate::service::agents::connected;
use crate::service::ServiceError;
use crate::AppState;

/// Longest a desired-state poll is held open.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// What agents are told to wait (a third of the time after which they count as gone).
pub const POLL_WAIT_SECS: u64 = 25;

/// The agent API's error bodies: `{"request_id", "code", "message"}`.
pub const F: ErrorFormat = ErrorFormat::new(
    "agent",
    |e, c| json!({"request_id": c.request_id, "code": e.code, "message": e.message}),
);

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "agent API failure");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        "internal error; retry",
        F,
    )
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "InvalidRequest", message, F)
}

/// Resolves the bearer token to its enabled host, which the handlers receive as an
/// `Extension<Host>`. The cache follows the change feed: a host disabled, rotated or deleted
/// on any server is refused here within the feed's delay.
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    let host = if presented.is_empty() {
        None
    } else {
        match state.credentials.host(presented).await {
            Ok(h) => h,
            Err(e) => return internal(e).into_response(),
        }
    };
    let Some(host) = host else {
        return refused().into_response();
    };
    request.extensions_mut().insert(host);
    next.run(request).await
}

fn refused() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "InvalidToken",
        "missing, wrong or revoked host token: send Authorization: Bearer <token> with the \
         token of the host's credential (POST /admin/v1/hosts enrols a host; a disabled, \
         rotated or deleted host's old token is refused)",
        F,
    )
}

/// A host's credential acts only for that host.
fn own(caller: &Host, host: &str) -> Result<(), ApiError> {
    if caller.host_id == host {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        format!(
            "this credential belongs to host {:?}: it may act only as that host, not as {host:?}",
            caller.host_id
        ),
        F,
    ))
}

/// Host names as agents use them: 1–253 characters of letters, digits, `-`, `.`, `_`.
fn check_host(host: &str) -> Result<(), ApiError> {
    if host.is_empty()
        || host.len() > 253
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        return Err(bad_request(format!(
            "host id {host:?}: 1 to 253 letters, digits, '-', '.' or '_'"
        )));
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid JSON body: {e}")))
}

fn time_text(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn view(a: &AgentRecord) -> AgentView {
    AgentView {
        host_id: a.host_id.clone(),
        registered_at: time_text(a.registered_at),
        last_seen: time_text(a.last_seen),
        connected: connected(a.last_seen, Timestamp::now().0),
        applied_generation: a.applied_generation,
        interfaces: a.interfaces.clone(),
        counters: a.report.clone(),
    }
}

async fn register(
    State(st): State<AppState>,
    Extension(caller): Extension<Host>,
    Path(host): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    own(&caller, &host)?;
    check_host(&host)?;
    let hello: AgentHello = parse(&body)?;
    st.service
        .agent_registered(&host, hello.interfaces)
        .await
        .map_err(internal)?;
    tracing::info!(host = ?host, version = ?hello.version, "agent registered");
    Ok(Json(json!({
        "host_id": host,
        "protocol_version": AGENT_PROTOCOL_VERSION,
        "poll_wait_seconds": POLL_WAIT_SECS,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct PollQuery {
    /// The content hash the agent has; the poll answers as soon as the state differs.
    #[serde(default)]
    known: String,
    /// Seconds to hold the poll open when nothing changed.
    #[serde(default)]
    wait: Option<u64>,
}

/// Answers when the host's desired state differs from `known`, or after `wait` seconds with
/// the current one. Only the changes that concern the host wake the poll (its wake counter,
/// see `service::fleet`); the document is recomputed only then.
async fn desired_state(
    State(st): State<AppState>,
    Extension(caller): Extension<Host>,
    Path(host): Path<String>,
    Query(q): Query<PollQuery>,
) -> Result<Response, ApiError> {
    own(&caller, &host)?;
    check_host(&host)?;
    let wait = Duration::from_secs(q.wait.unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let mut wake = st.service.poll_begins(&host).await.map_err(internal)?;
    loop {
        // Mark the counter seen before reading, so a change during the read wakes the next wait.
        let at = *wake.borrow_and_update();
        let doc = st
            .service
            .desired_state_at(&host, at)
            .await
            .map_err(internal)?;
        if doc.content_hash != q.known {
            return Ok(Json(&*doc).into_response());
        }
        tokio::select! {
            changed = wake.changed() => {
                if changed.is_err() {
                    return Ok(Json(&*doc).into_response());
                }
            }
            _ = tokio::time::sleep_until(deadline) => return Ok(Json(&*doc).into_response()),
        }
        // The commit that woke the poll may have disabled, rotated or deleted this host.
        if !st
            .credentials
            .host_still_valid(&caller)
            .await
            .map_err(internal)?
        {
            return Err(refused());
        }
    }
}

async fn status(
    State(st): State<AppState>,
    Extension(caller): Extension<Host>,
    Path(host): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    own(&caller, &host)?;
    check_host(&host)?;
    let report: AgentReport = parse(&body)?;
    st.service
        .agent_reported(&host, report)
        .await
        .map_err(|e| match e {
            ServiceError::Domain(d) => bad_request(format!("refused: {d}")),
            other => internal(other),
        })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Listing every host is the operator's business, not a host's.
async fn list(Extension(caller): Extension<Host>) -> Result<Response, ApiError> {
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        format!(
            "a host credential ({:?}) may not list every host: the operator lists enrolled hosts \
             and their agents' reports with GET /admin/v1/hosts; a host sees itself with \
             GET /agent/v1/hosts/{{host_id}}",
            caller.host_id
        ),
        F,
    ))
}

async fn show(
    State(st): State<AppState>,
    Extension(caller): Extension<Host>,
    Path(host): Path<String>,
) -> Result<Response, ApiError> {
    own(&caller, &host)?;
    match st.service.agent(&host).await.map_err(internal)? {
        Some(a) => Ok(Json(view(&a)).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "AgentNotFound",
            format!("no agent has registered as {host:?}"),
            F,
        )),
    }
}

/// Routes of the agent API, behind the hosts' tokens.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/agent/v1/hosts", get(list))
        .route("/agent/v1/hosts/{host_id}", get(show))
        .route("/agent/v1/hosts/{host_id}/register", post(register))
        .route(
            "/agent/v1/hosts/{host_id}/desired-state",
            get(desired_state),
        )
        .route("/agent/v1/hosts/{host_id}/status", post(status))
        .route_layer(middleware::from_fn_with_state(state, authenticate))
}
