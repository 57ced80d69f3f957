//! The admin API's operations: parse, call the service as the caller, render.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use tmirror_model::{
    BindingProfile, CaptureSide, PortId, ProjectId, QuotaOverrides, Role, SessionId,
};

use super::{bad_request, from_service, views};
use crate::auth::Caller;
use crate::http::ApiError;
use crate::service::tenancy::{NetworkCreate, ProjectCreate, ProjectUpdate};
use crate::AppState;

pub(super) type Answer = Result<Response, ApiError>;

/// The request body as `T`; unknown fields are refused (a misspelt option must not be
/// silently ignored by an API that manages credentials).
pub(super) fn body<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| bad_request(format!("invalid JSON body: {e}")))
}

/// The `cidrs` of a body as blocks, each cut to its network address (`10.0.0.5/24` is
/// `10.0.0.0/24`).
pub(super) fn cidrs(texts: &[String]) -> Result<Vec<ipnet::IpNet>, ApiError> {
    texts
        .iter()
        .map(|c| {
            c.parse::<ipnet::IpNet>()
                .map(|n| n.trunc())
                .map_err(|_| bad_request(format!("cidrs: {c:?} is not a CIDR block")))
        })
        .collect()
}

fn project_id(text: &str) -> Result<ProjectId, ApiError> {
    // Not a project id: unknown, like any id that names nothing.
    text.parse().map_err(|_| {
        super::error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("project {text} does not exist"),
        )
    })
}

pub(super) fn ok(value: serde_json::Value) -> Answer {
    Ok(Json(value).into_response())
}

fn created(value: serde_json::Value) -> Answer {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

pub(super) fn no_content() -> Answer {
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectBody {
    name: Option<String>,
    quotas: Option<QuotaOverrides>,
}

pub async fn project_create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    bytes: Bytes,
) -> Answer {
    let b: ProjectBody = body(&bytes)?;
    let input = ProjectCreate {
        name: b.name.ok_or_else(|| bad_request("name: required"))?,
        quotas: b.quotas.unwrap_or_default(),
    };
    let p = st
        .service
        .project_create(&caller.actor(), input)
        .await
        .map_err(from_service)?;
    created(json!({"project": views::project(&p)}))
}

pub async fn project_list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Answer {
    let all = st
        .service
        .project_list(&caller.actor())
        .await
        .map_err(from_service)?;
    ok(json!({"projects": all.iter().map(views::project).collect::<Vec<_>>()}))
}

pub async fn project_show(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Answer {
    let id = project_id(&id)?;
    let (p, usage) = st
        .service
        .project_show(&caller.actor(), &id)
        .await
        .map_err(from_service)?;
    let mut v = views::project(&p);
    v["usage"] = views::usage(&usage);
    ok(json!({"project": v}))
}

pub async fn project_update(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let id = project_id(&id)?;
    let b: ProjectBody = body(&bytes)?;
    let p = st
        .service
        .project_update(
            &caller.actor(),
            &id,
            ProjectUpdate {
                name: b.name,
                quotas: b.quotas,
            },
        )
        .await
        .map_err(from_service)?;
    ok(json!({"project": views::project(&p)}))
}

pub async fn project_delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Answer {
    let id = project_id(&id)?;
    st.service
        .project_delete(&caller.actor(), &id)
        .await
        .map_err(from_service)?;
    no_content()
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialBody {
    role: Option<String>,
}

/// The new credential, with its secret (shown this once) and the endpoint to use it on: the
/// shape of `admin-credentials.json` plus its role.
pub async fn credential_create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let project = project_id(&id)?;
    let b: CredentialBody = body(&bytes)?;
    let role: Role = b
        .role
        .as_deref()
        .unwrap_or("member")
        .parse()
        .map_err(|e| bad_request(format!("role: {e}")))?;
    let c = st
        .service
        .credential_create(&caller.actor(), &project, role)
        .await
        .map_err(from_service)?;
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let mut v = views::credential(&c);
    v["secret_key"] = json!(c.secret_key);
    v["endpoint"] = json!(format!("{}://{host}", st.scheme));
    created(json!({"credential": v}))
}

pub async fn credential_list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Answer {
    let project = project_id(&id)?;
    let all = st
        .service
        .credential_list(&caller.actor(), &project)
        .await
        .map_err(from_service)?;
    ok(json!({"credentials": all.iter().map(views::credential).collect::<Vec<_>>()}))
}

async fn set_credential(st: &AppState, caller: &Caller, key: &str, enabled: bool) -> Answer {
    let c = st
        .service
        .credential_set_enabled(&caller.actor(), key, enabled)
        .await
        .map_err(from_service)?;
    ok(json!({"credential": views::credential(&c)}))
}

pub async fn credential_disable(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Answer {
    set_credential(&st, &caller, &key, false).await
}

pub async fn credential_enable(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Answer {
    set_credential(&st, &caller, &key, true).await
}

pub async fn credential_delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Answer {
    st.service
        .credential_delete(&caller.actor(), &key)
        .await
        .map_err(from_service)?;
    no_content()
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostBody {
    host_id: Option<String>,
}

/// The host's credential file contents: shown this once.
fn host_credential(
    scheme: &str,
    headers: &axum::http::HeaderMap,
    host: &tmirror_model::Host,
    token: &str,
) -> serde_json::Value {
    let endpoint = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    json!({
        "host": views::bare_host(host),
        "credential": {
            "host_id": host.host_id,
            "token": token,
            "endpoint": format!("{scheme}://{endpoint}"),
        },
    })
}

pub async fn host_create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    bytes: Bytes,
) -> Answer {
    let b: HostBody = body(&bytes)?;
    let id = b.host_id.ok_or_else(|| bad_request("host_id: required"))?;
    let (host, token) = st
        .service
        .host_create(&caller.actor(), &id)
        .await
        .map_err(from_service)?;
    created(host_credential(st.scheme, &headers, &host, &token))
}

pub async fn host_rotate(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let (host, token) = st
        .service
        .host_rotate(&caller.actor(), &id)
        .await
        .map_err(from_service)?;
    ok(host_credential(st.scheme, &headers, &host, &token))
}

pub async fn host_list(State(st): State<AppState>, Extension(caller): Extension<Caller>) -> Answer {
    let all = st
        .service
        .host_list(&caller.actor())
        .await
        .map_err(from_service)?;
    ok(json!({"hosts": all.iter().map(views::host).collect::<Vec<_>>()}))
}

/// A session's delivery on the hosts that capture its sources: the operator's for any
/// project, any role's of the session's own project (`service::delivery`).
pub async fn session_delivery(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, session)): Path<(String, String)>,
) -> Answer {
    let project = project_id(&project)?;
    // Not a session id: unknown, like any id that names nothing.
    let id: SessionId = session.parse().map_err(|_| {
        super::error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("session {session} does not exist"),
        )
    })?;
    let d = st
        .service
        .session_delivery(&caller.actor(), &project, id)
        .await
        .map_err(from_service)?;
    ok(json!({"delivery": views::delivery(&d)}))
}

pub async fn host_show(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Answer {
    let v = st
        .service
        .host_show(&caller.actor(), &id)
        .await
        .map_err(from_service)?;
    ok(json!({"host": views::host(&v)}))
}

async fn set_host(st: &AppState, caller: &Caller, id: &str, enabled: bool) -> Answer {
    let h = st
        .service
        .host_set_enabled(&caller.actor(), id, enabled)
        .await
        .map_err(from_service)?;
    ok(json!({"host": views::bare_host(&h)}))
}

pub async fn host_disable(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Answer {
    set_host(&st, &caller, &id, false).await
}

pub async fn host_enable(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Answer {
    set_host(&st, &caller, &id, true).await
}

pub async fn host_delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Answer {
    st.service
        .host_delete(&caller.actor(), &id)
        .await
        .map_err(from_service)?;
    no_content()
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkBody {
    id: Option<String>,
    #[serde(default)]
    name: String,
    /// The owner; absent with `shared: true`.
    project_id: Option<String>,
    #[serde(default)]
    shared: bool,
    #[serde(default)]
    cidrs: Vec<String>,
}

pub async fn network_create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    bytes: Bytes,
) -> Answer {
    let b: NetworkBody = body(&bytes)?;
    let project = match (&b.project_id, b.shared) {
        (Some(p), false) => Some(project_id(p)?),
        (None, true) => None,
        _ => {
            return Err(bad_request(
                "give either project_id (the network's owner) or \"shared\": true",
            ))
        }
    };
    let cidrs = cidrs(&b.cidrs)?;
    let n = st
        .service
        .network_create(
            &caller.actor(),
            NetworkCreate {
                id: b.id,
                name: b.name,
                project_id: project,
                cidrs,
            },
        )
        .await
        .map_err(from_service)?;
    created(json!({"network": views::network(&n)}))
}

pub async fn network_list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Answer {
    let all = st
        .service
        .network_list(&caller.actor())
        .await
        .map_err(from_service)?;
    ok(json!({"networks": all.iter().map(views::network).collect::<Vec<_>>()}))
}

pub async fn network_delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Answer {
    st.service
        .network_delete(&caller.actor(), &id)
        .await
        .map_err(from_service)?;
    no_content()
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingBody {
    /// Empty or absent: unbound.
    #[serde(default)]
    host_id: String,
    interface_name: Option<String>,
    capture_side: Option<CaptureSide>,
}

pub async fn port_bind(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let port: PortId = id.parse().map_err(|_| {
        super::error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("port {id} does not exist"),
        )
    })?;
    let b: BindingBody = body(&bytes)?;
    let profile = BindingProfile {
        interface_name: b.interface_name,
        capture_side: b.capture_side.unwrap_or_default(),
    };
    let p = st
        .service
        .port_bind(&caller.actor(), port, b.host_id, profile)
        .await
        .map_err(from_service)?;
    ok(json!({"port": views::binding(&p)}))
}
