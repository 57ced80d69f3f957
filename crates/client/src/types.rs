//! Wire types of the Huawei face, field for field: the resources the server answers with and
//! the options the operations take. Names are the JSON names (`traffic_mirror_target_id`, not
//! `target_id`) so that code reads like the API reference.
//!
//! Resources keep keys this crate does not know in `extra`, so that serialising a resource
//! gives back what the server sent (the CLI's `--output json` relies on this). Options skip
//! unset fields: an update sends only what the caller changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
pub use tmirror_model::{CaptureSide, Direction, Ethertype, RuleAction, TargetType};

/// Keys of a resource that this version of the client does not model.
pub type Extra = BTreeMap<String, Value>;

// ---------------------------------------------------------------------------------------------
// Sessions

/// A traffic mirror session (`traffic_mirror_session`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub project_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub traffic_mirror_filter_id: String,
    /// Source port ids, in the order they were added.
    #[serde(default)]
    pub traffic_mirror_sources: Vec<String>,
    pub traffic_mirror_target_id: String,
    pub traffic_mirror_target_type: TargetType,
    /// VNI of the VXLAN copies, 0–16777215.
    pub virtual_network_id: u32,
    /// Bytes copied of each packet, 1–1460.
    pub packet_length: u32,
    /// 1–32766, unique in the project; lower wins.
    pub priority: u32,
    pub enabled: bool,
    /// Mirror source type, `eni`.
    #[serde(rename = "type", default)]
    pub source_type: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Body of create session. `virtual_network_id` defaults to 1, `packet_length` to 96,
/// `enabled` to false on the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionCreate {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub traffic_mirror_filter_id: String,
    pub traffic_mirror_sources: Vec<String>,
    pub traffic_mirror_target_id: String,
    pub traffic_mirror_target_type: TargetType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_network_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet_length: Option<u32>,
    pub priority: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
}

/// Body of update session: only the fields to change. Sources change through
/// add-sources/remove-sources, not here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SessionUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_mirror_filter_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_mirror_target_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_mirror_target_type: Option<TargetType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_network_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet_length: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

impl SessionUpdate {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == SessionUpdate::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Filters and rules

/// A traffic mirror filter (`traffic_mirror_filter`) with its current rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    pub id: String,
    pub project_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub ingress_rules: Vec<Rule>,
    #[serde(default)]
    pub egress_rules: Vec<Rule>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(rename = "type", default)]
    pub source_type: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Body of create filter and update filter (only name and description are updatable; on
/// update both are optional, on create the server requires `name`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FilterCreate {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Body of update filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FilterUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A traffic mirror filter rule (`traffic_mirror_filter_rule`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub project_id: String,
    #[serde(default)]
    pub description: String,
    pub traffic_mirror_filter_id: String,
    pub direction: Direction,
    /// Absent means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_cidr_block: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_cidr_block: Option<String>,
    /// `from-to`, e.g. `80-200`; absent means any (and always for protocols without ports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_port_range: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_port_range: Option<String>,
    pub ethertype: Ethertype,
    /// As the caller spelled it (`tcp` or `TCP`): the server echoes the spelling, which
    /// Terraform relies on, so this is text rather than an enumeration.
    pub protocol: String,
    pub action: RuleAction,
    /// 1–65535, unique within the filter and direction; lower is matched first.
    pub priority: u32,
    pub created_at: String,
    pub updated_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Body of create rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleCreate {
    pub traffic_mirror_filter_id: String,
    pub direction: Direction,
    /// `tcp`, `udp`, `icmp`, `icmpv6` or `all`, any letter case.
    pub protocol: String,
    pub ethertype: Ethertype,
    pub action: RuleAction,
    pub priority: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_cidr_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_cidr_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_port_range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_port_range: Option<String>,
}

/// Body of update rule: only the fields to change. The direction and the filter are fixed at
/// creation. An empty string clears a CIDR or a port range.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ethertype: Option<Ethertype>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<RuleAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_cidr_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_cidr_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_port_range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_port_range: Option<String>,
}

impl RuleUpdate {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == RuleUpdate::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Ports

/// A v1 port (`port`): the ENI that sessions use as a source or an `eni` target.
///
/// Every field defaults when absent: real Huawei port objects omit many of them, and the two
/// `binding:` attributes are tmirror's own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Port {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub admin_state_up: bool,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIp>,
    pub device_id: String,
    pub device_owner: String,
    pub tenant_id: String,
    pub project_id: String,
    /// `ACTIVE`, `BUILD` or `DOWN`.
    pub status: String,
    pub security_groups: Vec<String>,
    pub allowed_address_pairs: Vec<Value>,
    pub extra_dhcp_opts: Vec<Value>,
    #[serde(rename = "binding:vnic_type")]
    pub vnic_type: String,
    /// The agent host that owns the interface.
    #[serde(rename = "binding:host_id")]
    pub host_id: String,
    #[serde(rename = "binding:profile")]
    pub binding_profile: BindingProfile,
    pub port_security_enabled: bool,
    /// Without a zone suffix, as Huawei's v1 API writes it: `2022-03-14T06:18:48`.
    pub created_at: String,
    pub updated_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One fixed IP of a port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

/// `binding:profile`: where the agent captures the port's traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BindingProfile {
    /// The host's name for the interface (tap device, veth end), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    pub capture_side: CaptureSide,
}

/// A fixed IP in a create-port body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FixedIpOption {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// tmirror has no IPAM: give the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

/// `binding:profile` in a port body. On update the server replaces the whole profile, so send
/// both fields (see the CLI, which merges with the current profile first).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BindingProfileOption {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_side: Option<CaptureSide>,
}

/// Body of create port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortCreate {
    pub network_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_ips: Option<Vec<FixedIpOption>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
    #[serde(rename = "binding:host_id", skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    #[serde(rename = "binding:profile", skip_serializing_if = "Option::is_none")]
    pub binding_profile: Option<BindingProfileOption>,
}

/// Body of update port: only the fields to change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(rename = "binding:host_id", skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    #[serde(rename = "binding:profile", skip_serializing_if = "Option::is_none")]
    pub binding_profile: Option<BindingProfileOption>,
}

impl PortUpdate {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == PortUpdate::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Lists

/// `page_info` of the v3 lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    /// Id of the first record of the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_marker: Option<String>,
    pub current_count: usize,
    /// Id of the last record; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// One page of a list. Port lists have neither `page_info` nor `request_id` (Huawei's v1 API).
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page_info: Option<PageInfo>,
    /// The body's `request_id` (v3 only).
    pub request_id: Option<String>,
}

/// Paging and filters of a list call.
///
/// Filters are exact matches on the API's query keys (`name`, `priority`,
/// `traffic_mirror_filter_id`, `binding:host_id`, `fixed_ips` with `ip_address=10.0.0.5`, ...);
/// several values of one key match any of them, different keys must all match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Items per page (server default and maximum for v3: 2000).
    pub limit: Option<u32>,
    /// Start after the record with this id.
    pub marker: Option<String>,
    /// `(key, value)` query filters, sent in canonical order.
    pub filters: Vec<(String, String)>,
}

impl ListOptions {
    /// No filters, server-default paging.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a filter; call again with the same key for "any of".
    pub fn filter(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.filters.push((key.into(), value.into()));
        self
    }

    /// Sets the page size.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sets the marker.
    pub fn marker(mut self, marker: impl Into<String>) -> Self {
        self.marker = Some(marker.into());
        self
    }

    /// The query pairs to send.
    pub(crate) fn query(&self) -> Vec<(String, String)> {
        let mut q = self.filters.clone();
        if let Some(l) = self.limit {
            q.push(("limit".into(), l.to_string()));
        }
        if let Some(m) = &self.marker {
            q.push(("marker".into(), m.clone()));
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Parsing and serialising again gives the same JSON: what `--output json` relies on.
    fn round_trip<T: Serialize + for<'de> Deserialize<'de>>(wire: Value) -> T {
        let parsed: T = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), wire);
        parsed
    }

    #[test]
    fn session_from_the_official_list_example_round_trips() {
        let s: Session = round_trip(json!({
            "id": "6cc12480-5a92-4aed-99fb-07c52cc98961", "name": "test-session",
            "description": "", "project_id": "7365fcd452924e398ec4cc1fe39c0d12",
            "traffic_mirror_filter_id": "b765ba87-c0b4-4f1a-9ec3-d5b1d1ddb137",
            "traffic_mirror_sources": ["6134900d-31a6-4b71-8453-dbca7f26982a"],
            "traffic_mirror_target_id": "029ab12b-dc38-4228-b146-44975bf55250",
            "traffic_mirror_target_type": "eni", "type": "eni",
            "virtual_network_id": 1, "packet_length": 96, "priority": 9, "enabled": true,
            "created_at": "2023-03-14T08:44:12Z", "updated_at": "2023-03-14T08:44:12Z",
            "some_future_field": {"kept": true}
        }));
        assert_eq!(s.traffic_mirror_target_type, TargetType::Eni);
        assert_eq!(s.extra["some_future_field"], json!({"kept": true}));
    }

    #[test]
    fn filter_with_rules_round_trips_and_omitted_rule_fields_stay_omitted() {
        let rule = json!({
            "id": "r1", "project_id": "p", "description": "", "traffic_mirror_filter_id": "f1",
            "direction": "ingress", "source_cidr_block": "192.168.0.0/24", "ethertype": "IPv4",
            "protocol": "ICMP", "action": "accept", "priority": 29,
            "created_at": "2023-02-23T06:57:39Z", "updated_at": "2023-02-23T06:57:39Z"
        });
        let f: Filter = round_trip(json!({
            "id": "f1", "project_id": "p", "name": "test1", "description": "description",
            "ingress_rules": [rule], "egress_rules": [], "type": "eni",
            "created_at": "2023-02-23T06:57:39Z", "updated_at": "2023-02-23T06:57:39Z"
        }));
        let r = &f.ingress_rules[0];
        assert_eq!(r.direction, Direction::Ingress);
        assert_eq!(r.protocol, "ICMP");
        assert_eq!(r.destination_port_range, None);
    }

    #[test]
    fn port_with_binding_attributes_round_trips() {
        let p: Port = round_trip(json!({
            "id": "p1", "name": "", "network_id": "n", "admin_state_up": true,
            "mac_address": "fa:16:3e:00:00:01",
            "fixed_ips": [{"subnet_id": "", "ip_address": "10.0.0.5"}],
            "device_id": "", "device_owner": "", "tenant_id": "t", "project_id": "t",
            "status": "DOWN", "security_groups": [], "allowed_address_pairs": [],
            "extra_dhcp_opts": [], "binding:vnic_type": "normal", "binding:host_id": "h1",
            "binding:profile": {"interface_name": "veth0", "capture_side": "guest"},
            "port_security_enabled": true,
            "created_at": "2022-03-14T06:18:48", "updated_at": "2022-03-14T06:18:48"
        }));
        assert_eq!(p.binding_profile.capture_side, CaptureSide::Guest);
        assert_eq!(p.host_id, "h1");
    }

    #[test]
    fn sparse_huawei_port_parses_with_defaults() {
        let p: Port = serde_json::from_value(json!({"id": "p1", "status": "ACTIVE"})).unwrap();
        assert_eq!(p.binding_profile.capture_side, CaptureSide::Host);
        assert!(p.fixed_ips.is_empty());
    }
}

/// Body of create elastic IP (Huawei EIP v1): an address from the operator's pool `pool`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EipCreate {
    /// The pool (Huawei `publicip.type`), e.g. `5_bgp`.
    pub pool: String,
    /// A free address of the pool; the pool's first free one without it.
    pub ip_address: Option<String>,
    /// The port to associate it with at once.
    pub port_id: Option<String>,
    /// Huawei `alias`.
    pub name: Option<String>,
    /// Bandwidth in Mbit/s, kept and not enforced.
    pub bandwidth_size: u32,
}

/// An elastic IP as Huawei's EIP v1 shows it (the fields the CLI uses).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Eip {
    pub id: String,
    /// The pool (Huawei `type`).
    #[serde(rename = "type")]
    pub pool: String,
    pub public_ip_address: String,
    pub status: String,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub port_id: Option<String>,
    #[serde(default)]
    pub private_ip_address: Option<String>,
    #[serde(default)]
    pub bandwidth_size: u32,
    #[serde(default)]
    pub create_time: String,
}
