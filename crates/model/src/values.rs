//! Validated values. Each constructor enforces the range the model allows; a face may narrow a
//! range further (Huawei's `packet_length` is 1–1460, Alibaba's `PacketLength` 64–8500) but
//! never widen it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a value was refused, phrased for the user.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

fn invalid(msg: impl Into<String>) -> InvalidValue {
    InvalidValue(msg.into())
}

/// The direction of a packet from the point of view of the mirror source interface:
/// `Ingress` is what it receives, `Egress` is what it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    /// Both directions, ingress first.
    pub const ALL: [Direction; 2] = [Direction::Ingress, Direction::Egress];

    /// The lower-case name used by both clouds.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    /// The other direction (used when the capture point sees the interface from outside).
    pub fn flipped(self) -> Direction {
        match self {
            Direction::Ingress => Direction::Egress,
            Direction::Egress => Direction::Ingress,
        }
    }
}

impl FromStr for Direction {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ingress" => Ok(Direction::Ingress),
            "egress" => Ok(Direction::Egress),
            _ => Err(invalid(format!(
                "direction must be ingress or egress, not {s:?}"
            ))),
        }
    }
}

/// The IP version a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ethertype {
    IPv4,
    IPv6,
}

impl Ethertype {
    /// `IPv4` or `IPv6`, the spelling both clouds answer with.
    pub fn as_str(self) -> &'static str {
        match self {
            Ethertype::IPv4 => "IPv4",
            Ethertype::IPv6 => "IPv6",
        }
    }
}

impl FromStr for Ethertype {
    type Err = InvalidValue;
    /// Any letter case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ipv4" => Ok(Ethertype::IPv4),
            "ipv6" => Ok(Ethertype::IPv6),
            _ => Err(invalid(format!(
                "ethertype must be IPv4 or IPv6, not {s:?}"
            ))),
        }
    }
}

/// The transport protocol a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    /// Every protocol (and every port).
    All,
}

impl Protocol {
    /// The IANA protocol number, `None` for `All`.
    pub fn number(self) -> Option<u8> {
        match self {
            Protocol::Tcp => Some(6),
            Protocol::Udp => Some(17),
            Protocol::Icmp => Some(1),
            Protocol::Icmpv6 => Some(58),
            Protocol::All => None,
        }
    }

    /// Whether rules of this protocol may carry port ranges (TCP and UDP only).
    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp)
    }

    /// Upper-case name (`TCP`, `ICMPV6`, ...), as the documentation spells it.
    pub fn upper(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Icmp => "ICMP",
            Protocol::Icmpv6 => "ICMPV6",
            Protocol::All => "ALL",
        }
    }
}

impl FromStr for Protocol {
    type Err = InvalidValue;
    /// Any letter case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "icmp" => Ok(Protocol::Icmp),
            "icmpv6" => Ok(Protocol::Icmpv6),
            "all" => Ok(Protocol::All),
            _ => Err(invalid(format!(
                "protocol must be one of TCP, UDP, ICMP, ICMPV6, ALL, not {s:?}"
            ))),
        }
    }
}

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// Mirror the packet.
    Accept,
    /// Do not mirror the packet (Alibaba calls it `drop`).
    Reject,
}

impl RuleAction {
    /// Huawei's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Accept => "accept",
            RuleAction::Reject => "reject",
        }
    }
}

/// An inclusive port range, 1–65535, `from <= to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRange {
    from: u16,
    to: u16,
}

impl PortRange {
    /// The whole range, 1–65535.
    pub const FULL: PortRange = PortRange { from: 1, to: 65535 };

    /// A range; both ends in 1–65535 and `from <= to`.
    pub fn new(from: u16, to: u16) -> Result<Self, InvalidValue> {
        if from == 0 || to == 0 {
            return Err(invalid("ports are 1 to 65535"));
        }
        if from > to {
            return Err(invalid(format!(
                "port range {from}-{to} is empty: the first port must not exceed the second"
            )));
        }
        Ok(PortRange { from, to })
    }

    /// First port.
    pub fn from(self) -> u16 {
        self.from
    }

    /// Last port.
    pub fn to(self) -> u16 {
        self.to
    }

    /// Whether `port` lies in the range.
    pub fn contains(self, port: u16) -> bool {
        self.from <= port && port <= self.to
    }

    /// Parses `"80-200"` (Huawei) with `sep = '-'` or `"80/200"` (Alibaba) with `sep = '/'`.
    pub fn parse_with(s: &str, sep: char) -> Result<Self, InvalidValue> {
        let bad = || {
            invalid(format!(
                "port range must look like 80{sep}200 with ports 1 to 65535, not {s:?}"
            ))
        };
        let (a, b) = s.trim().split_once(sep).ok_or_else(bad)?;
        let a: u16 = a.trim().parse().map_err(|_| bad())?;
        let b: u16 = b.trim().parse().map_err(|_| bad())?;
        PortRange::new(a, b)
    }
}

impl fmt::Display for PortRange {
    /// Huawei's `from-to` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.from, self.to)
    }
}

/// An integer value whose constructor enforces a range: the faces check requests against
/// [`Ranged::LOWEST`]..=[`Ranged::HIGHEST`] and build the value with [`Ranged::new`], so a range
/// is written once, here.
pub trait Ranged: Sized {
    /// Smallest allowed value.
    const LOWEST: i64;
    /// Largest allowed value.
    const HIGHEST: i64;
    /// The value, if it is in range.
    fn new(v: i64) -> Result<Self, InvalidValue>;
}

macro_rules! ranged_int {
    ($(#[$doc:meta])* $name:ident, $int:ty, $min:expr, $max:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "i64", into = "i64")]
        pub struct $name($int);

        impl $name {
            /// Smallest allowed value.
            pub const MIN: $int = $min;
            /// Largest allowed value.
            pub const MAX: $int = $max;

            /// The value, if it is in range.
            pub fn new(v: i64) -> Result<Self, InvalidValue> {
                if v < Self::MIN as i64 || v > Self::MAX as i64 {
                    Err(invalid(format!(
                        concat!($what, " must be between {} and {}, not {}"),
                        Self::MIN, Self::MAX, v
                    )))
                } else {
                    Ok(Self(v as $int))
                }
            }

            /// The raw value.
            pub fn get(self) -> $int {
                self.0
            }
        }

        impl Ranged for $name {
            const LOWEST: i64 = $min as i64;
            const HIGHEST: i64 = $max as i64;
            fn new(v: i64) -> Result<Self, InvalidValue> {
                $name::new(v)
            }
        }

        impl TryFrom<i64> for $name {
            type Error = InvalidValue;
            fn try_from(v: i64) -> Result<Self, Self::Error> {
                Self::new(v)
            }
        }

        impl From<$name> for i64 {
            fn from(v: $name) -> i64 {
                v.0 as i64
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

ranged_int!(
    /// VXLAN network identifier carried by a session's copies: 24 bits.
    Vni, u32, 0, 16_777_215, "virtual_network_id"
);
ranged_int!(
    /// Bytes of the inner Ethernet frame kept in each copy. The model allows the union of the
    /// faces' ranges (Huawei 1–1460, Alibaba 64–8500).
    PacketLength, u16, 1, 8500, "packet_length"
);
ranged_int!(
    /// Session priority, 1 (evaluated first) to 32766; unique within a project.
    SessionPriority, u16, 1, 32766, "priority"
);
ranged_int!(
    /// Rule priority, 1 (evaluated first) to 65535; unique within a filter and direction.
    RulePriority, u32, 1, 65535, "priority"
);

impl Vni {
    /// Huawei's default VNI.
    pub const DEFAULT: Vni = Vni(1);
}

impl PacketLength {
    /// Huawei's default copy length.
    pub const DEFAULT: PacketLength = PacketLength(96);
    /// A standard Ethernet MTU's worth: Alibaba's default copy length.
    pub const MTU: PacketLength = PacketLength(1500);
}

/// What a session sends its copies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    /// A port (elastic network interface): copies go to its first fixed IP.
    Eni,
    /// A private load balancer (Alibaba: `SLB`).
    Elb,
}

impl TargetType {
    /// Huawei's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Eni => "eni",
            TargetType::Elb => "elb",
        }
    }
}

impl FromStr for TargetType {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "eni" => Ok(TargetType::Eni),
            "elb" => Ok(TargetType::Elb),
            _ => Err(invalid(format!(
                "traffic_mirror_target_type must be eni or elb, not {s:?}"
            ))),
        }
    }
}

/// Which side of a VM's interface the agent captures on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureSide {
    /// The hypervisor's end (tap device or host end of a veth pair): what it receives, the VM
    /// sent, so directions are flipped. The default.
    #[default]
    Host,
    /// The interface as the VM itself sees it: directions as they are.
    Guest,
}

impl FromStr for CaptureSide {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "host" => Ok(CaptureSide::Host),
            "guest" => Ok(CaptureSide::Guest),
            _ => Err(invalid(format!(
                "capture_side must be host or guest, not {s:?}"
            ))),
        }
    }
}

/// Seconds since the Unix epoch, UTC. Faces format it (`2023-02-23T06:57:39Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time, whole seconds.
    pub fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Timestamp(secs)
    }
}

/// What a session mirrors: the ports (`eni`) or the elastic IPs (`eip`) among its sources. A
/// session's sources are all of its one type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    /// Ports (elastic network interfaces): the traffic of a VM's interface.
    #[default]
    Eni,
    /// Elastic IPs: the north-south traffic of a public address on a gateway host.
    Eip,
}

impl SourceType {
    /// Huawei's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceType::Eni => "eni",
            SourceType::Eip => "eip",
        }
    }
}

impl fmt::Display for SourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceType {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "eni" => Ok(SourceType::Eni),
            "eip" => Ok(SourceType::Eip),
            _ => Err(invalid(format!("type must be eni or eip, not {s:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges() {
        assert_eq!(
            PortRange::parse_with("80-200", '-').unwrap(),
            PortRange::new(80, 200).unwrap()
        );
        assert_eq!(
            PortRange::parse_with("80/80", '/').unwrap().to_string(),
            "80-80"
        );
        assert!(PortRange::parse_with("0-10", '-').is_err());
        assert!(PortRange::parse_with("10-9", '-').is_err());
        assert!(PortRange::parse_with("1-65536", '-').is_err());
        assert!(PortRange::parse_with("80", '-').is_err());
        assert!(PortRange::FULL.contains(1) && PortRange::FULL.contains(65535));
        assert!(!PortRange::new(80, 81).unwrap().contains(82));
    }

    #[test]
    fn ranges_are_enforced() {
        assert!(
            Vni::new(0).is_ok() && Vni::new(16_777_215).is_ok() && Vni::new(16_777_216).is_err()
        );
        assert!(PacketLength::new(0).is_err() && PacketLength::new(1).is_ok());
        assert!(SessionPriority::new(32767).is_err() && SessionPriority::new(1).is_ok());
        assert!(RulePriority::new(65536).is_err() && RulePriority::new(0).is_err());
    }

    #[test]
    fn case_insensitive_enums() {
        assert_eq!("ICMPV6".parse::<Protocol>().unwrap(), Protocol::Icmpv6);
        assert_eq!("Tcp".parse::<Protocol>().unwrap(), Protocol::Tcp);
        assert_eq!("ipv4".parse::<Ethertype>().unwrap(), Ethertype::IPv4);
        assert!("ipv5".parse::<Ethertype>().is_err());
    }
}
