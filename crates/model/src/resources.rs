//! The resources, as the service layer and the store see them. Faces render them in their own
//! shapes; the agent protocol carries the parts the data plane needs.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::ids::{EipId, FilterId, LoadBalancerId, PortId, ProjectId, RuleId, SessionId};
use crate::values::*;

/// A fixed IP of a port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    /// The subnet the address belongs to; tmirror keeps it as given (there is no IPAM).
    pub subnet_id: String,
    pub ip_address: IpAddr,
}

/// Data-plane binding of a port: where the agent finds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingProfile {
    /// The host interface to capture; `None` means the Neutron convention
    /// `tap` + the first 11 characters of the port id.
    pub interface_name: Option<String>,
    pub capture_side: CaptureSide,
}

/// A port (elastic network interface): what sessions use as sources and `eni` targets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub id: PortId,
    pub project_id: ProjectId,
    pub name: String,
    pub network_id: String,
    pub admin_state_up: bool,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIp>,
    pub device_id: String,
    pub device_owner: String,
    pub status: String,
    pub security_groups: Vec<String>,
    /// `binding:host_id`: the name of the agent host the port lives on ("" when unbound).
    pub host_id: String,
    pub binding_profile: BindingProfile,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Port {
    /// The host interface the agent captures for this port.
    pub fn interface_name(&self) -> String {
        match &self.binding_profile.interface_name {
            Some(name) => name.clone(),
            None => format!("tap{}", &self.id.to_string()[..11]),
        }
    }

    /// The address copies are sent to when this port is an `eni` target.
    pub fn primary_ip(&self) -> Option<IpAddr> {
        self.fixed_ips.first().map(|f| f.ip_address)
    }
}

/// A traffic mirror filter. Its rules are separate resources.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub id: FilterId,
    pub project_id: ProjectId,
    pub name: String,
    pub description: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A filter together with its rules, each direction in ascending priority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterWithRules {
    pub filter: Filter,
    pub ingress_rules: Vec<FilterRule>,
    pub egress_rules: Vec<FilterRule>,
}

/// What a rule matches; shared by the stored rule and the compiled data-plane rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleMatch {
    pub ethertype: Ethertype,
    pub protocol: Protocol,
    /// `None` matches any source address of the ethertype.
    pub source_cidr: Option<IpNet>,
    pub destination_cidr: Option<IpNet>,
    /// Only for TCP and UDP; `None` matches any port.
    pub source_port_range: Option<PortRange>,
    pub destination_port_range: Option<PortRange>,
}

impl RuleMatch {
    /// Every packet of `ethertype`: any protocol, address and port.
    pub fn any(ethertype: Ethertype) -> RuleMatch {
        RuleMatch {
            ethertype,
            protocol: Protocol::All,
            source_cidr: None,
            destination_cidr: None,
            source_port_range: None,
            destination_port_range: None,
        }
    }
}

/// A traffic mirror filter rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRule {
    pub id: RuleId,
    pub project_id: ProjectId,
    pub filter_id: FilterId,
    pub direction: Direction,
    pub priority: RulePriority,
    pub action: RuleAction,
    #[serde(flatten)]
    pub matches: RuleMatch,
    /// The protocol exactly as the caller spelled it (Terraform expects its own case back).
    pub protocol_spelling: String,
    pub description: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a session sends its copies to: a typed choice, so that a port id can never be taken
/// for a load balancer's or the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum SessionTarget {
    /// A port (`eni`): copies go to its first fixed IP.
    Port(PortId),
    /// A load balancer (`elb`, Alibaba `SLB`): copies of each flow go to one of its members.
    LoadBalancer(LoadBalancerId),
}

impl SessionTarget {
    /// The target's kind, as the faces spell it.
    pub fn kind(&self) -> TargetType {
        match self {
            SessionTarget::Port(_) => TargetType::Eni,
            SessionTarget::LoadBalancer(_) => TargetType::Elb,
        }
    }

    /// The target's canonical id (a UUID, whatever the kind).
    pub fn id(&self) -> uuid::Uuid {
        match self {
            SessionTarget::Port(p) => p.0,
            SessionTarget::LoadBalancer(l) => l.0,
        }
    }

    /// The target port, when the target is one.
    pub fn port(&self) -> Option<PortId> {
        match self {
            SessionTarget::Port(p) => Some(*p),
            SessionTarget::LoadBalancer(_) => None,
        }
    }

    /// Builds a target from its kind and canonical id.
    pub fn of_kind(kind: TargetType, id: uuid::Uuid) -> Self {
        match kind {
            TargetType::Eni => SessionTarget::Port(PortId(id)),
            TargetType::Elb => SessionTarget::LoadBalancer(LoadBalancerId(id)),
        }
    }
}

/// A traffic mirror session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub project_id: ProjectId,
    pub name: String,
    pub description: String,
    pub filter_id: FilterId,
    /// The mirrored sources, all of one type, in the order they were added.
    pub sources: SessionSources,
    pub target: SessionTarget,
    pub vni: Vni,
    pub packet_length: PacketLength,
    pub priority: SessionPriority,
    pub enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A session's sources: ports or elastic IPs, never both (the session's `type`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "ids", rename_all = "lowercase")]
pub enum SessionSources {
    Eni(Vec<PortId>),
    Eip(Vec<EipId>),
}

impl Default for SessionSources {
    fn default() -> Self {
        SessionSources::empty(SourceType::Eni)
    }
}

impl SessionSources {
    /// No sources of `source_type`.
    pub fn empty(source_type: SourceType) -> Self {
        match source_type {
            SourceType::Eni => SessionSources::Eni(Vec::new()),
            SourceType::Eip => SessionSources::Eip(Vec::new()),
        }
    }

    /// The session's `type`.
    pub fn source_type(&self) -> SourceType {
        match self {
            SessionSources::Eni(_) => SourceType::Eni,
            SessionSources::Eip(_) => SourceType::Eip,
        }
    }

    /// The source ports; none for an `eip` session.
    pub fn ports(&self) -> &[PortId] {
        match self {
            SessionSources::Eni(ports) => ports,
            SessionSources::Eip(_) => &[],
        }
    }

    /// The source elastic IPs; none for an `eni` session.
    pub fn eips(&self) -> &[EipId] {
        match self {
            SessionSources::Eni(_) => &[],
            SessionSources::Eip(eips) => eips,
        }
    }

    /// The sources' ids as text, in order.
    pub fn ids(&self) -> Vec<String> {
        match self {
            SessionSources::Eni(ids) => ids.iter().map(ToString::to_string).collect(),
            SessionSources::Eip(ids) => ids.iter().map(ToString::to_string).collect(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SessionSources::Eni(ids) => ids.len(),
            SessionSources::Eip(ids) => ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sources' ids, untyped, in order.
    pub fn raw(&self) -> Vec<uuid::Uuid> {
        match self {
            SessionSources::Eni(ids) => ids.iter().map(|p| p.0).collect(),
            SessionSources::Eip(ids) => ids.iter().map(|e| e.0).collect(),
        }
    }

    /// `ids` read as sources of `source_type`.
    pub fn from_raw(source_type: SourceType, ids: impl IntoIterator<Item = uuid::Uuid>) -> Self {
        match source_type {
            SourceType::Eni => SessionSources::Eni(ids.into_iter().map(PortId).collect()),
            SourceType::Eip => SessionSources::Eip(ids.into_iter().map(EipId).collect()),
        }
    }

    /// Whether `id` is one of the sources.
    pub fn contains(&self, id: uuid::Uuid) -> bool {
        match self {
            SessionSources::Eni(ids) => ids.iter().any(|p| p.0 == id),
            SessionSources::Eip(ids) => ids.iter().any(|e| e.0 == id),
        }
    }

    /// Appends `ids` (of this type).
    pub fn extend(&mut self, ids: impl IntoIterator<Item = uuid::Uuid>) {
        match self {
            SessionSources::Eni(v) => v.extend(ids.into_iter().map(PortId)),
            SessionSources::Eip(v) => v.extend(ids.into_iter().map(EipId)),
        }
    }

    /// Keeps the sources whose id `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(uuid::Uuid) -> bool) {
        match self {
            SessionSources::Eni(v) => v.retain(|p| keep(p.0)),
            SessionSources::Eip(v) => v.retain(|e| keep(e.0)),
        }
    }
}
