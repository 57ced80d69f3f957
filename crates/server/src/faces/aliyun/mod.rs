//! The Alibaba Cloud face: VPC API 2016-04-28, the traffic-mirroring RPC operations and the tag
//! and resource-group operations they use, over the same service layer as the Huawei face.
//!
//! `POST /` (or `GET /`); parameters from the query string and a form body; the action from
//! `x-acs-action` or `Action`. See `docs/aliyun.md` for the decisions and the error codes.

mod error;
mod filters;
mod ids;
mod params;
mod sessions;
mod slb;
mod states;
mod tags;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tmirror_model::{ProjectId, Timestamp};
use tmirror_store::{AliyunToken, WriteTx};

use self::error::{bad, illegal, internal, missing};
use self::params::Params;
use crate::audit::AuditNote;
use crate::auth::Caller;
use crate::http::{declared_length, ApiError, BodyRefusal, RequestId};
use crate::service::{Service, Writer};
use crate::AppState;

pub use error::{from_service, throttled, FORMAT};

/// The face's one path: every action is `POST /` (or `GET /`).
pub const PATH: &str = "/";

/// The API version this face speaks.
pub const VERSION: &str = "2016-04-28";

/// How long a ClientToken answer is remembered.
const TOKEN_TTL_SECS: i64 = 24 * 3600;

/// The route of the face (its handler verifies signatures itself).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(PATH, get(rpc).post(rpc))
        // The SDKs cannot read an empty error body: answer in Alibaba's format.
        .method_not_allowed_fallback(|| async {
            error::err(
                StatusCode::METHOD_NOT_ALLOWED,
                "UnsupportedHTTPMethod",
                "This endpoint takes POST (or GET) requests.",
            )
        })
}

async fn rpc(
    State(st): State<AppState>,
    Extension(rid): Extension<RequestId>,
    request: Request,
) -> Response {
    match handle(&st, request).await {
        Ok(answer) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
            answer.with_request_id(&rid.0),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// What an action answers: a JSON object, as a tree or (the hot reads) already serialised
/// from typed views. Either way the request's id is added to it last.
pub enum Answer {
    Tree(Value),
    Text(String),
}

impl Answer {
    /// The answer of a typed view (a struct that serialises to a JSON object).
    pub fn text(view: &impl serde::Serialize) -> Result<Answer, ApiError> {
        let text = serde_json::to_string(view).map_err(|e| {
            tracing::error!(error = %e, "an answer could not be serialised");
            internal()
        })?;
        // The request id is spliced in after the opening brace.
        if !text.starts_with('{') {
            tracing::error!("an answer serialised to something other than a JSON object");
            return Err(internal());
        }
        Ok(Answer::Text(text))
    }

    /// The body: the object with `RequestId` among its members.
    fn with_request_id(self, id: &str) -> String {
        match self {
            Answer::Tree(mut body) => {
                body["RequestId"] = Value::String(id.to_owned());
                body.to_string()
            }
            Answer::Text(text) => {
                let members = &text[1..];
                let mut body = Vec::with_capacity(text.len() + id.len() + 16);
                body.extend_from_slice(b"{\"RequestId\":");
                serde_json::to_writer(&mut body, id).expect("a string serialises");
                if !members.trim_start().starts_with('}') {
                    body.push(b',');
                }
                body.extend_from_slice(members.as_bytes());
                String::from_utf8(body).expect("JSON text is UTF-8")
            }
        }
    }
}

/// Whether an action only reads (the audit trail records the others).
fn is_read(action: &str) -> bool {
    ["Describe", "List", "Get"]
        .iter()
        .any(|p| action.starts_with(p))
}

/// What every action gets.
pub struct Ctx<'a> {
    pub st: &'a AppState,
    pub caller: Caller,
    pub p: Params,
    pub action: String,
}

impl Ctx<'_> {
    pub fn project(&self) -> &ProjectId {
        &self.caller.project
    }
}

async fn handle(st: &AppState, request: Request) -> Result<Answer, ApiError> {
    let (parts, body) = request.into_parts();
    let note = parts
        .extensions
        .get::<AuditNote>()
        .cloned()
        .unwrap_or_default();
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    // Before the body: a request naming an unknown key makes the server buffer nothing.
    let limit = crate::auth::aliyun::check_headers(st, &headers, parts.uri.query().unwrap_or(""))
        .await
        .inspect_err(|e| note.refused(None, &e.code))?;
    let body = st
        .bodies
        .read(body, declared_length(&parts.headers), limit)
        .await
        .map_err(|refusal| match refusal {
            BodyRefusal::TooLarge => bad(
                "InvalidParameter",
                format!("The request body is larger than {limit} bytes."),
            ),
            BodyRefusal::TooSlow => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeout",
                "The request body did not arrive in time.",
                FORMAT,
            ),
            BodyRefusal::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server.",
                FORMAT,
            )
            .retry_after(1),
        })?;
    let signed = tmirror_sign::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body: &body,
    };
    let all = tmirror_sign::aliyun::rpc_parameters(&signed);
    // A signature covers every copy of a repeated key, the face would read only one of them:
    // what is signed and what is done could differ.
    // (Sorted, not hashed: a dozen keys, and hashing them was 6,000 instructions a request.)
    let mut keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    if let Some(key) = keys.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]) {
        return Err(bad(
            "InvalidParameter",
            format!("The parameter {key:?} is given more than once."),
        ));
    }
    let note = parts
        .extensions
        .get::<AuditNote>()
        .cloned()
        .unwrap_or_default();
    let caller = match crate::auth::aliyun::authenticate(st, &signed, &all).await {
        Ok(c) => c,
        Err(e) => {
            // The key the request names: in ACS3's Authorization header, or HMAC-SHA1's
            // AccessKeyId parameter.
            let key = tmirror_sign::aliyun::Acs3Authorization::from_headers(signed.headers)
                .ok()
                .map(|a| a.credential.to_owned())
                .or_else(|| {
                    all.iter()
                        .find(|(k, _)| k == "AccessKeyId")
                        .map(|(_, v)| v.clone())
                });
            // A credential's throttling follows a verified signature: not a refusal.
            if e.code != error::THROTTLED_USER {
                note.refused(key.as_deref(), &e.code);
            }
            return Err(e);
        }
    };
    note.caller(&caller.access_key, caller.project.as_str());
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let param = |name: &str| {
        all.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    // HMAC-SHA1 signs the parameters only, not the headers: a header that disagrees with a
    // signed parameter must not choose what is done.
    let agreed =
        |header_name: &str, param_name: &str| match (header(header_name), param(param_name)) {
            (Some(h), Some(p)) if h != p => Err(bad(
                "InvalidParameter",
                format!(
                "The header {header_name} ({h:?}) and the parameter {param_name} ({p:?}) disagree."
            ),
            )),
            (h, p) => h.or(p).ok_or_else(|| missing(param_name)),
        };
    let action = agreed("x-acs-action", "Action")?;
    let version = agreed("x-acs-version", "Version")?;
    // The CLB (SLB) subset shares the endpoint, told apart by its version.
    if version != VERSION && version != slb::VERSION {
        return Err(bad(
            "InvalidVersion",
            format!(
                "Specified parameter Version {version:?} is not valid: this endpoint speaks {VERSION} (VPC) and {} (SLB).",
                slb::VERSION
            ),
        ));
    }
    drop(headers);
    note.action(&action, !is_read(&action));
    for (k, v) in &all {
        // The resources named (TrafficMirrorSessionId, TrafficMirrorSourceIds.1, ResourceId.1…).
        let base = k.split('.').next().unwrap_or(k);
        if (base.ends_with("Id") || base.ends_with("Ids"))
            && !matches!(base, "RegionId" | "AccessKeyId")
        {
            note.resource(v);
        }
    }
    let slb = version == slb::VERSION;
    let ctx = Ctx {
        st,
        caller,
        p: Params::new(&all),
        action,
    };
    // A write that lost its races commits nothing, so the action is run again as a whole
    // (after the signature, whose nonce is spent), as the service runs its own transactions.
    let started = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let answer = if slb {
            slb::dispatch(&ctx).await.map(Answer::Tree)
        } else {
            dispatch(&ctx).await
        };
        match answer {
            Err(e) if error::is_busy(&e) && Service::retry_again(attempt, started) => continue,
            answer => return answer,
        }
    }
}

async fn dispatch(ctx: &Ctx<'_>) -> Result<Answer, ApiError> {
    let action = ctx.action.as_str();
    match action {
        "OpenTrafficMirrorService" => return tags::open_service(ctx).await.map(Answer::Tree),
        "GetTrafficMirrorServiceStatus" => {
            return tags::service_status(ctx).await.map(Answer::Tree)
        }
        _ => {}
    }
    if !KNOWN.contains(&action) {
        return Err(err_unknown_action(action));
    }
    ctx.p.required("RegionId")?;
    let opened = ctx
        .st
        .service
        .aliyun_service_opened(ctx.project())
        .await
        .map_err(error::from_service)?;
    if !opened {
        return Err(bad(
            "OptInRequired.TrafficMirror",
            "You need to subscribe to the traffic mirror service first: call OpenTrafficMirrorService.",
        ));
    }
    let tree = match action {
        "ListTrafficMirrorSessions" => return sessions::list(ctx).await,
        "CreateTrafficMirrorSession" => sessions::create(ctx).await,
        "DeleteTrafficMirrorSession" => sessions::delete(ctx).await,
        "UpdateTrafficMirrorSessionAttribute" => sessions::update(ctx).await,
        "AddSourcesToTrafficMirrorSession" => sessions::add_sources(ctx).await,
        "RemoveSourcesFromTrafficMirrorSession" => sessions::remove_sources(ctx).await,
        "CreateTrafficMirrorFilter" => filters::create(ctx).await,
        "DeleteTrafficMirrorFilter" => filters::delete(ctx).await,
        "ListTrafficMirrorFilters" => filters::list(ctx).await,
        "UpdateTrafficMirrorFilterAttribute" => filters::update(ctx).await,
        "CreateTrafficMirrorFilterRules" => filters::create_rules(ctx).await,
        "DeleteTrafficMirrorFilterRules" => filters::delete_rules(ctx).await,
        "UpdateTrafficMirrorFilterRuleAttribute" => filters::update_rule(ctx).await,
        "TagResources" => tags::tag(ctx).await,
        "UnTagResources" => tags::untag(ctx).await,
        "ListTagResources" => tags::list(ctx).await,
        "MoveResourceGroup" => tags::move_group(ctx).await,
        other => Err(err_unknown_action(other)),
    };
    tree.map(Answer::Tree)
}

const KNOWN: &[&str] = &[
    "CreateTrafficMirrorSession",
    "DeleteTrafficMirrorSession",
    "ListTrafficMirrorSessions",
    "UpdateTrafficMirrorSessionAttribute",
    "AddSourcesToTrafficMirrorSession",
    "RemoveSourcesFromTrafficMirrorSession",
    "CreateTrafficMirrorFilter",
    "DeleteTrafficMirrorFilter",
    "ListTrafficMirrorFilters",
    "UpdateTrafficMirrorFilterAttribute",
    "CreateTrafficMirrorFilterRules",
    "DeleteTrafficMirrorFilterRules",
    "UpdateTrafficMirrorFilterRuleAttribute",
    "TagResources",
    "UnTagResources",
    "ListTagResources",
    "MoveResourceGroup",
];

fn err_unknown_action(action: &str) -> ApiError {
    error::err(
        StatusCode::NOT_FOUND,
        "InvalidAction.NotFound",
        format!("Specified api {action:?} is not found in version {VERSION} of this endpoint."),
    )
}

/// A write operation in progress: one transaction for the service operations, the face's own
/// records and the ClientToken record; `DryRun` rolls it back after every check passed.
pub struct Write {
    tx: Box<dyn WriteTx>,
    token: Option<(String, String)>,
    dry_run: bool,
}

/// How a write starts: a replayed ClientToken answers at once.
pub enum Begun {
    Replay(Value),
    Open(Write),
}

impl Write {
    /// Starts a write. `dry_run_allowed`: whether the action takes `DryRun`.
    pub async fn begin(ctx: &Ctx<'_>, dry_run_allowed: bool) -> Result<Begun, ApiError> {
        // Before anything else, a ClientToken replay included: a role that may not write
        // gets no write's answer.
        Service::check_writes(&ctx.caller.actor()).map_err(from_service)?;
        let token = match ctx.p.get("ClientToken") {
            Some(t) if t.len() > 64 || !t.is_ascii() => {
                return Err(illegal("ClientToken", "at most 64 ASCII characters"))
            }
            Some(t) => Some((t.to_owned(), ctx.p.fingerprint(&ctx.action))),
            None => None,
        };
        let dry_run = if dry_run_allowed {
            ctx.p.bool("DryRun")?.unwrap_or(false)
        } else {
            false
        };
        let mut tx = ctx.st.service.begin().await.map_err(error::from_service)?;
        if let Some((token, fingerprint)) = &token {
            let found = tx
                .aliyun_token(ctx.project(), token)
                .await
                .map_err(|e| error::from_service(e.into()))?;
            if let Some(record) = found {
                if &record.fingerprint != fingerprint {
                    return Err(bad(
                        "IdempotentParameterMismatch",
                        "The request uses the same client token as a previous, but non-identical request.",
                    ));
                }
                let answer = serde_json::from_str(&record.response).map_err(|e| {
                    tracing::error!(error = %e, "stored ClientToken answer does not parse");
                    internal()
                })?;
                return Ok(Begun::Replay(answer));
            }
        }
        Ok(Begun::Open(Write { tx, token, dry_run }))
    }

    /// The service's write operations, in this write's transaction.
    pub fn service<'w>(&'w mut self, ctx: &Ctx<'_>) -> Result<Writer<'w>, ApiError> {
        ctx.st
            .service
            .writer(self.tx.as_mut(), &ctx.caller.actor())
            .map_err(from_service)
    }

    /// This write's transaction, for the face's own records (tags, resource groups,
    /// tombstones); the model changes only through [`Write::service`].
    pub fn records(&mut self) -> &mut dyn WriteTx {
        self.tx.as_mut()
    }

    /// Finishes: answers `DryRunOperation` (and rolls back) for a dry run, otherwise records
    /// the ClientToken answer and commits.
    pub async fn finish(mut self, ctx: &Ctx<'_>, answer: Value) -> Result<Value, ApiError> {
        if self.dry_run {
            return Err(bad(
                "DryRunOperation",
                "Request validation has been passed with DryRun flag set.",
            ));
        }
        if let Some((token, fingerprint)) = &self.token {
            let now = Timestamp::now().0;
            self.tx
                .aliyun_put_token(
                    ctx.project(),
                    token,
                    &AliyunToken {
                        fingerprint: fingerprint.clone(),
                        response: answer.to_string(),
                    },
                    now,
                    now - TOKEN_TTL_SECS,
                )
                .await
                .map_err(|e| error::from_service(e.into()))?;
        }
        self.tx
            .commit()
            .await
            .map_err(|e| error::from_service(e.into()))?;
        Ok(answer)
    }
}

/// Names: 1–128 characters, not starting with `http://` or `https://`.
pub fn check_name(ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ApiError> {
    check_text(ctx, name, 128)
}

/// Descriptions: 1–256 characters, not starting with `http://` or `https://`.
pub fn check_description(ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ApiError> {
    check_text(ctx, name, 256)
}

fn check_text(ctx: &Ctx<'_>, name: &str, max: usize) -> Result<Option<String>, ApiError> {
    let Some(v) = ctx.p.get(name) else {
        return Ok(None);
    };
    if v.chars().count() > max {
        return Err(illegal(name, format!("must be 1 to {max} characters")));
    }
    if v.starts_with("http://") || v.starts_with("https://") {
        return Err(illegal(name, "must not start with http:// or https://"));
    }
    Ok(Some(v.to_owned()))
}

/// `CreationTime`: `2023-09-05T15:26Z`, the documented minute precision.
pub fn creation_time(t: Timestamp) -> String {
    let at = OffsetDateTime::from_unix_timestamp(t.0).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    // Digit by digit: `format!` with widths cost 2,300 instructions, in every listed item.
    fn digits(shown: &mut String, n: u32, width: u32) {
        for place in (0..width).rev() {
            shown.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
        }
    }
    let mut shown = String::with_capacity(17);
    digits(&mut shown, at.year().clamp(0, 9999) as u32, 4);
    let rest = [
        ('-', u8::from(at.month())),
        ('-', at.day()),
        ('T', at.hour()),
        (':', at.minute()),
    ];
    for (separator, n) in rest {
        shown.push(separator);
        digits(&mut shown, u32::from(n), 2);
    }
    shown.push('Z');
    shown
}

/// The store marker a `NextToken` stands for: the last item of the previous page, by its shown
/// id (the store says when it names nothing of this project).
pub fn marker_of(kind: tmirror_model::ResourceKind, token: &str) -> Result<String, ApiError> {
    ids::parse(kind, token)
        .map(|u| u.hyphenated().to_string())
        .ok_or_else(unknown_token)
}

/// A list's store error in the face's words: a marker the store does not know is a `NextToken`
/// that names no position (told without the canonical id, as for any unknown token).
pub fn from_list_error(e: crate::service::ServiceError) -> ApiError {
    match e {
        crate::service::ServiceError::Domain(tmirror_model::DomainError::Invalid {
            field: tmirror_model::Field::Marker,
            ..
        }) => unknown_token(),
        other => error::from_service(other),
    }
}

/// A `NextToken` that names no position of the list.
pub fn unknown_token() -> ApiError {
    illegal(
        "NextToken",
        "the token does not name a position in this list; start again without NextToken",
    )
}

/// A JSON object answer without RequestId (the handler adds it).
pub fn ok() -> Value {
    json!({})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_times_are_spelled_to_the_minute_in_utc() {
        assert_eq!(creation_time(Timestamp(0)), "1970-01-01T00:00Z");
        assert_eq!(creation_time(Timestamp(1_765_080_059)), "2025-12-07T04:00Z");
        assert_eq!(
            creation_time(Timestamp(253_402_300_799)),
            "9999-12-31T23:59Z"
        );
    }

    #[test]
    fn the_request_id_joins_a_serialised_answer() {
        let id = "5E0B6D4C-\"quoted\"";
        let with = |a: Answer| serde_json::from_str::<Value>(&a.with_request_id(id)).unwrap();
        let text = Answer::text(&json!({"TotalCount": "1", "Items": [{"A": 1}]})).unwrap();
        assert_eq!(
            with(text),
            json!({"RequestId": id, "TotalCount": "1", "Items": [{"A": 1}]})
        );
        assert_eq!(
            with(Answer::text(&json!({})).unwrap()),
            json!({"RequestId": id})
        );
        assert_eq!(
            with(Answer::Tree(json!({"A": "b"}))),
            json!({"RequestId": id, "A": "b"})
        );
    }
}
