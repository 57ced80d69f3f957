//! The filterable fields of each resource as columns, and how a value is compared with them.

use super::Dialect;
use crate::query::*;

/// The type of a plain column, so that a value is bound as what the column holds (PostgreSQL
/// does not compare `bigint` with `text`).
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Text,
    Int,
    Bool,
}

/// How one filterable field is compared, in SQL.
pub(crate) enum Column {
    /// `table.col IN (...)`.
    Plain(&'static str, Kind),
    /// `lower(col) IN (lower(...))`.
    CaseInsensitive(&'static str),
    /// `EXISTS (... subquery with the values ...)`; `{}` is replaced by the value list.
    Exists(&'static str),
    /// `NOT EXISTS (...)`, as `Exists`.
    NotExists(&'static str),
}

// The Alibaba extras of a session or filter, by its id (`t.id`): tags and resource group.
const IN_GROUP: &str = "SELECT 1 FROM aliyun_resource_groups g \
     WHERE g.resource_id = t.id AND g.resource_group_id IN ({})";
const IN_OTHER_GROUP: &str = "SELECT 1 FROM aliyun_resource_groups g \
     WHERE g.resource_id = t.id AND g.resource_group_id NOT IN ({})";
const HAS_TAG_KEY: &str =
    "SELECT 1 FROM aliyun_tags a WHERE a.resource_id = t.id AND a.tag_key IN ({})";
// The separator is `query::tag_pair`'s.
const HAS_TAG: &str = "SELECT 1 FROM aliyun_tags a \
     WHERE a.resource_id = t.id AND a.tag_key || '\u{1f}' || a.tag_value IN ({})";

pub(crate) trait Field: Copy {
    fn column<D: Dialect>(self) -> Column;
}

use Kind::{Bool, Int, Text};

impl Field for SessionField {
    fn column<D: Dialect>(self) -> Column {
        use Column::*;
        match self {
            SessionField::Id => Plain("id", Text),
            SessionField::Name => Plain("name", Text),
            SessionField::Description => Plain("description", Text),
            SessionField::FilterId => Plain("filter_id", Text),
            SessionField::TargetId => Plain("target_id", Text),
            SessionField::TargetType => Plain("target_type", Text),
            SessionField::Vni => Plain("vni", Int),
            SessionField::PacketLength => Plain("packet_length", Int),
            SessionField::Priority => Plain("priority", Int),
            SessionField::Enabled => Plain("enabled", Bool),
            SessionField::SourceType => Plain("source_type", Text),
            SessionField::CreatedAt => Plain("created_at", Int),
            SessionField::UpdatedAt => Plain("updated_at", Int),
            SessionField::SourceId => Exists(
                "SELECT 1 FROM session_sources ss WHERE ss.session_id = t.id AND ss.port_id IN ({})",
            ),
            SessionField::ResourceGroup => Exists(IN_GROUP),
            SessionField::ResourceGroupAbsentOr => NotExists(IN_OTHER_GROUP),
            SessionField::TagKey => Exists(HAS_TAG_KEY),
            SessionField::TagPair => Exists(HAS_TAG),
        }
    }
}

impl Field for LoadBalancerField {
    fn column<D: Dialect>(self) -> Column {
        match self {
            LoadBalancerField::Id => Column::Plain("id", Text),
            LoadBalancerField::Name => Column::Plain("name", Text),
            LoadBalancerField::Description => Column::Plain("description", Text),
            LoadBalancerField::VipAddress => Column::Plain("vip_address", Text),
            LoadBalancerField::AdminStateUp => Column::Plain("admin_state_up", Bool),
            LoadBalancerField::MemberAddress => Column::Exists(
                "SELECT 1 FROM load_balancer_members m \
                 WHERE m.load_balancer_id = t.id AND m.address IN ({})",
            ),
        }
    }
}

impl Field for FilterField {
    fn column<D: Dialect>(self) -> Column {
        match self {
            FilterField::Id => Column::Plain("id", Text),
            FilterField::Name => Column::Plain("name", Text),
            FilterField::Description => Column::Plain("description", Text),
            FilterField::CreatedAt => Column::Plain("created_at", Int),
            FilterField::UpdatedAt => Column::Plain("updated_at", Int),
            FilterField::ResourceGroup => Column::Exists(IN_GROUP),
            FilterField::ResourceGroupAbsentOr => Column::NotExists(IN_OTHER_GROUP),
            FilterField::TagKey => Column::Exists(HAS_TAG_KEY),
            FilterField::TagPair => Column::Exists(HAS_TAG),
        }
    }
}

impl Field for RuleField {
    fn column<D: Dialect>(self) -> Column {
        use Column::*;
        match self {
            RuleField::Id => Plain("id", Text),
            RuleField::Description => Plain("description", Text),
            RuleField::FilterId => Plain("filter_id", Text),
            RuleField::Direction => Plain("direction", Text),
            RuleField::Protocol => CaseInsensitive("protocol"),
            RuleField::Ethertype => CaseInsensitive("ethertype"),
            RuleField::SourceCidr => Plain("source_cidr", Text),
            RuleField::DestinationCidr => Plain("destination_cidr", Text),
            RuleField::SourcePortRange => Plain("source_port_range", Text),
            RuleField::DestinationPortRange => Plain("destination_port_range", Text),
            RuleField::Action => Plain("action", Text),
            RuleField::Priority => Plain("priority", Int),
        }
    }
}

impl Field for PortField {
    fn column<D: Dialect>(self) -> Column {
        use Column::*;
        match self {
            PortField::Id => Plain("id", Text),
            PortField::Name => Plain("name", Text),
            PortField::NetworkId => Plain("network_id", Text),
            PortField::MacAddress => CaseInsensitive("mac_address"),
            PortField::DeviceId => Plain("device_id", Text),
            PortField::DeviceOwner => Plain("device_owner", Text),
            PortField::Status => Plain("status", Text),
            PortField::AdminStateUp => Plain("admin_state_up", Bool),
            PortField::HostId => Plain("host_id", Text),
            // The indexed rows of `port_addresses`, kept with the port, not its JSON.
            PortField::FixedIpAddress => Exists(
                "SELECT 1 FROM port_addresses a WHERE a.port_id = t.id AND a.address IN ({})",
            ),
            PortField::SecurityGroup => Exists(D::SECURITY_GROUP),
            PortField::FixedIpSubnet => Exists(D::FIXED_IP_SUBNET),
        }
    }
}

pub(crate) fn as_text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bool(x) => x.to_string(),
    }
}

/// `v` as a value of a `kind` column; `None` if it cannot equal any such value (as SQLite's
/// comparison of `'abc'` with an integer column matches nothing). PostgreSQL's binding: it
/// does not compare `bigint` with `text`.
pub(crate) fn coerce(v: &Value, kind: Kind) -> Option<Value> {
    match (kind, v) {
        (Text, v) => Some(Value::Text(as_text(v))),
        (Int, Value::Int(i)) => Some(Value::Int(*i)),
        (Int, Value::Text(s)) => s.trim().parse().ok().map(Value::Int),
        (Int, Value::Bool(x)) => Some(Value::Int(i64::from(*x))),
        (Bool, Value::Bool(x)) => Some(Value::Bool(*x)),
        (Bool, Value::Int(i)) => Some(Value::Bool(*i != 0)),
        (Bool, Value::Text(s)) => match s.as_str() {
            "true" | "1" => Some(Value::Bool(true)),
            "false" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
    }
}
