//! The resources, as the service layer and the store see them. Faces render them in their own
//! shapes; the agent protocol carries the parts the data plane needs.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::ids::{FilterId, LoadBalancerId, PortId, ProjectId, RuleId, SessionId};
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
    /// Source ports in the order they were added.
    pub sources: Vec<PortId>,
    pub target: SessionTarget,
    pub vni: Vni,
    pub packet_length: PacketLength,
    pub priority: SessionPriority,
    pub enabled: bool,
    /// The mirror source type (`eni`).
    pub source_type: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
