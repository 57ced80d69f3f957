//! SDK-HMAC-SHA256 and SDK-HMAC-SM3 verification for the Huawei face, as middleware.
//!
//! The middleware first checks what it can without the body (a well-formed `Authorization`
//! naming a known, enabled key, with `host` signed), so an unauthenticated client cannot make
//! the server buffer bodies; then reads the body within the body budget (the signature covers
//! its exact bytes), verifies, checks that the path's project is the credential's project, and
//! hands the request on with a [`Caller`].

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use tmirror_sign::{huawei, Request as SignedRequest};

use tmirror_store::Credential;

use crate::audit::AuditNote;
use crate::throttle::Throttled;

use super::Caller;
use crate::faces::huawei::format_for;
use crate::http::{declared_length, ApiError, BodyRefusal, MAX_BODY_BYTES};
use crate::AppState;

/// Why a signed request was refused, before any face looked at it.
#[derive(Debug)]
pub enum Refusal {
    /// The body is over the limit, too slow, or the server is reading too many.
    Body(BodyRefusal),
    /// The signature, the key or the clock is wrong (401); the message says which.
    Unauthorized(String),
    /// The credential lookup failed (500).
    Internal,
    /// The signature is right, but the credential's bucket is empty.
    Throttled(Throttled),
}

/// Verifies an SDK-HMAC-SHA256/SM3 signature over the request (its body included) and finds
/// the enabled credential that made it. The Huawei face and the admin API share it; each
/// renders a [`Refusal`] in its own format.
pub async fn verify_request(
    state: &AppState,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<Credential, Refusal> {
    let verified = verify(state, parts, body).await;
    note_outcome(parts, verified.as_ref().err());
    let c = verified?;
    note(parts).caller(&c.access_key, c.project_id.as_str());
    // Only a verified request takes from its key's bucket: nobody drains another's by
    // naming its key.
    state
        .throttle
        .key(&c.access_key)
        .map_err(Refusal::Throttled)?;
    state.credentials.used(&c);
    Ok(c)
}

/// What can be checked before the body is read: an `Authorization` header that parses,
/// signs `host`, and names a known, enabled key. The Huawei face and the admin API call it
/// before [`read_signed_body`].
pub async fn check_headers(
    state: &AppState,
    parts: &axum::http::request::Parts,
) -> Result<(), Refusal> {
    let checked = headers_ok(state, parts).await;
    note_outcome(parts, checked.as_ref().err());
    checked
}

/// Reads the body of a request whose headers passed [`check_headers`].
pub async fn read_signed_body(
    state: &AppState,
    parts: &axum::http::request::Parts,
    body: Body,
) -> Result<axum::body::Bytes, Refusal> {
    state
        .bodies
        .read(body, declared_length(&parts.headers), MAX_BODY_BYTES)
        .await
        .map_err(Refusal::Body)
}

fn note(parts: &axum::http::request::Parts) -> AuditNote {
    parts
        .extensions
        .get::<AuditNote>()
        .cloned()
        .unwrap_or_default()
}

/// Records a refused authentication in the audit note, with the key the request named.
fn note_outcome(parts: &axum::http::request::Parts, refusal: Option<&Refusal>) {
    if let Some(Refusal::Unauthorized(why)) = refusal {
        let headers = header_pairs(parts);
        let key = huawei::Authorization::from_headers(&headers)
            .ok()
            .map(|a| a.access.to_owned());
        note(parts).refused(key.as_deref(), why);
    }
}

fn header_pairs(parts: &axum::http::request::Parts) -> Vec<(&str, &str)> {
    parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect()
}

async fn headers_ok(state: &AppState, parts: &axum::http::request::Parts) -> Result<(), Refusal> {
    let headers = header_pairs(parts);
    let auth = signed_authorization(&headers)?;
    match lookup(state, auth.access).await? {
        Some(_) => Ok(()),
        None => Err(unknown_key(auth.access)),
    }
}

/// The request's `Authorization`, which must sign `host`: without it a signature made for
/// another endpoint would verify here too (every SDK signs it).
fn signed_authorization<'a>(
    headers: &'a Vec<(&'a str, &'a str)>,
) -> Result<huawei::Authorization<'a>, Refusal> {
    let auth = huawei::Authorization::from_headers(headers)
        .map_err(|e| Refusal::Unauthorized(e.to_string()))?;
    if !auth
        .signed_headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("host"))
    {
        return Err(Refusal::Unauthorized(
            "SignedHeaders must include host".into(),
        ));
    }
    Ok(auth)
}

/// The enabled credential of `access`, if any; a store failure is a 500.
async fn lookup(state: &AppState, access: &str) -> Result<Option<Credential>, Refusal> {
    state.credentials.get(access).await.map_err(|e| {
        tracing::error!(error = %e, "credential lookup failed");
        Refusal::Internal
    })
}

fn unknown_key(access: &str) -> Refusal {
    Refusal::Unauthorized(format!(
        "Get secretKey failed, ak:{access}, err:ak not exist"
    ))
}

async fn verify(
    state: &AppState,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<Credential, Refusal> {
    let headers = header_pairs(parts);
    let auth = signed_authorization(&headers)?;
    let credential = lookup(state, auth.access).await?;
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    let secret = credential.as_ref().map(|c| c.secret_key.as_str());
    match huawei::verify(
        &signed,
        &auth,
        secret,
        OffsetDateTime::now_utc(),
        huawei::DEFAULT_MAX_SKEW,
    ) {
        Ok(v) if v.payload_signed => {}
        Ok(_) => {
            return Err(Refusal::Unauthorized(format!(
                "the request body must be signed ({} UNSIGNED-PAYLOAD is not accepted)",
                auth.algorithm.content_header()
            )))
        }
        Err(huawei::Error::UnknownAccessKey) => return Err(unknown_key(auth.access)),
        Err(e) => {
            return Err(Refusal::Unauthorized(format!(
                "verify aksk signature fail, {e}"
            )))
        }
    }
    Ok(credential.expect("verify succeeded, so the key is known"))
}

/// Verifies the signature and the project of a Huawei-face request.
pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let format = format_for(parts.uri.path());
    let refused = |refusal| {
        let (status, code, message) = match refusal {
            Refusal::Body(BodyRefusal::TooLarge) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "VPC.0101",
                format!("request body larger than {MAX_BODY_BYTES} bytes"),
            ),
            Refusal::Body(BodyRefusal::TooSlow) => (
                StatusCode::REQUEST_TIMEOUT,
                "VPC.0101",
                "the request body did not arrive in time".to_owned(),
            ),
            Refusal::Body(BodyRefusal::Busy) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "VPC.0503",
                "the server is busy reading other requests; retry".to_owned(),
            ),
            // The API gateway's answer to any authentication failure.
            Refusal::Unauthorized(m) => (
                StatusCode::UNAUTHORIZED,
                "APIGW.0301",
                format!("Incorrect IAM authentication information: {m}"),
            ),
            Refusal::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "VPC.0500",
                "internal error".to_owned(),
            ),
            Refusal::Throttled(t) => {
                return crate::faces::huawei::throttled(format, &t).into_response()
            }
        };
        let error = ApiError::new(status, code, message, format);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            return error.retry_after(1).into_response();
        }
        error.into_response()
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

    // /v3/{project_id}/... and /v1/{project_id}/...
    let path_project = parts.uri.path().split('/').nth(2).unwrap_or("");
    if path_project != credential.project_id.as_str() {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "VPC.0007",
            "the project id in the URL is not the project of the credential that signed the request",
            format,
        )
        .into_response();
    }
    parts.extensions.insert(Caller::of(&credential));
    next.run(Request::from_parts(parts, Body::from(body))).await
}
