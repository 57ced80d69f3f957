//! Huawei status and error codes (see `docs/huawei-errors.md`).

use axum::http::StatusCode;
use tmirror_model::{DomainError, Field, ResourceKind};

use serde_json::json;

use crate::http::{ApiError, ErrorContext, ErrorFormat};
use crate::service::ServiceError;
use crate::throttle::{Scope, Throttled};

/// v3 error bodies: `{"request_id", "error_code", "error_msg"}`.
pub const V3: ErrorFormat = ErrorFormat::new(
    "huawei-v3",
    |e, c| json!({"request_id": c.request_id, "error_code": e.code, "error_msg": e.message}),
);

/// The error format of a path of the face: the v1 body for `/v1/…` (ports), v3 otherwise.
pub fn format_for(path: &str) -> ErrorFormat {
    if path.starts_with("/v1/") {
        V1
    } else {
        V3
    }
}

/// v1 (ports) error bodies: `{"code", "message"}` as the v1 API documents them, plus the same
/// pair as `error_code`/`error_msg` and the `request_id`, because Huawei's Node.js SDK reads
/// only those (the Python SDK prefers them too, so both read the same values).
pub const V1: ErrorFormat = ErrorFormat::new("huawei-v1", render_v1);

fn render_v1(e: &ApiError, c: &ErrorContext<'_>) -> serde_json::Value {
    json!({
        "code": e.code, "message": e.message,
        "error_code": e.code, "error_msg": e.message, "request_id": c.request_id,
    })
}

/// The API gateway's throttling answer (429 `APIGW.0308`), worded as Huawei's gateway words
/// it: `policy user` for a credential's bucket, `policy ip` for an address's.
pub fn throttled(format: ErrorFormat, t: &Throttled) -> ApiError {
    let policy = match t.scope {
        Scope::Key => "user",
        Scope::Address | Scope::AuthFailures => "ip",
    };
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "APIGW.0308",
        format!(
            "The throttling threshold has been reached: policy {policy} over ratelimit,limit:{},time:{}",
            t.rate.rate,
            t.period()
        ),
        format,
    )
    .retry_after(t.retry_after_secs())
}

/// An invalid request (`VPC.0101`).
pub fn invalid(format: ErrorFormat, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "VPC.0101", message, format)
}

/// Maps a service error to Huawei's status and code.
pub fn from_service(e: ServiceError, format: ErrorFormat) -> ApiError {
    let d =
        match e {
            ServiceError::Domain(d) => d,
            ServiceError::Busy => return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "VPC.0503",
                "the request conflicted with concurrent changes and was not applied; send it again",
                format,
            )
            .retry_after(1),
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
    let message = message(&d);
    let (status, code) = match &d {
        DomainError::Invalid { .. } | DomainError::DuplicateSource(_) => {
            (StatusCode::BAD_REQUEST, "VPC.0101")
        }
        DomainError::SourceIsTarget(_) => (StatusCode::BAD_REQUEST, "VPC.1713"),
        DomainError::TargetWithoutAddress(_) => (StatusCode::BAD_REQUEST, "VPC.1714"),
        DomainError::NotFound { kind, .. } => (
            StatusCode::NOT_FOUND,
            match kind {
                ResourceKind::Session => "VPC.1701",
                ResourceKind::Filter => "VPC.1702",
                ResourceKind::Rule => "VPC.1703",
                ResourceKind::Port => "VPC.1704",
                // The ELB face's "resource not found" (docs/load-balancers.md).
                ResourceKind::LoadBalancer | ResourceKind::Member => "ELB.8902",
                // The EIP v1 API's "the EIP does not exist".
                ResourceKind::Eip => "VPC.0504",
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
        // "Action disallowed by policy", as IAM answers a role that lacks the permission.
        DomainError::Forbidden(_) => (StatusCode::FORBIDDEN, "VPC.0010"),
        // The operator's records are not this face's; never answered here.
        DomainError::UnknownRecord { .. } => (StatusCode::NOT_FOUND, "VPC.0101"),
    };
    ApiError::new(status, code, message, format)
}

/// The face's name of a field.
fn field_name(field: Field) -> &'static str {
    match field {
        Field::Protocol => "protocol",
        Field::SourceCidr => "source_cidr_block",
        Field::DestinationCidr => "destination_cidr_block",
        Field::SourcePortRange => "source_port_range",
        Field::DestinationPortRange => "destination_port_range",
        Field::InterfaceName => "binding:profile.interface_name",
        Field::Marker => "marker",
        // Agents report through the agent API; named for completeness.
        Field::AppliedGeneration => "applied_generation",
        Field::NetworkId => "network_id",
        Field::FixedIp => "fixed_ips.ip_address",
        Field::Binding => "binding:host_id",
        Field::HostId => "host_id",
        Field::Name => "name",
        Field::MemberAddress => "address",
        Field::MemberPort => "protocol_port",
        Field::Members => "members",
        Field::HealthCheck => "timeout",
        Field::ListenerPort => "protocol_port",
        Field::DefaultPool => "default_pool_id",
        Field::Listener => "listener_id",
    }
}

/// The message of a domain error, in the face's own words where the model's are neutral.
fn message(d: &DomainError) -> String {
    match d {
        DomainError::Invalid { field, message } => format!("{}: {message}", field_name(*field)),
        DomainError::DuplicateSource(p) => {
            format!("port {p} is listed more than once in traffic_mirror_sources")
        }
        DomainError::TargetWithoutAddress(t) => format!(
            "target port {t} has no fixed IP to send mirrored traffic to; give it a fixed_ips entry"
        ),
        other => other.to_string(),
    }
}
