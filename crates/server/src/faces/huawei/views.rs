//! Response shapes of the Huawei face: field names, JSON types and omissions as the SDK, the
//! API Explorer examples and Terraform expect.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tmirror_model::*;

/// `2023-02-23T06:57:39Z`.
pub fn timestamp(t: Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp(t.0)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .expect("UTC timestamps format as RFC 3339")
}

/// Ports show times without a zone, like Huawei's v1 API: `2022-03-14T06:18:48`.
pub fn port_timestamp(t: Timestamp) -> String {
    timestamp(t).trim_end_matches('Z').to_owned()
}

#[derive(Serialize)]
pub struct SessionView {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub traffic_mirror_filter_id: String,
    pub traffic_mirror_sources: Vec<String>,
    pub traffic_mirror_target_id: String,
    pub traffic_mirror_target_type: &'static str,
    pub virtual_network_id: u32,
    pub packet_length: u16,
    pub priority: u16,
    pub enabled: bool,
    #[serde(rename = "type")]
    pub source_type: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Session> for SessionView {
    fn from(s: &Session) -> Self {
        SessionView {
            id: s.id.to_string(),
            project_id: s.project_id.to_string(),
            name: s.name.clone(),
            description: s.description.clone(),
            traffic_mirror_filter_id: s.filter_id.to_string(),
            traffic_mirror_sources: s.sources.iter().map(|p| p.to_string()).collect(),
            traffic_mirror_target_id: s.target_id.to_string(),
            traffic_mirror_target_type: s.target_type.as_str(),
            virtual_network_id: s.vni.get(),
            packet_length: s.packet_length.get(),
            priority: s.priority.get(),
            enabled: s.enabled,
            source_type: s.source_type.clone(),
            created_at: timestamp(s.created_at),
            updated_at: timestamp(s.updated_at),
        }
    }
}

#[derive(Serialize)]
pub struct RuleView {
    pub id: String,
    pub project_id: String,
    pub description: String,
    pub traffic_mirror_filter_id: String,
    pub direction: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_cidr_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_cidr_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_port_range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_port_range: Option<String>,
    pub ethertype: &'static str,
    pub protocol: String,
    pub action: &'static str,
    pub priority: u32,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&FilterRule> for RuleView {
    fn from(r: &FilterRule) -> Self {
        let m = &r.matches;
        RuleView {
            id: r.id.to_string(),
            project_id: r.project_id.to_string(),
            description: r.description.clone(),
            traffic_mirror_filter_id: r.filter_id.to_string(),
            direction: r.direction.as_str(),
            source_cidr_block: m.source_cidr.map(|c| c.to_string()),
            destination_cidr_block: m.destination_cidr.map(|c| c.to_string()),
            source_port_range: m.source_port_range.map(|p| p.to_string()),
            destination_port_range: m.destination_port_range.map(|p| p.to_string()),
            ethertype: m.ethertype.as_str(),
            protocol: r.protocol_spelling.clone(),
            action: r.action.as_str(),
            priority: r.priority.get(),
            created_at: timestamp(r.created_at),
            updated_at: timestamp(r.updated_at),
        }
    }
}

#[derive(Serialize)]
pub struct FilterView {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub ingress_rules: Vec<RuleView>,
    pub egress_rules: Vec<RuleView>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(rename = "type")]
    pub source_type: &'static str,
}

impl From<&FilterWithRules> for FilterView {
    fn from(f: &FilterWithRules) -> Self {
        FilterView {
            id: f.filter.id.to_string(),
            project_id: f.filter.project_id.to_string(),
            name: f.filter.name.clone(),
            description: f.filter.description.clone(),
            ingress_rules: f.ingress_rules.iter().map(RuleView::from).collect(),
            egress_rules: f.egress_rules.iter().map(RuleView::from).collect(),
            created_at: timestamp(f.filter.created_at),
            updated_at: timestamp(f.filter.updated_at),
            source_type: "eni",
        }
    }
}

#[derive(Serialize)]
pub struct FixedIpView {
    pub subnet_id: String,
    pub ip_address: String,
}

#[derive(Serialize)]
pub struct BindingProfileView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    pub capture_side: CaptureSide,
}

#[derive(Serialize)]
pub struct PortView {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub admin_state_up: bool,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIpView>,
    pub device_id: String,
    pub device_owner: String,
    pub tenant_id: String,
    pub project_id: String,
    pub status: String,
    pub security_groups: Vec<String>,
    pub allowed_address_pairs: Vec<serde_json::Value>,
    pub extra_dhcp_opts: Vec<serde_json::Value>,
    #[serde(rename = "binding:vnic_type")]
    pub vnic_type: &'static str,
    #[serde(rename = "binding:host_id")]
    pub host_id: String,
    #[serde(rename = "binding:profile")]
    pub binding_profile: BindingProfileView,
    pub port_security_enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Port> for PortView {
    fn from(p: &Port) -> Self {
        PortView {
            id: p.id.to_string(),
            name: p.name.clone(),
            network_id: p.network_id.clone(),
            admin_state_up: p.admin_state_up,
            mac_address: p.mac_address.clone(),
            fixed_ips: p
                .fixed_ips
                .iter()
                .map(|f| FixedIpView {
                    subnet_id: f.subnet_id.clone(),
                    ip_address: f.ip_address.to_string(),
                })
                .collect(),
            device_id: p.device_id.clone(),
            device_owner: p.device_owner.clone(),
            tenant_id: p.project_id.to_string(),
            project_id: p.project_id.to_string(),
            status: p.status.clone(),
            security_groups: p.security_groups.clone(),
            allowed_address_pairs: Vec::new(),
            extra_dhcp_opts: Vec::new(),
            vnic_type: "normal",
            host_id: p.host_id.clone(),
            binding_profile: BindingProfileView {
                interface_name: p.binding_profile.interface_name.clone(),
                capture_side: p.binding_profile.capture_side,
            },
            port_security_enabled: true,
            created_at: port_timestamp(p.created_at),
            updated_at: port_timestamp(p.updated_at),
        }
    }
}

/// `page_info` of the v3 lists.
#[derive(Serialize)]
pub struct PageInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_marker: Option<String>,
    pub current_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

impl PageInfo {
    /// Markers are the first and last ids of the page; `next_marker` only when more follow.
    pub fn new(ids: &[String], more: bool) -> Self {
        PageInfo {
            previous_marker: ids.first().cloned(),
            current_count: ids.len(),
            next_marker: if more { ids.last().cloned() } else { None },
        }
    }
}
