//! List queries: exact-match conditions (OR within one field, AND across fields), a marker
//! and a page size. Results come in creation order, which is stable.

/// A value to compare a column with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// One field condition: the field equals any of `values`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition<F> {
    pub field: F,
    pub values: Vec<Value>,
}

/// A list request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery<F> {
    pub conditions: Vec<Condition<F>>,
    /// Return the resources created after the one with this id.
    pub marker: Option<String>,
    /// Page size (at least 1).
    pub limit: u32,
}

impl<F> ListQuery<F> {
    /// Everything, in pages of `limit`.
    pub fn all(limit: u32) -> Self {
        ListQuery {
            conditions: Vec::new(),
            marker: None,
            limit,
        }
    }
}

/// A page of results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Whether more items follow this page.
    pub more: bool,
}

/// Filterable session fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionField {
    Id,
    Name,
    Description,
    FilterId,
    TargetId,
    TargetType,
    Vni,
    PacketLength,
    Priority,
    Enabled,
    SourceType,
    CreatedAt,
    UpdatedAt,
    /// Sessions that contain this source port.
    SourceId,
    /// Sessions in one of these Alibaba resource groups (a stored group row).
    ResourceGroup,
    /// Sessions with no Alibaba resource-group row other than these (the default group:
    /// a resource without a row is in it).
    ResourceGroupAbsentOr,
    /// Sessions with an Alibaba tag of one of these keys.
    TagKey,
    /// Sessions with one of these Alibaba tags, each written [`tag_pair`]`(key, value)`.
    TagPair,
}

/// Filterable filter fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterField {
    Id,
    Name,
    Description,
    CreatedAt,
    UpdatedAt,
    /// As [`SessionField::ResourceGroup`].
    ResourceGroup,
    /// As [`SessionField::ResourceGroupAbsentOr`].
    ResourceGroupAbsentOr,
    /// As [`SessionField::TagKey`].
    TagKey,
    /// As [`SessionField::TagPair`].
    TagPair,
}

/// A tag as the value of a `TagPair` condition: key and value joined by the unit separator
/// (U+001F), which the Alibaba face (the only one with tags) refuses in tags.
pub fn tag_pair(key: &str, value: &str) -> String {
    format!("{key}\u{1f}{value}")
}

/// Filterable rule fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleField {
    Id,
    Description,
    FilterId,
    Direction,
    /// Compared case-insensitively with the protocol.
    Protocol,
    Ethertype,
    SourceCidr,
    DestinationCidr,
    SourcePortRange,
    DestinationPortRange,
    Action,
    Priority,
}

/// Filterable port fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortField {
    Id,
    Name,
    NetworkId,
    MacAddress,
    DeviceId,
    DeviceOwner,
    Status,
    AdminStateUp,
    HostId,
    /// A fixed IP address (`fixed_ips=ip_address=...`).
    FixedIpAddress,
    /// A fixed IP's subnet (`fixed_ips=subnet_id=...`).
    FixedIpSubnet,
    /// One of the port's security groups.
    SecurityGroup,
}

/// Filterable load-balancer fields (the Huawei ELB list's equality filters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadBalancerField {
    Id,
    Name,
    Description,
    /// The kept VIP, as text.
    VipAddress,
    AdminStateUp,
    /// Load balancers with a member at one of these addresses.
    MemberAddress,
}
