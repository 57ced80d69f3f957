//! Response shapes of the Huawei face: field names, JSON types and omissions as the SDK, the
//! API Explorer examples and Terraform expect.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tmirror_model::*;
use utoipa::ToSchema;

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

/// A traffic mirror session.
#[derive(Serialize, ToSchema)]
#[schema(as = TrafficMirrorSession)]
pub struct SessionView {
    /// Session id (UUID).
    pub id: String,
    /// Project id (32 lowercase hex characters).
    pub project_id: String,
    /// 1–64 letters (Chinese included), digits, `_`, `-`, `.`.
    pub name: String,
    /// 0–255 characters without `<` or `>`; `""` when unset.
    pub description: String,
    /// The traffic mirror filter that selects what is mirrored.
    pub traffic_mirror_filter_id: String,
    /// Source port (ENI) ids, in the order they were added; at most 10.
    pub traffic_mirror_sources: Vec<String>,
    /// The target: a port id (`eni`) or a load balancer id (`elb`).
    pub traffic_mirror_target_id: String,
    /// `eni` or `elb`.
    #[schema(example = "eni")]
    pub traffic_mirror_target_type: &'static str,
    /// VXLAN network identifier, 0–16777215.
    #[schema(minimum = 0, maximum = 16777215, example = 1)]
    pub virtual_network_id: u32,
    /// Largest mirrored packet length ("MTU"), 1–1460.
    #[schema(minimum = 1, maximum = 1460, example = 96)]
    pub packet_length: u16,
    /// 1–32766, unique within the project; a smaller value is a higher priority.
    #[schema(minimum = 1, maximum = 32766)]
    pub priority: u16,
    /// Whether the session mirrors traffic.
    pub enabled: bool,
    /// Mirror source type: `eni` (ports) or `eip` (elastic IPs); all sources are of this type.
    #[serde(rename = "type")]
    #[schema(example = "eni")]
    pub source_type: &'static str,
    /// Creation time, UTC, like `2023-02-23T06:57:39Z`.
    #[schema(example = "2023-02-23T06:57:39Z")]
    pub created_at: String,
    /// Last update time, UTC, like `2023-02-23T06:57:39Z`.
    #[schema(example = "2023-02-23T06:57:39Z")]
    pub updated_at: String,
    /// Whether the target can take the copies (tmirror's field, in the words of Huawei's
    /// statuses): `ACTIVE`; for an `elb` target, `DEGRADED` when every member fails its health
    /// check (copies go to all of them: fail open) or `DOWN` when no member takes flows (copies
    /// go nowhere).
    #[schema(example = "ACTIVE")]
    pub status: &'static str,
}

/// A session's `status` (see [`SessionView::status`]).
fn session_status(degraded: Option<LbDegraded>) -> &'static str {
    match degraded {
        None => "ACTIVE",
        Some(LbDegraded::NoneHealthy) => "DEGRADED",
        Some(LbDegraded::NoMembers) => "DOWN",
    }
}

impl SessionView {
    /// The view of `s`, whose target is `degraded` (the service says).
    pub fn new(s: &Session, degraded: Option<LbDegraded>) -> Self {
        SessionView {
            id: s.id.to_string(),
            project_id: s.project_id.to_string(),
            name: s.name.clone(),
            description: s.description.clone(),
            traffic_mirror_filter_id: s.filter_id.to_string(),
            traffic_mirror_sources: s.sources.ids(),
            traffic_mirror_target_id: s.target.id().hyphenated().to_string(),
            traffic_mirror_target_type: s.target.kind().as_str(),
            virtual_network_id: s.vni.get(),
            packet_length: s.packet_length.get(),
            priority: s.priority.get(),
            enabled: s.enabled,
            source_type: s.sources.source_type().as_str(),
            created_at: timestamp(s.created_at),
            updated_at: timestamp(s.updated_at),
            status: session_status(degraded),
        }
    }
}

/// A traffic mirror filter rule. Absent CIDRs and port ranges mean "any".
#[derive(Serialize, ToSchema)]
#[schema(as = TrafficMirrorFilterRule)]
pub struct RuleView {
    /// Rule id (UUID).
    pub id: String,
    /// Project id.
    pub project_id: String,
    /// 0–255 characters without `<` or `>`.
    pub description: String,
    /// The filter the rule belongs to.
    pub traffic_mirror_filter_id: String,
    /// `ingress` or `egress`.
    #[schema(example = "ingress")]
    pub direction: &'static str,
    /// IPv4 or IPv6 CIDR; absent means any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "192.168.0.0/24")]
    pub source_cidr_block: Option<String>,
    /// IPv4 or IPv6 CIDR; absent means any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "192.168.0.0/24")]
    pub destination_cidr_block: Option<String>,
    /// `from-to`, ports 1–65535; absent means any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "80-200")]
    pub source_port_range: Option<String>,
    /// `from-to`, ports 1–65535; absent means any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "80-200")]
    pub destination_port_range: Option<String>,
    /// `IPv4` or `IPv6`.
    #[schema(example = "IPv4")]
    pub ethertype: &'static str,
    /// `TCP`, `UDP`, `ICMP`, `ICMPV6` or `ALL`, in the letter case it was given.
    #[schema(example = "TCP")]
    pub protocol: String,
    /// `accept` (mirror) or `reject` (do not mirror).
    #[schema(example = "accept")]
    pub action: &'static str,
    /// 1–65535, unique within the filter and direction; a smaller value is a higher priority.
    #[schema(minimum = 1, maximum = 65535)]
    pub priority: u32,
    /// Creation time, UTC.
    #[schema(example = "2023-02-23T06:57:39Z")]
    pub created_at: String,
    /// Last update time, UTC.
    #[schema(example = "2023-02-23T06:57:39Z")]
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

/// A traffic mirror filter with its current rules.
#[derive(Serialize, ToSchema)]
#[schema(as = TrafficMirrorFilter)]
pub struct FilterView {
    /// Filter id (UUID).
    pub id: String,
    /// Project id.
    pub project_id: String,
    /// 1–64 letters (Chinese included), digits, `_`, `-`, `.`.
    pub name: String,
    /// 0–255 characters without `<` or `>`.
    pub description: String,
    /// The filter's `ingress` rules.
    pub ingress_rules: Vec<RuleView>,
    /// The filter's `egress` rules.
    pub egress_rules: Vec<RuleView>,
    /// Creation time, UTC.
    #[schema(example = "2023-02-23T06:57:39Z")]
    pub created_at: String,
    /// Last update time, UTC.
    #[schema(example = "2023-02-23T06:57:39Z")]
    pub updated_at: String,
    /// Mirror source type of the filter: always `eni`.
    #[serde(rename = "type")]
    #[schema(example = "eni")]
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

/// A fixed IP of a port.
#[derive(Serialize, ToSchema)]
#[schema(as = FixedIp)]
pub struct FixedIpView {
    /// Subnet id, as given.
    pub subnet_id: String,
    /// The IP address.
    #[schema(example = "192.168.0.10")]
    pub ip_address: String,
}

/// Which side of a VM's interface the agent captures on.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = CaptureSide)]
#[allow(dead_code)] // documents tmirror_model::CaptureSide, whose serde form it repeats
pub enum CaptureSideSchema {
    /// The hypervisor's end (tap device or host end of a veth pair); directions are flipped.
    Host,
    /// The interface as the VM sees it; directions as they are.
    Guest,
}

/// `binding:profile`: where the data plane captures the port's traffic.
#[derive(Serialize, ToSchema)]
#[schema(as = BindingProfile)]
pub struct BindingProfileView {
    /// Name of the interface on the agent host (a tap device or veth end); absent when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "tap0")]
    pub interface_name: Option<String>,
    /// `host` (the default) or `guest`.
    #[schema(value_type = CaptureSideSchema)]
    pub capture_side: CaptureSide,
}

/// A port (ENI): a source or `eni` target of traffic mirror sessions.
#[derive(Serialize, ToSchema)]
#[schema(as = Port)]
pub struct PortView {
    /// Port id (UUID).
    pub id: String,
    /// 0–255 characters.
    pub name: String,
    /// The network the port's subnet belongs to.
    pub network_id: String,
    /// Always `true`.
    pub admin_state_up: bool,
    /// MAC address, assigned by tmirror.
    #[schema(example = "fa:16:3e:12:34:56")]
    pub mac_address: String,
    /// At most one fixed IP.
    pub fixed_ips: Vec<FixedIpView>,
    /// The device (instance) id, or `""`.
    pub device_id: String,
    /// `""`, `neutron:VIP_PORT` or `compute:<zone>`.
    pub device_owner: String,
    /// Project id.
    pub tenant_id: String,
    /// Project id.
    pub project_id: String,
    /// `ACTIVE`, `BUILD` or `DOWN`.
    #[schema(example = "DOWN")]
    pub status: String,
    /// Security group ids, as given.
    pub security_groups: Vec<String>,
    /// Always empty.
    pub allowed_address_pairs: Vec<serde_json::Value>,
    /// Always empty.
    pub extra_dhcp_opts: Vec<serde_json::Value>,
    /// Always `normal`.
    #[serde(rename = "binding:vnic_type")]
    #[schema(example = "normal")]
    pub vnic_type: &'static str,
    /// The agent host name that captures this port's traffic, or `""`.
    #[serde(rename = "binding:host_id")]
    pub host_id: String,
    /// Where on the agent host the port's traffic is captured.
    #[serde(rename = "binding:profile")]
    pub binding_profile: BindingProfileView,
    /// Always `true`.
    pub port_security_enabled: bool,
    /// Creation time, UTC, without a zone suffix, like `2022-03-14T06:18:48`.
    #[schema(example = "2022-03-14T06:18:48")]
    pub created_at: String,
    /// Last update time, UTC, without a zone suffix.
    #[schema(example = "2022-03-14T06:18:48")]
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
#[derive(Serialize, ToSchema)]
pub struct PageInfo {
    /// Id of the first record of this page; absent on an empty page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub previous_marker: Option<String>,
    /// Number of records on this page.
    pub current_count: usize,
    /// Id of the last record of this page, to pass as `marker` for the next one; absent on the
    /// last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
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

// Success bodies. The handlers render them through a `serde_json::Value`, whose maps are
// sorted, so keys go out in alphabetical order at every level.

/// `{"request_id", "traffic_mirror_session"}`.
#[derive(Serialize, ToSchema)]
#[schema(as = TrafficMirrorSessionResponseBody)]
pub struct SessionReply {
    /// The request id, as in `X-Request-Id`.
    pub request_id: String,
    pub traffic_mirror_session: SessionView,
}

/// `{"page_info", "request_id", "traffic_mirror_sessions"}`.
#[derive(Serialize, ToSchema)]
#[schema(as = ListTrafficMirrorSessionsResponseBody)]
pub struct SessionListReply {
    pub page_info: PageInfo,
    /// The request id, as in `X-Request-Id`.
    pub request_id: String,
    pub traffic_mirror_sessions: Vec<SessionView>,
}

/// `{"request_id", "traffic_mirror_filter"}`.
#[derive(Serialize, ToSchema)]
#[schema(as = TrafficMirrorFilterResponseBody)]
pub struct FilterReply {
    /// The request id, as in `X-Request-Id`.
    pub request_id: String,
    pub traffic_mirror_filter: FilterView,
}

/// `{"page_info", "request_id", "traffic_mirror_filters"}`.
#[derive(Serialize, ToSchema)]
#[schema(as = ListTrafficMirrorFiltersResponseBody)]
pub struct FilterListReply {
    pub page_info: PageInfo,
    /// The request id, as in `X-Request-Id`.
    pub request_id: String,
    pub traffic_mirror_filters: Vec<FilterView>,
}

/// `{"request_id", "traffic_mirror_filter_rule"}`.
#[derive(Serialize, ToSchema)]
#[schema(as = TrafficMirrorFilterRuleResponseBody)]
pub struct RuleReply {
    /// The request id, as in `X-Request-Id`.
    pub request_id: String,
    pub traffic_mirror_filter_rule: RuleView,
}

/// `{"page_info", "request_id", "traffic_mirror_filter_rules"}`.
#[derive(Serialize, ToSchema)]
#[schema(as = ListTrafficMirrorFilterRulesResponseBody)]
pub struct RuleListReply {
    pub page_info: PageInfo,
    /// The request id, as in `X-Request-Id`.
    pub request_id: String,
    pub traffic_mirror_filter_rules: Vec<RuleView>,
}

/// `{"port"}` (v1 bodies carry no `request_id`).
#[derive(Serialize, ToSchema)]
#[schema(as = PortResponseBody)]
pub struct PortReply {
    pub port: PortView,
}

/// `{"ports"}`: no `page_info` and no `request_id`, as in Huawei's v1 API.
#[derive(Serialize, ToSchema)]
#[schema(as = ListPortsResponseBody)]
pub struct PortListReply {
    pub ports: Vec<PortView>,
}

/// Renders a success body as the handlers always have: through a `serde_json::Value`.
pub fn body<T: Serialize>(reply: &T) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::to_value(reply).expect("views serialize"))
}
