//! Huawei status and error codes (see `docs/huawei-errors.md`).

use axum::http::StatusCode;
use tmirror_model::{DomainError, ResourceKind};

use crate::http::{ApiError, ErrorFormat};
use crate::service::ServiceError;

/// An invalid request (`VPC.0101`).
pub fn invalid(format: ErrorFormat, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "VPC.0101", message, format)
}

/// Maps a service error to Huawei's status and code.
pub fn from_service(e: ServiceError, format: ErrorFormat) -> ApiError {
    let d = match e {
        ServiceError::Domain(d) => d,
        ServiceError::Store(e) => {
            tracing::error!(error = ?e, "store failure");
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "VPC.0500",
                "internal error; the request may be retried",
                format,
            );
        }
    };
    let message = d.to_string();
    let (status, code) = match &d {
        DomainError::Invalid { .. } | DomainError::DuplicateSource(_) => {
            (StatusCode::BAD_REQUEST, "VPC.0101")
        }
        DomainError::SourceIsTarget(_) => (StatusCode::BAD_REQUEST, "VPC.1713"),
        DomainError::UnsupportedTarget(_) => (StatusCode::BAD_REQUEST, "VPC.1714"),
        DomainError::NotFound { kind, .. } => (
            StatusCode::NOT_FOUND,
            match kind {
                ResourceKind::Session => "VPC.1701",
                ResourceKind::Filter => "VPC.1702",
                ResourceKind::Rule => "VPC.1703",
                ResourceKind::Port => "VPC.1704",
            },
        ),
        DomainError::SessionPriorityInUse(_) | DomainError::RulePriorityInUse { .. } => {
            (StatusCode::CONFLICT, "VPC.1710")
        }
        DomainError::InUse { .. } | DomainError::Conflict(_) => (StatusCode::CONFLICT, "VPC.1711"),
        DomainError::SourceAlreadyPresent(_) | DomainError::SourceNotPresent(_) => {
            (StatusCode::CONFLICT, "VPC.1712")
        }
        DomainError::QuotaExceeded { .. } => (StatusCode::CONFLICT, "VPC.0114"),
    };
    ApiError::new(status, code, message, format)
}
