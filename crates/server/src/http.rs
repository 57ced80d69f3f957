//! What every face shares on the wire: request ids, error answers, the body limit.
//!
//! A leaf: it knows no face. Each face brings its own [`ErrorFormat`] (how its error bodies are
//! spelled); [`crate::app`] composes the faces and renders pending errors with the request id,
//! so that the id in the body and in the `X-Request-Id` header always agree.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The id of one request, as sent in `X-Request-Id` and in bodies.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Largest accepted request body; bigger ones are refused before they are read in full.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What an error body may mention besides the error itself.
pub struct ErrorContext<'a> {
    pub request_id: &'a str,
    /// The `Host` the request was sent to.
    pub host: &'a str,
}

/// How a face spells its error bodies.
#[derive(Clone, Copy)]
pub struct ErrorFormat {
    name: &'static str,
    render: fn(&ApiError, &ErrorContext<'_>) -> serde_json::Value,
}

impl ErrorFormat {
    /// A format named `name` (for logs and debugging) that renders bodies with `render`.
    pub const fn new(
        name: &'static str,
        render: fn(&ApiError, &ErrorContext<'_>) -> serde_json::Value,
    ) -> Self {
        ErrorFormat { name, render }
    }
}

impl std::fmt::Debug for ErrorFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for ErrorFormat {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// An error answer: status, code and message, rendered in a face's format.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub format: ErrorFormat,
    /// Seconds the client should wait before trying again (`Retry-After`), for answers that
    /// invite a retry.
    pub retry_after: Option<u32>,
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
            retry_after: None,
        }
    }

    /// The same answer with a `Retry-After` header.
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The body, in the error's format.
    pub fn render(&self, context: &ErrorContext<'_>) -> serde_json::Value {
        (self.format.render)(self, context)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The body is rendered by the request-id layer of `crate::app`, which knows the id.
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Why a body was not read.
#[derive(Debug)]
pub enum BodyRefusal {
    /// Larger than the limit (413).
    TooLarge,
    /// Not sent within the body time-out, or the connection failed (408).
    TooSlow,
    /// The server is reading too many bodies at once (503, try again).
    Busy,
}

/// Bytes of request bodies being read at once, all requests together: a request reserves its
/// declared length (or the limit, when it streams without one) before reading, so a flood of
/// large bodies waits instead of filling memory.
#[derive(Clone)]
pub struct BodyBudget {
    kib: std::sync::Arc<tokio::sync::Semaphore>,
    total_kib: usize,
    wait: std::time::Duration,
    timeout: std::time::Duration,
}

impl BodyBudget {
    pub fn new(limits: &crate::config::ConnectionLimits) -> Self {
        let total_kib = (limits.body_budget_bytes / 1024).max(MAX_BODY_BYTES / 1024);
        BodyBudget {
            kib: std::sync::Arc::new(tokio::sync::Semaphore::new(total_kib)),
            total_kib,
            wait: limits.body_budget_wait,
            timeout: limits.body_read_timeout,
        }
    }

    /// Reads `body` (declared `length` bytes, if said) completely, refusing one larger than
    /// `limit`, one the budget has no room for within its wait, or one slower than the body
    /// time-out.
    pub async fn read(
        &self,
        body: Body,
        length: Option<u64>,
        limit: usize,
    ) -> Result<axum::body::Bytes, BodyRefusal> {
        if length.is_some_and(|n| n > limit as u64) {
            return Err(BodyRefusal::TooLarge);
        }
        if length == Some(0) {
            return Ok(axum::body::Bytes::new());
        }
        let want = length.map_or(limit, |n| n as usize).div_ceil(1024).max(1);
        let want = want.min(self.total_kib) as u32;
        let _reserved = tokio::time::timeout(self.wait, self.kib.acquire_many(want))
            .await
            .map_err(|_| BodyRefusal::Busy)?
            .expect("the body budget is never closed");
        let deadline = tokio::time::Instant::now() + self.timeout;
        match tokio::time::timeout_at(deadline, axum::body::to_bytes(body, limit)).await {
            Err(_) => Err(BodyRefusal::TooSlow),
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) if is_length_limit(&e) => Err(BodyRefusal::TooLarge),
            Ok(Err(_)) => Err(BodyRefusal::TooSlow),
        }
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    use std::error::Error as _;
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The `Content-Length` a request declares.
pub fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
