//! Domain errors: what the service layer refuses and why. Each face maps a variant to its own
//! status code, error code and wording; the message here is the user-facing explanation.

use std::fmt;

/// The kinds of resource the service knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    Session,
    Filter,
    Rule,
    Port,
    LoadBalancer,
    /// A member of a load balancer.
    Member,
    Eip,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceKind::Session => "traffic mirror session",
            ResourceKind::Filter => "traffic mirror filter",
            ResourceKind::Rule => "traffic mirror filter rule",
            ResourceKind::Port => "port",
            ResourceKind::LoadBalancer => "load balancer",
            ResourceKind::Member => "load balancer member",
            ResourceKind::Eip => "elastic IP",
        })
    }
}

/// A configurable limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quota {
    SourcesPerSession,
    SessionsPerSource,
    RulesPerDirection,
    /// Traffic mirror sessions one project may hold.
    SessionsPerProject,
    /// Traffic mirror filters one project may hold.
    FiltersPerProject,
    /// Ports one project may hold.
    PortsPerProject,
    /// Load balancers one project may hold.
    LoadBalancersPerProject,
    /// Members one load balancer may hold.
    MembersPerLoadBalancer,
    /// Elastic IPs one project may hold.
    EipsPerProject,
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Quota::SourcesPerSession => "sources per session",
            Quota::SessionsPerSource => "sessions per source port",
            Quota::RulesPerDirection => "rules per direction of a filter",
            Quota::SessionsPerProject => "traffic mirror sessions per project",
            Quota::FiltersPerProject => "traffic mirror filters per project",
            Quota::PortsPerProject => "ports per project",
            Quota::LoadBalancersPerProject => "load balancers per project",
            Quota::MembersPerLoadBalancer => "members per load balancer",
            Quota::EipsPerProject => "elastic IPs per project",
        })
    }
}

/// A request field the service found wrong. Named once here; each face spells it its own way
/// (`source_cidr_block` in the Huawei face, `SourceCidrBlock` in the Alibaba face).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// A rule's protocol.
    Protocol,
    /// A rule's source CIDR block.
    SourceCidr,
    /// A rule's destination CIDR block.
    DestinationCidr,
    /// A rule's source port range.
    SourcePortRange,
    /// A rule's destination port range.
    DestinationPortRange,
    /// A port's host interface name (its binding profile).
    InterfaceName,
    /// A list's position marker (Huawei `marker`, Alibaba `NextToken`).
    Marker,
    /// The generation an agent reports having applied.
    AppliedGeneration,
    /// A port's network.
    NetworkId,
    /// A port's fixed IP address.
    FixedIp,
    /// A port's host binding (`binding:host_id`, `binding:profile`).
    Binding,
    /// An agent host's id.
    HostId,
    /// A record's name.
    Name,
    /// A load balancer member's address.
    MemberAddress,
    /// A load balancer member's port.
    MemberPort,
    /// The members of one batch call.
    Members,
    /// A load balancer's health check settings.
    HealthCheck,
    /// The port a load balancer's listener is given.
    ListenerPort,
    /// The pool a load balancer's listener sends to by default.
    DefaultPool,
    /// The listener a load balancer's part is named by.
    Listener,
}

impl fmt::Display for Field {
    // Plain words, for logs; the faces render their own spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Protocol => "protocol",
            Field::SourceCidr => "source CIDR block",
            Field::DestinationCidr => "destination CIDR block",
            Field::SourcePortRange => "source port range",
            Field::DestinationPortRange => "destination port range",
            Field::InterfaceName => "interface name",
            Field::Marker => "marker",
            Field::AppliedGeneration => "applied generation",
            Field::NetworkId => "network",
            Field::FixedIp => "fixed IP address",
            Field::Binding => "host binding",
            Field::HostId => "host id",
            Field::Name => "name",
            Field::MemberAddress => "member address",
            Field::MemberPort => "member port",
            Field::Members => "members",
            Field::HealthCheck => "health check",
            Field::ListenerPort => "listener port",
            Field::DefaultPool => "default pool",
            Field::Listener => "listener",
        })
    }
}

/// Why the service refused a request. Nothing was changed when one of these is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field is missing, malformed or out of range.
    #[error("{field}: {message}")]
    Invalid { field: Field, message: String },
    /// The resource does not exist in the caller's project.
    #[error("{kind} {id} does not exist")]
    NotFound { kind: ResourceKind, id: String },
    /// The same source port is listed twice.
    #[error("port {0} is listed more than once among the sources")]
    DuplicateSource(String),
    /// A port would be both source and target of one session.
    #[error("port {0} cannot be both a source and the target of a session")]
    SourceIsTarget(String),
    /// Add-sources of a port that is already a source.
    #[error("port {0} is already a source of this session")]
    SourceAlreadyPresent(String),
    /// Remove-sources of a port that is not a source.
    #[error("port {0} is not a source of this session")]
    SourceNotPresent(String),
    /// A quota would be exceeded.
    #[error("quota exceeded: at most {limit} {quota}")]
    QuotaExceeded { quota: Quota, limit: u32 },
    /// Another session of the project has this priority.
    #[error("priority {0} is already used by another traffic mirror session of this project")]
    SessionPriorityInUse(u16),
    /// Another rule of the filter and direction has this priority.
    #[error("priority {priority} is already used by another {direction} rule of this filter")]
    RulePriorityInUse {
        priority: u32,
        direction: &'static str,
    },
    /// The resource is still referenced and cannot be deleted.
    #[error("{kind} {id} is in use by traffic mirror session {by}; delete the session or change it first")]
    InUse {
        kind: ResourceKind,
        id: String,
        by: String,
    },
    /// The target port has no address to send copies to.
    #[error("target port {0} has no fixed IP to send mirrored traffic to")]
    TargetWithoutAddress(String),
    /// A record of the operator's (a project, credential, host or network) does not exist, or
    /// is not the caller's to see.
    #[error("{kind} {id} does not exist")]
    UnknownRecord { kind: &'static str, id: String },
    /// The caller's role does not allow the request; the message says what was refused.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state in another way.
    #[error("{0}")]
    Conflict(String),
}

impl DomainError {
    /// Shorthand for [`DomainError::Invalid`].
    pub fn invalid(field: Field, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// Shorthand for [`DomainError::NotFound`].
    pub fn not_found(kind: ResourceKind, id: impl fmt::Display) -> Self {
        DomainError::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}
