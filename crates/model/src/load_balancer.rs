//! Load balancers as session targets: a set of members (collectors) sharing a session's
//! copies, each flow to one member, with a health monitor deciding which members take flows.
//! `docs/load-balancers.md` says what each face shows of them and what tmirror ignores.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{LoadBalancerId, PortId, ProjectId};
use crate::values::{InvalidValue, Ranged, Timestamp};

/// A member's id (Huawei shows it as the member id; Alibaba names members by server id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MemberId(pub Uuid);

impl MemberId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for MemberId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The UDP port copies go to when a member gives none: VXLAN's.
pub const DEFAULT_MEMBER_PORT: u16 = 4789;

macro_rules! small_range {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "i64", into = "i64")]
        pub struct $name(u8);

        impl $name {
            /// The value, if it is in range.
            pub fn new(v: i64) -> Result<Self, InvalidValue> {
                if !($min..=$max).contains(&v) {
                    return Err(InvalidValue(format!(
                        concat!($what, " must be between {} and {}, not {}"),
                        $min, $max, v
                    )));
                }
                Ok(Self(v as u8))
            }

            /// The raw value.
            pub fn get(self) -> u8 {
                self.0
            }
        }

        impl Ranged for $name {
            const LOWEST: i64 = $min;
            const HIGHEST: i64 = $max;
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
                i64::from(v.0)
            }
        }
    };
}

small_range!(
    /// A member's share of the flows: 0–100, 0 taking no flows.
    MemberWeight, 0, 100, "weight"
);
small_range!(
    /// Seconds between two checks of a member: 1–50.
    HealthInterval, 1, 50, "the health check interval"
);
small_range!(
    /// Seconds a check waits for its answer: 1–50, at most the interval.
    HealthTimeout, 1, 50, "the health check timeout"
);
small_range!(
    /// Consecutive results that change a member's status: 1–10.
    HealthThreshold, 1, 10, "a health check threshold"
);

impl MemberWeight {
    /// Huawei's default weight (Alibaba's is 100, given by its face).
    pub const DEFAULT: MemberWeight = MemberWeight(1);
}

/// How members are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthCheckType {
    /// A TCP connection to the check port: healthy when it is accepted.
    Tcp,
    /// A UDP datagram to the check port: unhealthy when ICMP port-unreachable comes back, or
    /// (tmirror's stricter reading) when nothing answers it.
    UdpConnect,
}

impl HealthCheckType {
    /// The spelling both faces share.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthCheckType::Tcp => "TCP",
            HealthCheckType::UdpConnect => "UDP_CONNECT",
        }
    }
}

impl FromStr for HealthCheckType {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "TCP" => Ok(HealthCheckType::Tcp),
            "UDP_CONNECT" => Ok(HealthCheckType::UdpConnect),
            _ => Err(InvalidValue(format!(
                "type must be TCP or UDP_CONNECT (the checks tmirror can run), not {s:?}"
            ))),
        }
    }
}

/// The health monitor of a load balancer: AWS-like defaults (10 s, 3 up, 3 down).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthMonitor {
    pub kind: HealthCheckType,
    /// The port checked; `None`: each member's own port.
    pub port: Option<u16>,
    pub interval: HealthInterval,
    pub timeout: HealthTimeout,
    /// Consecutive successes that bring a member up (Huawei `max_retries`).
    pub up_threshold: HealthThreshold,
    /// Consecutive failures that take a member down (Huawei `max_retries_down`).
    pub down_threshold: HealthThreshold,
    pub admin_state_up: bool,
}

impl HealthMonitor {
    /// A TCP monitor with the defaults.
    pub fn tcp() -> Self {
        HealthMonitor {
            kind: HealthCheckType::Tcp,
            port: None,
            interval: HealthInterval(10),
            timeout: HealthTimeout(5),
            up_threshold: HealthThreshold(3),
            down_threshold: HealthThreshold(3),
            admin_state_up: true,
        }
    }
}

/// A member's health as the checker last saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MemberHealth {
    /// No monitor (or a disabled one): the member is taken as healthy.
    #[default]
    NoMonitor,
    /// Monitored, not checked yet: taken as healthy until the first verdict.
    Initial,
    /// Passed the up threshold.
    Online,
    /// Failed the down threshold.
    Offline,
}

impl MemberHealth {
    /// Huawei's spelling (`operating_status`).
    pub fn as_str(self) -> &'static str {
        match self {
            MemberHealth::NoMonitor => "NO_MONITOR",
            MemberHealth::Initial => "INITIAL",
            MemberHealth::Online => "ONLINE",
            MemberHealth::Offline => "OFFLINE",
        }
    }

    /// Whether the member takes new flows as far as health goes.
    pub fn is_healthy(self) -> bool {
        self != MemberHealth::Offline
    }
}

/// One member: a collector receiving the copies of the flows hashed to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbMember {
    pub id: MemberId,
    pub name: String,
    pub address: IpAddr,
    /// The UDP port copies go to (default 4789).
    pub port: u16,
    pub weight: MemberWeight,
    pub admin_state_up: bool,
    pub operating_status: MemberHealth,
    /// The port (ENI) the member was added as, when it was added by port (Alibaba `eni-…`
    /// backend servers); its address is that port's first fixed IP at the time.
    pub port_id: Option<PortId>,
    /// The subnet the caller named (Huawei `subnet_cidr_id`), kept as given.
    pub subnet_id: String,
}

impl LbMember {
    /// Whether the member takes new flows at all (enabled, positive weight).
    pub fn takes_flows(&self) -> bool {
        self.admin_state_up && self.weight.get() > 0
    }
}

/// A load balancer: its members share a session's copies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub id: LoadBalancerId,
    pub project_id: ProjectId,
    pub name: String,
    pub description: String,
    /// The address the caller gave or none (tmirror sends copies to members, never to a VIP).
    pub vip_address: Option<IpAddr>,
    pub admin_state_up: bool,
    pub members: Vec<LbMember>,
    pub health_monitor: Option<HealthMonitor>,
    /// What the faces accept and keep without acting on it (flavors, availability zones,
    /// bandwidth, listeners and pools), as a JSON object per face; shown back as given.
    pub kept: serde_json::Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl LoadBalancer {
    /// Why the load balancer cannot share copies fairly now, if it cannot: what a session
    /// targeting it shows in its state.
    pub fn degraded(&self) -> Option<LbDegraded> {
        let usable: Vec<&LbMember> = self.members.iter().filter(|m| m.takes_flows()).collect();
        if usable.is_empty() {
            Some(LbDegraded::NoMembers)
        } else if !usable.iter().any(|m| m.operating_status.is_healthy()) {
            Some(LbDegraded::NoneHealthy)
        } else {
            None
        }
    }
}

/// A load balancer that cannot share copies as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LbDegraded {
    /// No enabled member with a positive weight: copies go nowhere (and are counted).
    NoMembers,
    /// Members, none healthy: copies go to all of them (fail open).
    NoneHealthy,
}

/// A part a load balancer has at most one of: its listener, its pool, its health monitor.
/// Being one-to-one, a part's id is the load balancer's UUID with fixed low bits flipped (bits
/// of the node field, never the version or variant): no table of its own, and every part id
/// names its load balancer back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbPart {
    Pool,
    Monitor,
    Listener,
}

impl LbPart {
    fn salt(self) -> u128 {
        match self {
            LbPart::Pool => 1,
            LbPart::Monitor => 2,
            LbPart::Listener => 3,
        }
    }

    /// The id of `lb`'s part.
    pub fn id_of(self, lb: LoadBalancerId) -> Uuid {
        Uuid::from_u128(lb.0.as_u128() ^ self.salt())
    }

    /// The load balancer whose part `id` would be.
    pub fn owner(self, id: Uuid) -> LoadBalancerId {
        LoadBalancerId(Uuid::from_u128(id.as_u128() ^ self.salt()))
    }
}

#[cfg(test)]
mod part_tests {
    use super::*;

    #[test]
    fn a_part_id_names_its_load_balancer_and_differs_from_it_and_the_others() {
        let lb = LoadBalancerId(Uuid::new_v4());
        let parts = [LbPart::Pool, LbPart::Monitor, LbPart::Listener];
        for p in parts {
            let id = p.id_of(lb);
            assert_eq!(p.owner(id), lb);
            assert_ne!(id, lb.0);
            // The version and variant survive: the id is a UUID like any other.
            assert_eq!(
                (id.get_version(), id.get_variant()),
                (lb.0.get_version(), lb.0.get_variant())
            );
        }
        assert_ne!(LbPart::Pool.id_of(lb), LbPart::Listener.id_of(lb));
        assert_ne!(LbPart::Monitor.id_of(lb), LbPart::Listener.id_of(lb));
    }
}
