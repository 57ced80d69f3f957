//! SDK-HMAC-SHA256 and SDK-HMAC-SM3 verification for the Huawei face, as middleware.
//!
//! The middleware reads the body (the signature covers its exact bytes), verifies, checks that
//! the path's project is the credential's project, and hands the request on with a [`Caller`].

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use tmirror_sign::{huawei, Request as SignedRequest};

use tmirror_store::Credential;

use crate::audit::AuditNote;

use super::Caller;
use crate::faces::huawei::format_for;
use crate::http::{read_body, ApiError};
use crate::AppState;

/// Why a signed request was refused, before any face looked at it.
#[derive(Debug)]
pub enum Refusal {
    /// The body is over the limit.
    TooLarge,
    /// The signature, the key or the clock is wrong (401); the message says which.
    Unauthorized(String),
    /// The credential lookup failed (500).
    Internal,
}

/// Verifies an SDK-HMAC-SHA256/SM3 signature over the request (its body included) and finds
/// the enabled credential that made it. The Huawei face and the admin API share it; each
/// renders a [`Refusal`] in its own format.
pub async fn verify_request(
    state: &AppState,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<Credential, Refusal> {
    let note = parts
        .extensions
        .get::<AuditNote>()
        .cloned()
        .unwrap_or_default();
    let verified = verify(state, parts, body).await;
    match &verified {
        Ok(c) => note.caller(&c.access_key, c.project_id.as_str()),
        Err(Refusal::Unauthorized(why)) => {
            let headers: Vec<(&str, &str)> = parts
                .headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
                .collect();
            let key = huawei::Authorization::from_headers(&headers)
                .ok()
                .map(|a| a.access.to_owned());
            note.refused(key.as_deref(), why);
        }
        Err(_) => {}
    }
    verified
}

async fn verify(
    state: &AppState,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<Credential, Refusal> {
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let auth = huawei::Authorization::from_headers(&headers)
        .map_err(|e| Refusal::Unauthorized(e.to_string()))?;
    // Without `host` a signature made for another endpoint would verify here too; every SDK
    // signs it.
    if !auth
        .signed_headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("host"))
    {
        return Err(Refusal::Unauthorized(
            "SignedHeaders must include host".into(),
        ));
    }
    let credential = state.credentials.get(auth.access).await.map_err(|e| {
        tracing::error!(error = %e, "credential lookup failed");
        Refusal::Internal
    })?;
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
        Err(huawei::Error::UnknownAccessKey) => {
            return Err(Refusal::Unauthorized(format!(
                "Get secretKey failed, ak:{}, err:ak not exist",
                auth.access
            )))
        }
        Err(e) => {
            return Err(Refusal::Unauthorized(format!(
                "verify aksk signature fail, {e}"
            )))
        }
    }
    let credential = credential.expect("verify succeeded, so the key is known");
    state.credentials.used(&credential);
    Ok(credential)
}

/// Verifies the signature and the project of a Huawei-face request.
pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let format = format_for(parts.uri.path());
    let refused = |refusal| {
        let (status, code, message) = match refusal {
            Refusal::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "VPC.0101",
                format!(
                    "request body larger than {} bytes",
                    crate::http::MAX_BODY_BYTES
                ),
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
        };
        ApiError::new(status, code, message, format).into_response()
    };
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(_) => return refused(Refusal::TooLarge),
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
