//! Elastic IPs (see `docs/eips.md`): public addresses a project takes from the pools the
//! operator configures. A pool is bound to the external interface of one gateway host, where
//! its addresses are translated to the private addresses of the ports they are associated with.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::ids::{EipId, PortId, ProjectId};
use crate::values::Timestamp;

/// An operator's pool of public addresses, and where its traffic is: the gateway host and its
/// external interface. Huawei's `publicip.type` (like `5_bgp`) names the pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EipPool {
    pub id: String,
    /// The addresses the pool hands out; no two pools overlap.
    pub cidrs: Vec<IpNet>,
    /// The gateway host the pool's addresses live on ("" while unbound: nothing is captured).
    pub host_id: String,
    /// The gateway host's external interface, captured for EIP sessions.
    pub interface_name: String,
    /// Unix seconds.
    pub created_at: i64,
}

impl EipPool {
    /// Whether `ip` is one of the pool's addresses.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.cidrs.iter().any(|c| c.contains(ip))
    }

    /// Whether any address is in both pools.
    pub fn overlaps(&self, other: &EipPool) -> bool {
        self.cidrs
            .iter()
            .any(|a| other.cidrs.iter().any(|b| a.contains(b) || b.contains(a)))
    }

    /// The usable addresses of the pool, in order, at most `limit`: an IPv4 block's network
    /// and broadcast addresses are left out (`IpNet::hosts`).
    pub fn addresses(&self, limit: usize) -> Vec<IpAddr> {
        self.cidrs
            .iter()
            .flat_map(|net| net.hosts())
            .take(limit)
            .collect()
    }
}

/// The bandwidth of an elastic IP, kept as given and shown back: tmirror does not shape
/// traffic, so none of it is enforced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bandwidth {
    /// A fresh UUID per EIP (Huawei shows one; a shared bandwidth is not modelled).
    pub id: String,
    pub name: String,
    /// Mbit/s.
    pub size: u32,
    /// `PER` (dedicated) or `WHOLE` (shared).
    pub share_type: String,
    /// `bandwidth` or `traffic`.
    pub charge_mode: String,
}

/// An elastic IP: a public address of a project, optionally associated with one of its ports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eip {
    pub id: EipId,
    pub project_id: ProjectId,
    /// The pool the address came from (Huawei `publicip.type`).
    pub pool_id: String,
    pub address: IpAddr,
    /// Huawei `alias`: a free-form name.
    pub name: String,
    /// The associated port, whose private address the gateway translates the EIP to.
    pub port_id: Option<PortId>,
    pub bandwidth: Bandwidth,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Eip {
    /// Huawei's status: `ACTIVE` while associated with a port, `DOWN` otherwise.
    pub fn status(&self) -> &'static str {
        if self.port_id.is_some() {
            "ACTIVE"
        } else {
            "DOWN"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(cidrs: &[&str]) -> EipPool {
        EipPool {
            id: "5_bgp".into(),
            cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            host_id: String::new(),
            interface_name: String::new(),
            created_at: 0,
        }
    }

    #[test]
    fn addresses_skip_network_and_broadcast_and_stop_at_the_limit() {
        let p = pool(&["198.51.100.0/30", "203.0.113.7/32"]);
        let all: Vec<String> = p.addresses(10).iter().map(|a| a.to_string()).collect();
        assert_eq!(all, ["198.51.100.1", "198.51.100.2", "203.0.113.7"]);
        assert_eq!(p.addresses(1).len(), 1);
    }

    #[test]
    fn pools_overlap_when_a_block_contains_another() {
        let a = pool(&["198.51.100.0/24"]);
        assert!(a.overlaps(&pool(&["198.51.100.128/25"])));
        assert!(!a.overlaps(&pool(&["203.0.113.0/24"])));
        assert!(a.contains(&"198.51.100.9".parse().unwrap()));
    }
}
