//! Where a session's copies go: one destination for a port target, or, for a load balancer,
//! the member that weighted rendezvous hashing picks for the copy's flow.
//!
//! Everything a choice needs is built once per plan (members with their hash keys and
//! counters; the forwarder keeps the outer headers of each destination), so choosing costs a few multiplications per member and allocates
//! nothing. Whether the session fails open (no member healthy) or has no member at all is a
//! property of the plan, not of a packet: it is decided, counted and logged when the plan is
//! built ([`Balance`]), never per copy.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tmirror_model::agent::MemberPlan;
use tmirror_packet::{choose, member_key, Member};

use crate::counters::SessionCounters;

/// One place copies can go.
#[derive(Debug)]
pub struct Destination {
    /// IPv4 or IPv6: the family of the outer header.
    pub ip: IpAddr,
    /// The outer UDP destination port (4789 unless a member says otherwise).
    pub port: u16,
    /// Copies sent to this member of a load balancer; `None` for a port target.
    pub sent: Option<Arc<AtomicU64>>,
}

impl Destination {
    pub fn new(ip: IpAddr, port: u16) -> Destination {
        Destination {
            ip,
            port,
            sent: None,
        }
    }
}

/// Where one session's copies go, and what they are counted on.
#[derive(Debug)]
pub struct Target {
    pub to: Destinations,
    pub counters: Arc<SessionCounters>,
}

#[derive(Debug)]
pub enum Destinations {
    /// A port target.
    One(Destination),
    /// A load balancer's members (those that may take flows, with their health).
    Members(Vec<Member<Destination>>),
}

impl Target {
    /// The destination of a copy whose flow hash is `flow`: for a load balancer, the member
    /// chosen over the healthy ones (all of them when none is: fail open); `None` when it has
    /// no member.
    #[inline]
    pub fn destination(&self, flow: u32) -> Option<&Destination> {
        match &self.to {
            Destinations::One(d) => Some(d),
            Destinations::Members(m) => choose(flow, m).member().map(|m| &m.target),
        }
    }
}

/// A load-balanced session's state as the agent applies it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Balance {
    /// Not load-balanced: a port target.
    #[default]
    Port,
    /// `healthy` of `members` take flows.
    Healthy { healthy: usize, members: usize },
    /// No member is healthy: flows are spread over all `members`, as a cloud's load balancer
    /// does, rather than lost.
    FailOpen { members: usize },
    /// No member may take flows: the session's copies go nowhere.
    NoMember,
}

impl Balance {
    /// The state of a session with `members` (the control plane sends only those that may
    /// take flows, but weight 0 is refused here too).
    pub fn of(members: &[MemberPlan]) -> Balance {
        let usable: Vec<&MemberPlan> = members.iter().filter(|m| m.weight > 0).collect();
        let healthy = usable.iter().filter(|m| m.healthy).count();
        match (usable.len(), healthy) {
            (0, _) => Balance::NoMember,
            (n, 0) => Balance::FailOpen { members: n },
            (n, h) => Balance::Healthy {
                healthy: h,
                members: n,
            },
        }
    }
}

/// The socket address a member is known by in logs and metrics.
pub fn member_address(m: &MemberPlan) -> SocketAddr {
    SocketAddr::new(m.address, m.port)
}

/// The chooser's view of a session's members: each with its hash key (of its address and
/// port, as every agent computes it), weight, health and counter. IPv4 and IPv6 members alike:
/// the forwarder builds the outer header of each one's family.
pub fn members(plans: &[MemberPlan], counters: &SessionCounters) -> Vec<Member<Destination>> {
    plans
        .iter()
        .map(|m| {
            let mut d = Destination::new(m.address, m.port);
            d.sent = Some(counters.member(member_address(m)));
            Member {
                key: member_key(m.address, m.port),
                weight: m.weight,
                healthy: m.healthy,
                target: d,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::Ipv4Addr;
    use tmirror_packet::{flow_hash, parse, VXLAN_PORT};

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 168, 77, last))
    }

    fn plan(last: u8, weight: u8, healthy: bool) -> MemberPlan {
        MemberPlan {
            address: v4(last),
            port: 4789,
            weight,
            healthy,
        }
    }

    fn target(plans: &[MemberPlan]) -> Target {
        let counters = Arc::new(SessionCounters::default());
        Target {
            to: Destinations::Members(members(plans, &counters)),
            counters,
        }
    }

    fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0, 8, 0, 0]);
        f
    }

    /// The flow hashes of both directions of `n` UDP conversations.
    fn conversations(n: u16) -> Vec<(u32, u32)> {
        (0..n)
            .map(|i| {
                let a = udp([10, 0, 1, 2], [10, 0, 2, 2], 20_000 + i, 7000);
                let b = udp([10, 0, 2, 2], [10, 0, 1, 2], 7000, 20_000 + i);
                (
                    flow_hash(&parse(&a).unwrap()),
                    flow_hash(&parse(&b).unwrap()),
                )
            })
            .collect()
    }

    fn ip_of(t: &Target, flow: u32) -> Option<IpAddr> {
        t.destination(flow).map(|d| d.ip)
    }

    #[test]
    fn a_port_target_has_one_destination_on_the_vxlan_port() {
        let t = Target {
            to: Destinations::One(Destination::new(v4(2), VXLAN_PORT)),
            counters: Arc::default(),
        };
        for flow in [0, 1, u32::MAX] {
            let d = t.destination(flow).unwrap();
            assert_eq!((d.ip, d.port), (v4(2), 4789));
            assert!(d.sent.is_none());
        }
    }

    #[test]
    fn both_directions_go_to_one_member_and_every_member_gets_flows() {
        let t = target(&[plan(2, 1, true), plan(3, 1, true), plan(4, 1, true)]);
        let mut share: HashMap<IpAddr, usize> = HashMap::new();
        for (a, b) in conversations(300) {
            let (da, db) = (ip_of(&t, a).unwrap(), ip_of(&t, b).unwrap());
            assert_eq!(da, db, "both directions of a conversation");
            *share.entry(da).or_default() += 1;
        }
        assert_eq!(share.len(), 3, "{share:?}");
        assert!(share.values().all(|&n| n >= 50), "{share:?}");
    }

    #[test]
    fn the_member_port_is_the_destination_port() {
        let mut m = plan(2, 1, true);
        m.port = 6081;
        let t = target(&[m]);
        let d = t.destination(12345).unwrap();
        assert_eq!((d.ip, d.port), (v4(2), 6081));
    }

    #[test]
    fn an_unhealthy_member_loses_only_its_flows_and_fail_open_uses_all() {
        let up = [plan(2, 1, true), plan(3, 1, true), plan(4, 1, true)];
        let mut one_down = up.clone();
        one_down[1].healthy = false;
        let all_down: Vec<MemberPlan> = up
            .iter()
            .cloned()
            .map(|mut m| {
                m.healthy = false;
                m
            })
            .collect();
        let (t_up, t_one, t_all) = (target(&up), target(&one_down), target(&all_down));
        let down_ip = v4(3);
        let mut moved = 0;
        for (f, _) in conversations(300) {
            let before = ip_of(&t_up, f).unwrap();
            let after = ip_of(&t_one, f).unwrap();
            if before == down_ip {
                assert_ne!(after, down_ip);
                moved += 1;
            } else {
                assert_eq!(after, before, "a flow of a healthy member moved");
            }
            // Failing open picks as if every member were healthy.
            assert_eq!(ip_of(&t_all, f), Some(before));
        }
        assert!(moved > 0);
        assert_eq!(
            Balance::of(&up),
            Balance::Healthy {
                healthy: 3,
                members: 3
            }
        );
        assert_eq!(
            Balance::of(&one_down),
            Balance::Healthy {
                healthy: 2,
                members: 3
            }
        );
        assert_eq!(Balance::of(&all_down), Balance::FailOpen { members: 3 });
    }

    #[test]
    fn no_member_and_weight_zero_go_nowhere() {
        let none = target(&[]);
        let zero = target(&[plan(2, 0, true)]);
        for (f, _) in conversations(20) {
            assert!(none.destination(f).is_none());
            assert!(zero.destination(f).is_none());
        }
        assert_eq!(Balance::of(&[]), Balance::NoMember);
        assert_eq!(Balance::of(&[plan(2, 0, true)]), Balance::NoMember);
        // Weight 0 never takes a flow, even when it alone is healthy.
        let t = target(&[plan(2, 0, true), plan(3, 1, false)]);
        for (f, _) in conversations(50) {
            assert_eq!(ip_of(&t, f), Some(v4(3)));
        }
    }

    #[test]
    fn ipv6_members_take_flows_like_the_others() {
        let mut v6 = plan(2, 1, true);
        v6.address = "fd00::2".parse().unwrap();
        let t = target(&[v6, plan(3, 1, true)]);
        let mut seen: Vec<IpAddr> = conversations(100)
            .into_iter()
            .filter_map(|(f, _)| ip_of(&t, f))
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen, [v4(3), "fd00::2".parse::<IpAddr>().unwrap()]);
    }
}
