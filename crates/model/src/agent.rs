//! The agent protocol's documents (see `docs/agent-protocol.md`): what the control plane tells
//! a host agent to mirror, and what the agent reports back.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ids::{EipId, PortId, RuleId, SessionId};
use crate::resources::RuleMatch;
use crate::values::*;

/// Bumped on any incompatible change to these documents.
pub const AGENT_PROTOCOL_VERSION: u32 = 1;

/// Everything one host must mirror, as one document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredState {
    pub protocol_version: u32,
    pub host_id: String,
    /// The control plane's revision this document reflects (at least): rising, never reused.
    pub generation: u64,
    /// SHA-256 of the `interfaces` JSON (followed by the `addresses` JSON when there are
    /// any): equal hashes mean nothing to change.
    pub content_hash: String,
    /// The host's mirror sources, each with its enabled sessions.
    pub interfaces: Vec<InterfacePlan>,
    /// The elastic IPs this host is the gateway of, for `eip` sessions. A field of its own,
    /// absent when empty: an agent that does not know it ignores it, and so never captures a
    /// whole external interface for an `eip` session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<AddressPlan>,
}

/// One elastic IP on a gateway host's external interface (`docs/eips.md`): only the frames
/// to or from `address` are captured, selected in the kernel. Directions are the EIP's:
/// `ingress` is what the interface receives (the internet sending to the EIP), `egress` what
/// it sends (from the EIP).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPlan {
    pub eip_id: EipId,
    /// The public address.
    pub address: IpAddr,
    /// The gateway's external interface (the EIP's pool binding).
    pub interface_name: String,
    /// Enabled sessions with this EIP as a source, in ascending session priority.
    pub sessions: Vec<SessionPlan>,
}

/// One source interface on the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfacePlan {
    pub port_id: PortId,
    /// The Linux interface to capture.
    pub interface_name: String,
    /// `host`: the hypervisor end of the VM's interface, directions flipped.
    pub capture_side: CaptureSide,
    /// Enabled sessions with this port as a source, in ascending session priority.
    pub sessions: Vec<SessionPlan>,
}

/// One session as the data plane needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPlan {
    pub session_id: SessionId,
    pub priority: SessionPriority,
    pub vni: Vni,
    pub packet_length: PacketLength,
    /// Where copies go (UDP 4789); the unspecified address when the target is a load
    /// balancer, whose `members` say where.
    pub target_ip: IpAddr,
    /// In ascending rule priority.
    pub ingress_rules: Vec<RulePlan>,
    pub egress_rules: Vec<RulePlan>,
    /// The target load balancer's members that may take flows (enabled, positive weight),
    /// with the control plane's health verdict: each flow's copies go to one of them, chosen
    /// by weighted rendezvous hashing (`tmirror_packet::member`). Empty for a port target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberPlan>,
}

/// One member of a load-balanced target as the data plane needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberPlan {
    pub address: IpAddr,
    /// The UDP port its copies go to.
    pub port: u16,
    /// 1–100.
    pub weight: u8,
    /// The health checker's verdict (true when the load balancer has no monitor).
    pub healthy: bool,
}

/// One filter rule as the data plane needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulePlan {
    pub rule_id: RuleId,
    pub priority: RulePriority,
    pub action: RuleAction,
    #[serde(flatten)]
    pub matches: RuleMatch,
}

/// An agent's registration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentHello {
    /// The agent's version, for operators.
    #[serde(default)]
    pub version: String,
    /// Interfaces present on the host (unbound ports whose interface is here are mirrored too).
    #[serde(default)]
    pub interfaces: Vec<String>,
}

/// An agent's status report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    /// The generation of the desired state now in effect on the host.
    pub applied_generation: u64,
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Counters, per session and per interface, as the agent exports them.
    #[serde(default)]
    pub counters: serde_json::Value,
}

/// What the control plane shows of an agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    pub host_id: String,
    pub registered_at: String,
    pub last_seen: String,
    /// Seen within the last minute and a half (three long-poll periods).
    pub connected: bool,
    pub applied_generation: u64,
    pub interfaces: Vec<String>,
    pub counters: serde_json::Value,
}
