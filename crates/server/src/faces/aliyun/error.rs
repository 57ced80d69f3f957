//! Alibaba error codes (the full table is in `docs/aliyun.md`).

use axum::http::StatusCode;
use tmirror_model::{DomainError, Field, Quota, ResourceKind};

use super::ids;
use serde_json::json;

use crate::http::{ApiError, ErrorContext, ErrorFormat};
use crate::service::ServiceError;
use crate::throttle::{Scope, Throttled};

/// Alibaba's error bodies: `{"RequestId", "HostId", "Code", "Message", "Recommend"}`.
pub const FORMAT: ErrorFormat = ErrorFormat::new("aliyun", render);

fn render(e: &ApiError, c: &ErrorContext<'_>) -> serde_json::Value {
    render_for("Vpc", e, c)
}

/// The same bodies for the SLB (2014-05-15) actions, whose troubleshooting link names SLB.
pub const SLB_FORMAT: ErrorFormat = ErrorFormat::new("aliyun-slb", render_slb);

fn render_slb(e: &ApiError, c: &ErrorContext<'_>) -> serde_json::Value {
    render_for("Slb", e, c)
}

fn render_for(product: &str, e: &ApiError, c: &ErrorContext<'_>) -> serde_json::Value {
    json!({
        "RequestId": c.request_id, "HostId": c.host, "Code": e.code, "Message": e.message,
        "Recommend": format!(
            "https://api.aliyun.com/troubleshoot?q={}&product={product}&requestId={}",
            e.code, c.request_id
        ),
    })
}

/// An error answer in Alibaba's format.
pub fn err(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message, FORMAT)
}

/// HTTP 400 with `code`.
pub fn bad(code: &str, message: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, code, message)
}

pub fn missing(name: &str) -> ApiError {
    bad(
        "MissingParameter",
        format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied."),
    )
}

/// A parameter of the wrong type or shape.
pub fn invalid(name: &str, why: impl std::fmt::Display) -> ApiError {
    bad(
        "InvalidParameter",
        format!("The specified parameter \"{name}\" is not valid: {why}"),
    )
}

/// A parameter whose value is out of range or breaks a rule: `IllegalParam.<Name>`, where
/// `<Name>` is the parameter's own name without list indices (`IngressRules.2.Priority` →
/// `IllegalParam.Priority`).
pub fn illegal(name: &str, why: impl std::fmt::Display) -> ApiError {
    let base = name.rsplit('.').next().unwrap_or(name);
    bad(
        &format!("IllegalParam.{base}"),
        format!("The specified parameter \"{name}\" is not valid: {why}"),
    )
}

pub fn internal() -> ApiError {
    err(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        "The request processing has failed due to some unknown error; it may be retried.",
    )
}

/// `ResourceNotFound.<Kind>` for an id in the face's spelling.
pub fn not_found(kind: ResourceKind, id: &str) -> ApiError {
    let (code, what) = match kind {
        ResourceKind::Session => (
            "ResourceNotFound.TrafficMirrorSession",
            "traffic mirror session",
        ),
        ResourceKind::Filter => (
            "ResourceNotFound.TrafficMirrorFilter",
            "traffic mirror filter",
        ),
        ResourceKind::Rule => (
            "ResourceNotFound.TrafficMirrorRule",
            "traffic mirror filter rule",
        ),
        ResourceKind::Port => ("ResourceNotFound.NetworkInterface", "network interface"),
        // SLB's own code for an unknown load balancer.
        ResourceKind::LoadBalancer => ("InvalidLoadBalancerId.NotFound", "load balancer"),
        ResourceKind::Member => ("ResourceNotFound.BackendServer", "backend server"),
        ResourceKind::Eip => ("InvalidAllocationId.NotFound", "elastic IP"),
    };
    bad(code, format!("The specified {what} {id} does not exist."))
}

/// A canonical id in a service message, in the face's spelling.
fn shown(kind: ResourceKind, canonical: &str) -> String {
    match canonical.parse::<uuid::Uuid>() {
        Ok(u) => ids::show(kind, u),
        Err(_) => canonical.to_owned(),
    }
}

/// The face's name of a field.
fn field_name(field: Field) -> &'static str {
    match field {
        Field::Protocol => "Protocol",
        Field::SourceCidr => "SourceCidrBlock",
        Field::DestinationCidr => "DestinationCidrBlock",
        Field::SourcePortRange => "SourcePortRange",
        Field::DestinationPortRange => "DestinationPortRange",
        // Ports are created through the Huawei face; the name is for completeness.
        Field::InterfaceName => "NetworkInterfaceName",
        Field::Marker => "NextToken",
        // Agents report through the agent API; named for completeness.
        Field::AppliedGeneration => "AppliedGeneration",
        Field::NetworkId => "VSwitchId",
        Field::FixedIp => "PrivateIpAddress",
        Field::Binding => "InstanceId",
        Field::HostId => "HostId",
        Field::Name => "Name",
        Field::MemberAddress => "BackendServers.ServerIp",
        Field::MemberPort => "BackendServers.Port",
        Field::Members => "BackendServers",
        Field::HealthCheck => "HealthCheckConnectTimeout",
        Field::ListenerPort => "ListenerPort",
        // Parts of the ELB face's listener and pool: never refused through this face.
        Field::DefaultPool => "DefaultPoolId",
        Field::Listener => "ListenerId",
    }
}

/// The code of a credential's throttling answer.
pub const THROTTLED_USER: &str = "Throttling.User";

/// Alibaba's throttling answers, HTTP 400 as its API references list them: `Throttling.User`
/// for a credential's bucket, `Throttling` for an address's.
pub fn throttled(t: &Throttled) -> ApiError {
    match t.scope {
        Scope::Key => bad(
            THROTTLED_USER,
            "Request was denied due to user flow control.",
        ),
        Scope::Address | Scope::AuthFailures => bad(
            "Throttling",
            "Request was denied due to request throttling.",
        ),
    }
    .retry_after(t.retry_after_secs())
}

/// The code of the retryable answer to a write that lost its races with concurrent writers.
const BUSY: &str = "ServiceUnavailable";

/// Whether `e` is that answer (the face runs the action again while the service allows).
pub fn is_busy(e: &ApiError) -> bool {
    e.code == BUSY
}

/// Maps a service error to Alibaba's code; every domain error is HTTP 400, as the
/// CreateTrafficMirrorSession API page documents for its codes.
pub fn from_service(e: ServiceError) -> ApiError {
    let d = match e {
        ServiceError::Domain(d) => d,
        // Lost its races with concurrent writers (possibly on other servers): the client may
        // send it again, and Terraform does on this code.
        ServiceError::Busy => {
            return err(
                StatusCode::SERVICE_UNAVAILABLE,
                BUSY,
                "The request conflicted with concurrent changes and was not applied; send it again.",
            )
            .retry_after(1);
        }
        ServiceError::Store(e) => {
            tracing::error!(error = ?e, "store failure");
            return internal();
        }
    };
    match d {
        DomainError::Invalid { field, message } => illegal(field_name(field), message),
        DomainError::NotFound { kind, id } => not_found(kind, &shown(kind, &id)),
        DomainError::DuplicateSource(p) => bad(
            "DuplicatedParam.SourceInstanceIds",
            format!("TrafficMirrorSourceIds lists {} more than once.", shown(ResourceKind::Port, &p)),
        ),
        DomainError::SourceIsTarget(p) => bad(
            "OperationDenied.DuplicateRole",
            format!(
                "The network interface {} cannot be a traffic mirror source and a traffic mirror target at the same time.",
                shown(ResourceKind::Port, &p)
            ),
        ),
        DomainError::SourceAlreadyPresent(p) => bad(
            "OperationDenied.SourceAlreadyInSession",
            format!("The network interface {} is already a source of this traffic mirror session.", shown(ResourceKind::Port, &p)),
        ),
        DomainError::SourceNotPresent(p) => bad(
            "OperationDenied.SourceNotInSession",
            format!("The network interface {} is not a source of this traffic mirror session.", shown(ResourceKind::Port, &p)),
        ),
        DomainError::QuotaExceeded { quota, limit } => {
            let code = match quota {
                Quota::SourcesPerSession => "QuotaExceeded.SourceNumPerSession",
                Quota::SessionsPerSource => "QuotaExceeded.NetworkInterfaceRelatedSession",
                Quota::RulesPerDirection => "QuotaExceeded.RuleNumPerFilter",
                // CreateTrafficMirrorSession's own code for "too many sessions".
                Quota::SessionsPerProject => "QuotaExceeded.SessionNum",
                // Undocumented: named like the session's.
                Quota::FiltersPerProject => "QuotaExceeded.FilterNum",
                // Ports are created through the Huawei face; named for completeness.
                Quota::PortsPerProject => "QuotaExceeded.NetworkInterfaceNum",
                // Undocumented for tmirror's limits: named like the others.
                Quota::LoadBalancersPerProject => "QuotaExceeded.LoadBalancerNum",
                Quota::MembersPerLoadBalancer => "QuotaExceeded.BackendServerNum",
                // EIPs are allocated through the Huawei face; Alibaba's AllocateEipAddress code.
                Quota::EipsPerProject => "QuotaExceeded.Eip",
            };
            bad(code, format!("Quota exceeded: at most {limit} {quota}."))
        }
        DomainError::SessionPriorityInUse(p) => bad(
            "IllegalParam.Priority",
            format!("The priority {p} is already used by another traffic mirror session of this account."),
        ),
        DomainError::RulePriorityInUse { priority, direction } => bad(
            "IllegalParam.RulePriority",
            format!("The priority {priority} is already used by another {direction} rule of this traffic mirror filter."),
        ),
        DomainError::InUse { kind, id, by } => bad(
            "DependencyViolation.TrafficMirrorSession",
            format!(
                "The {kind} {} is used by the traffic mirror session {}; delete or change the session first.",
                shown(kind, &id),
                shown(ResourceKind::Session, &by)
            ),
        ),
        DomainError::TargetWithoutAddress(p) => bad(
            "IncorrectStatus.NetworkInterface",
            format!(
                "The network interface {} has no private IP address to send mirrored traffic to.",
                shown(ResourceKind::Port, &p)
            ),
        ),
        DomainError::Conflict(m) => bad("OperationConflict", m),
        DomainError::UnknownRecord { kind, id } => err(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("The specified {kind} {id} does not exist."),
        ),
        // What RAM answers a user whose policy does not allow the action.
        DomainError::Forbidden(m) => err(
            StatusCode::FORBIDDEN,
            "Forbidden.RAM",
            format!("User not authorized to operate on the specified resource: {m}."),
        ),
    }
}
