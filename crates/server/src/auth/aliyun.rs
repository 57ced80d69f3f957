//! Signature verification for the Alibaba Cloud face: ACS3-HMAC-SHA256 (the SDKs' default,
//! an `Authorization` header) or ACS3-HMAC-SM3 (the same header, SM3 instead of SHA-256), and
//! the legacy HMAC-SHA1 SignatureVersion 1.0 (a `Signature` parameter). Both check the timestamp against a 15-minute window and accept each signature
//! nonce once per access key within that window; nonces live in the database, so several
//! servers sharing it refuse each other's replays too.

use axum::http::StatusCode;
use time::OffsetDateTime;
use tmirror_sign::aliyun::{self, Acs3Authorization, Error as SignError};
use tmirror_sign::Request as SignedRequest;

use super::Caller;
use crate::faces::aliyun::FORMAT;
use crate::http::ApiError;
use crate::AppState;

fn fail(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message, FORMAT)
}

fn bad(code: &str, message: impl Into<String>) -> ApiError {
    fail(StatusCode::BAD_REQUEST, code, message)
}

fn internal() -> ApiError {
    fail(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        "The request processing has failed due to some unknown error; it may be retried.",
    )
}

fn missing(name: &str) -> ApiError {
    bad(
        "MissingParameter",
        format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied."),
    )
}

fn unknown_key(access_key: &str) -> ApiError {
    fail(
        StatusCode::NOT_FOUND,
        "InvalidAccessKeyId.NotFound",
        format!("Specified access key {access_key:?} is not found."),
    )
}

/// Maps a verification failure to Alibaba's code.
fn sign_error(e: SignError) -> ApiError {
    match e {
        SignError::SignatureMismatch => bad(
            "SignatureDoesNotMatch",
            "Specified signature does not match our calculation.",
        ),
        SignError::ContentHashMismatch => bad(
            "SignatureDoesNotMatch",
            "Specified signature does not match our calculation: x-acs-content-sha256 is not the hash of the body (SHA-256, or SM3 for ACS3-HMAC-SM3).",
        ),
        SignError::BadTimestamp(v) => bad(
            "InvalidTimeStamp.Format",
            format!("Specified time stamp {v:?} is not in the format YYYY-MM-DDThh:mm:ssZ."),
        ),
        SignError::SkewedTimestamp { timestamp, .. } => bad(
            "InvalidTimeStamp.Expired",
            format!("Specified time stamp {timestamp} or date header is expired: it must be within 15 minutes of the server time."),
        ),
        SignError::MissingParameter(name) => missing(&name),
        SignError::UnknownAccessKey => unknown_key(""),
        SignError::MissingHeader(h) => bad(
            "IncompleteSignature",
            format!("The request signature does not conform to Aliyun standards: header {h} is missing."),
        ),
        SignError::MalformedAuthorization(why) => bad(
            "IncompleteSignature",
            format!("The request signature does not conform to Aliyun standards: {why}."),
        ),
        SignError::UnsupportedAlgorithm(a) => bad(
            "IncompleteSignature",
            format!("The request signature does not conform to Aliyun standards: unsupported signature algorithm {a}; use ACS3-HMAC-SHA256, ACS3-HMAC-SM3 or HMAC-SHA1 1.0."),
        ),
    }
}

/// An HMAC-SHA1 mismatch, worded as Alibaba words it: the legacy SDK (aliyun-python-sdk-core)
/// splits the message at its `:` and compares what follows with its own string to sign, to tell
/// a wrong secret (equal strings) from a request changed on the way (different ones). The
/// string to sign holds no secret and no literal `:` (every value in it is percent-encoded).
fn sha1_mismatch(string_to_sign: &str) -> ApiError {
    bad(
        "SignatureDoesNotMatch",
        format!("Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"),
    )
}

/// Longest accepted signature nonce: the SDKs send 32 to 64 characters, and every nonce is
/// stored until its time window closes.
pub const MAX_NONCE_CHARS: usize = 128;

/// A nonce within [`MAX_NONCE_CHARS`].
fn check_nonce(nonce: String) -> Result<String, ApiError> {
    if nonce.chars().count() > MAX_NONCE_CHARS {
        return Err(bad(
            "InvalidParameter",
            format!("The signature nonce is longer than {MAX_NONCE_CHARS} characters."),
        ));
    }
    Ok(nonce)
}

/// Largest body of a request whose signature cannot be looked at before the body is read
/// (HMAC-SHA1 with every parameter in a form body): enough for any action's parameters.
pub const UNSIGNED_HEADERS_BODY_LIMIT: usize = 64 * 1024;

/// What can be checked before the body is read: an ACS3 `Authorization` header that parses
/// and names a known, enabled key, or an HMAC-SHA1 `AccessKeyId` in the query naming one.
/// Returns how large the body may be: the full limit for a request whose key is known, a small
/// one when the key can only be in the body.
pub async fn check_headers(
    state: &AppState,
    headers: &[(&str, &str)],
    query: &str,
) -> Result<usize, ApiError> {
    let named = if let Some(value) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| *v)
    {
        Some(
            Acs3Authorization::parse(value)
                .map_err(sign_error)?
                .credential
                .to_owned(),
        )
    } else {
        aliyun::form_value(query, "AccessKeyId")
    };
    let Some(key) = named else {
        return Ok(UNSIGNED_HEADERS_BODY_LIMIT);
    };
    match state.credentials.get(&key).await {
        Ok(Some(_)) => Ok(crate::http::MAX_BODY_BYTES),
        Ok(None) => Err(unknown_key(&key)),
        Err(e) => {
            tracing::error!(error = %e, "credential lookup failed");
            Err(internal())
        }
    }
}

/// Verifies the request's signature, timestamp and nonce, and returns the caller.
/// `params` are the request's parameters (query and form body, decoded).
pub async fn authenticate(
    state: &AppState,
    req: &SignedRequest<'_, Vec<(&str, &str)>>,
    params: &[(String, String)],
) -> Result<Caller, ApiError> {
    let now = OffsetDateTime::now_utc();
    let headers = req.headers;
    let (credential, timestamp, nonce) = if let Some(value) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| *v)
    {
        let auth = Acs3Authorization::parse(value).map_err(sign_error)?;
        // The headers the signature must cover for the timestamp, nonce and action to count.
        let mut required = vec!["host", "x-acs-date", "x-acs-signature-nonce"];
        for optional in ["x-acs-action", "x-acs-version", "x-acs-content-sha256"] {
            if headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(optional))
            {
                required.push(optional);
            }
        }
        if !req.body.is_empty() {
            required.push("content-type");
        }
        for name in required {
            if !auth
                .signed_headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
            {
                return Err(bad(
                    "IncompleteSignature",
                    format!("The request signature does not conform to Aliyun standards: header {name} must be signed."),
                ));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        };
        let date = header(aliyun::DATE_HEADER).ok_or_else(|| missing(aliyun::DATE_HEADER))?;
        let nonce = header(aliyun::NONCE_HEADER)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| missing(aliyun::NONCE_HEADER))?;
        let nonce = check_nonce(nonce)?;
        let credential = state
            .credentials
            .get(auth.credential)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "credential lookup failed");
                internal()
            })?
            .ok_or_else(|| unknown_key(auth.credential))?;
        aliyun::verify_acs3(req, &auth, Some(&credential.secret_key)).map_err(sign_error)?;
        // The signature first: only a request that proves the secret learns about the clock.
        let at = aliyun::check_skew(&date, now, aliyun::DEFAULT_MAX_SKEW).map_err(sign_error)?;
        (credential, at, nonce)
    } else if params.iter().any(|(k, _)| k == "Signature") {
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let ts = get("Timestamp").ok_or_else(|| missing("Timestamp"))?;
        let nonce = check_nonce(get("SignatureNonce").ok_or_else(|| missing("SignatureNonce"))?)?;
        let ak = aliyun::rpc_access_key_id(params).map_err(sign_error)?;
        let credential = state
            .credentials
            .get(ak)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "credential lookup failed");
                internal()
            })?
            .ok_or_else(|| unknown_key(ak))?;
        aliyun::verify_hmac_sha1(req.method, params, Some(&credential.secret_key)).map_err(
            |e| match e {
                SignError::SignatureMismatch => {
                    sha1_mismatch(&aliyun::hmac_sha1_string_to_sign(req.method, params))
                }
                e => sign_error(e),
            },
        )?;
        let at = aliyun::check_skew(&ts, now, aliyun::DEFAULT_MAX_SKEW).map_err(sign_error)?;
        (credential, at, nonce)
    } else {
        return Err(bad(
            "IncompleteSignature",
            "The request signature does not conform to Aliyun standards: the request is not signed (send an ACS3-HMAC-SHA256 or ACS3-HMAC-SM3 Authorization header, or the HMAC-SHA1 Signature parameters).",
        ));
    };
    // A throttled request changes nothing, its nonce included.
    state
        .throttle
        .key(&credential.access_key)
        .map_err(|t| crate::faces::aliyun::throttled(&t))?;
    // Only a correctly signed request uses up its nonce, so nobody can burn someone else's.
    let expires_at = (timestamp + aliyun::DEFAULT_MAX_SKEW).unix_timestamp() + 1;
    let fresh = state
        .service
        .use_nonce(
            &credential.access_key,
            &nonce,
            expires_at,
            now.unix_timestamp(),
        )
        .await
        // A write like any other: a busy database is answered as retryable.
        .map_err(crate::faces::aliyun::from_service)?;
    if !fresh {
        return Err(bad(
            "SignatureNonceUsed",
            format!("Specified signature nonce {nonce:?} was used already."),
        ));
    }
    state.credentials.used(&credential);
    Ok(Caller::of(&credential))
}
