//! The read-only web console (`/console`): sign in with an access key and its secret, then
//! see sessions (with filters), their filters, sources and targets and their delivery, a live
//! plot of a session's copies per second, and — for the operator — the hosts and their
//! agents' health. A tenant's key shows its own project only: every page asks the service,
//! as that key's project and role, exactly like the APIs do.
//!
//! Pages are rendered on the server ([`html`]); one small script of ours draws the plot.
//! Sign-ins are the server's ([`signin`]).

mod html;
pub mod signin;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use serde::Deserialize;
use tmirror_model::{Actor, ProjectId, Role, SessionId, Timestamp};

use crate::audit::AuditNote;
use crate::service::overview::SessionFilter;
use crate::service::ServiceError;
use crate::throttle::Throttled;
use crate::AppState;
use html::{esc, page, Who};
use signin::{cookie, same, set_cookie, SignIn, COOKIE, FORM_COOKIE, LIFETIME_SECS};

const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// The console's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/sessions", get(sessions))
        .route("/console/sessions/{project}/{id}", get(session))
        .route(
            "/console/sessions/{project}/{id}/delivery.json",
            get(delivery_json),
        )
        .route("/console/hosts", get(hosts))
        .route("/console/assets/console.js", get(script))
        .route("/console/assets/console.css", get(style))
}

/// Whether a path is the console's (its answers are pages, not an API's error documents).
pub fn is_console(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// The console's answer to a throttled request.
pub fn throttled(t: &Throttled) -> Response {
    let mut r = page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests",
        None,
        &format!(
            "<p>Too many requests from this address; retry in {} seconds.</p>",
            t.retry_after_secs()
        ),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(t.retry_after_secs()));
    r
}

fn now() -> i64 {
    Timestamp::now().0
}

fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(to).expect("console paths are valid header text"),
    );
    signin_headers(&mut r);
    r
}

fn signin_headers(r: &mut Response) {
    html::secure_headers(r.headers_mut());
}

/// The signed-in caller of a request.
struct Viewer {
    sign_in: SignIn,
    token: String,
    actor: Actor,
}

impl Viewer {
    fn who(&self) -> Who<'_> {
        Who {
            access_key: &self.sign_in.access_key,
            role: self.actor.role,
            project: self.actor.project.as_str(),
            form_token: &self.sign_in.form_token,
        }
    }
}

/// The caller's sign-in, with its key's *current* project and role: a key disabled or
/// deleted since ends the sign-in at once.
async fn viewer(state: &AppState, headers: &HeaderMap) -> Result<Viewer, Response> {
    let Some(token) = cookie(headers, COOKIE) else {
        return Err(see_other("/console/sign-in"));
    };
    let Some(sign_in) = state.sign_ins.find(&token, now()) else {
        return Err(see_other("/console/sign-in"));
    };
    match state.credentials.get(&sign_in.access_key).await {
        Ok(Some(c)) => Ok(Viewer {
            actor: Actor::new(c.project_id.clone(), c.role),
            sign_in,
            token,
        }),
        Ok(None) => {
            state.sign_ins.close(&token);
            Err(see_other("/console/sign-in"))
        }
        Err(e) => Err(failure(ServiceError::Store(e))),
    }
}

fn failure(e: ServiceError) -> Response {
    let (status, message) = match &e {
        ServiceError::Domain(d) => match d {
            tmirror_model::DomainError::NotFound { .. }
            | tmirror_model::DomainError::UnknownRecord { .. } => {
                (StatusCode::NOT_FOUND, d.to_string())
            }
            tmirror_model::DomainError::Forbidden(_) => (StatusCode::FORBIDDEN, d.to_string()),
            _ => (StatusCode::BAD_REQUEST, d.to_string()),
        },
        ServiceError::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is busy; reload the page".to_owned(),
        ),
        ServiceError::Store(e) => {
            tracing::error!(error = %e, "console: store failure");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; reload the page".to_owned(),
            )
        }
    };
    page(
        status,
        status.canonical_reason().unwrap_or("Error"),
        None,
        &format!(r#"<p class="error" id="error">{}</p>"#, esc(&message)),
    )
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match viewer(&state, &headers).await {
        Ok(_) => see_other("/console/sessions"),
        Err(r) => r,
    }
}

async fn sign_in_page(State(state): State<AppState>) -> Response {
    sign_in_form(&state, StatusCode::OK, None)
}

/// The sign-in page with a fresh form token, set as a cookie too.
fn sign_in_form(state: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let token = signin::random_token();
    let mut r = page(status, "Sign in", None, &html::sign_in(&token, error));
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(FORM_COOKIE, &token, 3600, state.scheme == "https"),
    );
    r
}

/// The sign-in form. Not `Debug`: it holds the secret.
#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    access_key: String,
    #[serde(default)]
    secret_key: String,
}

/// Whether the request's `Origin`, when the browser sent one, is this server.
fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    origin == format!("{}://{host}", state.scheme)
}

async fn sign_in(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let expected = cookie(&headers, FORM_COOKIE).unwrap_or_default();
    let why = if !same_origin(&state, &headers) {
        Some("posted from another origin")
    } else if expected.is_empty() {
        Some("no form cookie (cookies blocked, or the form is older than an hour)")
    } else if !same(&expected, &form.form_token) {
        Some("the form's token is not its cookie's")
    } else {
        None
    };
    if let Some(why) = why {
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        tracing::info!(why, origin, "console sign-in form refused");
        note.refused(None, "console sign-in without this server's form");
        return sign_in_form(
            &state,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired or came from another site: sign in again."),
        );
    }
    let credential = match state.credentials.get(form.access_key.trim()).await {
        Ok(c) => c,
        Err(e) => return failure(ServiceError::Store(e)),
    };
    let Some(credential) = credential.filter(|c| same(&c.secret_key, &form.secret_key)) else {
        // Counted against the address like any failed authentication (throttled).
        note.refused(
            Some(form.access_key.trim()),
            "console sign-in: unknown or disabled key, or a wrong secret",
        );
        return sign_in_form(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("Wrong access key or secret key, or the key is disabled."),
        );
    };
    note.caller(&credential.access_key, credential.project_id.as_str());
    state.credentials.used(&credential);
    let token = state.sign_ins.open(&credential.access_key, now());
    let secure = state.scheme == "https";
    let mut r = see_other("/console/sessions");
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(COOKIE, &token, LIFETIME_SECS, secure),
    );
    h.append(header::SET_COOKIE, set_cookie(FORM_COOKIE, "", 0, secure));
    r
}

#[derive(Deserialize)]
struct SignOutForm {
    #[serde(default)]
    form_token: String,
}

async fn sign_out(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Response {
    let v = match viewer(&state, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !same_origin(&state, &headers) || !same(&v.sign_in.form_token, &form.form_token) {
        return page(
            StatusCode::FORBIDDEN,
            "Not signed out",
            Some(&v.who()),
            r#"<p class="error" id="error">The sign-out form came from another site or an older page: use the button on this page.</p>"#,
        );
    }
    note.caller(&v.sign_in.access_key, v.actor.project.as_str());
    state.sign_ins.close(&v.token);
    let mut r = see_other("/console/sign-in");
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(COOKIE, "", 0, state.scheme == "https"),
    );
    r
}

/// The session list's query, checked.
fn session_filter(q: &HashMap<String, String>) -> Result<SessionFilter, String> {
    let given = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    Ok(SessionFilter {
        project: given("project")
            .map(|p| {
                p.parse::<ProjectId>()
                    .map_err(|_| format!("project {p:?} is not a project id (32 hex digits)"))
            })
            .transpose()?,
        name: given("name").map(str::to_owned),
        enabled: given("enabled")
            .map(|e| match e {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(format!("enabled {e:?}: true, false, or empty for any")),
            })
            .transpose()?,
        vni: given("vni")
            .map(|v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|v| *v <= 16_777_215)
                    .ok_or_else(|| format!("VNI {v:?}: a number from 0 to 16777215"))
            })
            .transpose()?,
    })
}

async fn sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let v = match viewer(&state, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let filter = match session_filter(&q) {
        Ok(f) => f,
        Err(why) => {
            return page(
                StatusCode::BAD_REQUEST,
                "Sessions",
                Some(&v.who()),
                &format!(
                    r#"<p class="error" id="error">{}</p><p><a href="/console/sessions">Every session</a></p>"#,
                    esc(&why)
                ),
            )
        }
    };
    let projects = match state.service.visible_projects(&v.actor).await {
        Ok(p) => p,
        Err(e) => return failure(e),
    };
    match state.service.session_overviews(&v.actor, &filter).await {
        Ok((items, more)) => page(
            StatusCode::OK,
            "Sessions",
            Some(&v.who()),
            &html::sessions(
                &items,
                more,
                &filter,
                &projects,
                v.actor.role == Role::Operator,
            ),
        ),
        Err(e) => failure(e),
    }
}

/// The session a path names, or the page saying there is none.
fn session_path(project: &str, id: &str) -> Option<(ProjectId, SessionId)> {
    Some((project.parse().ok()?, id.parse().ok()?))
}

fn not_found(e: &ServiceError) -> bool {
    matches!(
        e,
        ServiceError::Domain(
            tmirror_model::DomainError::NotFound { .. }
                | tmirror_model::DomainError::UnknownRecord { .. }
        )
    )
}

fn no_such_session(who: Option<&Who>) -> Response {
    page(
        StatusCode::NOT_FOUND,
        "No such session",
        who,
        r#"<p class="error" id="error">No such session in the projects you may see.</p>"#,
    )
}

async fn session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    let v = match viewer(&state, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some((project, id)) = session_path(&project, &id) else {
        return no_such_session(Some(&v.who()));
    };
    match state.service.session_overview(&v.actor, &project, id).await {
        Ok(o) => page(
            StatusCode::OK,
            &format!("Session {}", o.session().name),
            Some(&v.who()),
            &html::session(&o),
        ),
        Err(e) if not_found(&e) => no_such_session(Some(&v.who())),
        Err(e) => failure(e),
    }
}

/// The plot's data: the session's delivery now. A signed-out caller gets 401 (a script
/// does not follow a redirect to a form).
async fn delivery_json(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    let json_error = |status: StatusCode, message: &str| {
        let mut r = (status, Json(serde_json::json!({"message": message}))).into_response();
        signin_headers(&mut r);
        r
    };
    let v = match viewer(&state, &headers).await {
        Ok(v) => v,
        Err(_) => return json_error(StatusCode::UNAUTHORIZED, "signed out: sign in again"),
    };
    let Some((project, id)) = session_path(&project, &id) else {
        return json_error(StatusCode::NOT_FOUND, "no such session");
    };
    match state.service.session_delivery(&v.actor, &project, id).await {
        Ok(d) => {
            let mut r = Json(crate::faces::admin::views::delivery(&d)).into_response();
            signin_headers(&mut r);
            r
        }
        Err(e) if not_found(&e) => json_error(StatusCode::NOT_FOUND, "no such session"),
        Err(e) => {
            tracing::warn!(error = %e, "console: cannot read a delivery");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot read the delivery; retrying",
            )
        }
    }
}

async fn hosts(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let v = match viewer(&state, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match state.service.host_list(&v.actor).await {
        Ok(hosts) => page(
            StatusCode::OK,
            "Hosts",
            Some(&v.who()),
            &html::hosts(&hosts),
        ),
        Err(ServiceError::Domain(tmirror_model::DomainError::Forbidden(_))) => page(
            StatusCode::FORBIDDEN,
            "Hosts",
            Some(&v.who()),
            r#"<p class="error" id="error">Only the operator sees the hosts.</p>"#,
        ),
        Err(e) => failure(e),
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    signin_headers(&mut r);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}
