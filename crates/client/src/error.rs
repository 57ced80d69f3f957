//! What can go wrong with a call: the server said no ([`ApiError`]), or there was no usable
//! answer at all (transport, decoding, a bad endpoint).

use std::fmt;

/// An error answer from the server, with the fields the Huawei SDK exposes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `error_code` (v3) or `code` (v1 ports), e.g. `VPC.1710`; the status as text if the body
    /// carried neither, as the SDK does.
    pub error_code: String,
    /// `error_msg` (v3) or `message` (v1); the raw body if it carried neither.
    pub error_msg: String,
    /// From the `X-Request-Id` response header: the id to quote when reading the server log.
    pub request_id: Option<String>,
}

impl fmt::Display for ApiError {
    /// `<message> (HTTP 409 VPC.1710, request <id>)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (HTTP {} {}",
            self.error_msg, self.status, self.error_code
        )?;
        if let Some(id) = &self.request_id {
            write!(f, ", request {id}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for ApiError {}

/// Any failed call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("{0}")]
    Api(ApiError),
    /// No HTTP answer: connection refused, DNS failure, timeout, connection reset.
    #[error("cannot reach {endpoint}: {}", transport_detail(.source))]
    Transport {
        /// The endpoint the client was configured with.
        endpoint: String,
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
    },
    /// A success status whose body is not what the operation returns.
    #[error("unexpected response from the server (HTTP {status}): {message}")]
    Decode {
        /// HTTP status.
        status: u16,
        /// What did not parse.
        message: String,
        /// From `X-Request-Id`.
        request_id: Option<String>,
    },
    /// The endpoint is not an `http(s)://host[:port][/prefix]` URL this client can use, or its
    /// trust settings (a CA file) are unusable.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// As given.
        endpoint: String,
        /// Why it is unusable.
        reason: String,
    },
    /// An argument no request can carry (e.g. an empty id).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The request could not be signed (e.g. a header value that is not valid text).
    #[error("cannot sign the request: {0}")]
    Sign(#[from] tmirror_sign::huawei::Error),
}

/// reqwest's own Display says only "error sending request"; the interesting part (e.g.
/// "Connection refused") is further down the source chain.
fn transport_detail(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut last = String::new();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    if !last.is_empty() && !text.contains(&last) {
        text.push_str(": ");
        text.push_str(&last);
    }
    text
}

impl ClientError {
    /// The API error, if the server answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api(e) => Some(e),
            _ => None,
        }
    }

    /// HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        self.api().map(|e| e.status)
    }

    /// `error_code` of an API error.
    pub fn error_code(&self) -> Option<&str> {
        self.api().map(|e| e.error_code.as_str())
    }

    /// Whether no connection could be made (nothing listening, host unreachable, DNS).
    pub fn is_connect(&self) -> bool {
        matches!(self, ClientError::Transport { source, .. } if source.is_connect())
    }

    /// Whether the request timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Transport { source, .. } if source.is_timeout())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_display_names_status_code_and_request() {
        let e = ApiError {
            status: 409,
            error_code: "VPC.1710".into(),
            error_msg: "priority 1 is already used".into(),
            request_id: Some("r-1".into()),
        };
        assert_eq!(
            e.to_string(),
            "priority 1 is already used (HTTP 409 VPC.1710, request r-1)"
        );
        let no_id = ApiError {
            request_id: None,
            ..e
        };
        assert_eq!(
            no_id.to_string(),
            "priority 1 is already used (HTTP 409 VPC.1710)"
        );
    }
}
