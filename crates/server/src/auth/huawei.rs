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

use super::Caller;
use crate::faces::huawei::{V1, V3};
use crate::http::{read_body, ApiError, ErrorFormat};
use crate::AppState;

/// The API gateway's answer to any authentication failure.
fn unauthorized(message: impl Into<String>) -> Response {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "APIGW.0301",
        format!(
            "Incorrect IAM authentication information: {}",
            message.into()
        ),
        V3,
    )
    .into_response()
}

fn format_for(path: &str) -> ErrorFormat {
    if path.starts_with("/v1/") {
        V1
    } else {
        V3
    }
}

/// Verifies the signature and the project of a Huawei-face request.
pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let format = format_for(parts.uri.path());
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "VPC.0101",
                format!(
                    "request body larger than {} bytes",
                    crate::http::MAX_BODY_BYTES
                ),
                format,
            )
            .into_response()
        }
    };
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let auth = match huawei::Authorization::from_headers(&headers) {
        Ok(a) => a,
        Err(e) => return unauthorized(e.to_string()),
    };
    // Without `host` a signature made for another endpoint would verify here too; every SDK
    // signs it.
    if !auth
        .signed_headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("host"))
    {
        return unauthorized("SignedHeaders must include host");
    }
    let credential = match state.credentials.get(auth.access).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "credential lookup failed");
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "VPC.0500",
                "internal error",
                format,
            )
            .into_response();
        }
    };
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body: &body,
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
            return unauthorized(format!(
                "the request body must be signed ({} UNSIGNED-PAYLOAD is not accepted)",
                auth.algorithm.content_header()
            ))
        }
        Err(huawei::Error::UnknownAccessKey) => {
            return unauthorized(format!(
                "Get secretKey failed, ak:{}, err:ak not exist",
                auth.access
            ))
        }
        Err(e) => return unauthorized(format!("verify aksk signature fail, {e}")),
    }
    let credential = credential.expect("verify succeeded, so the key is known");
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
    parts.extensions.insert(Caller {
        project: credential.project_id.clone(),
        access_key: credential.access_key,
    });
    next.run(Request::from_parts(parts, Body::from(body))).await
}
