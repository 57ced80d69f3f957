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

/// Reads a request body completely, refusing one larger than [`MAX_BODY_BYTES`].
pub async fn read_body(body: Body) -> Result<axum::body::Bytes, axum::Error> {
    axum::body::to_bytes(body, MAX_BODY_BYTES).await
}
