//! Who may do what: the roles of credentials, and the records of projects, hosts and networks
//! the operator manages (see `docs/security.md`).

use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::ProjectId;

/// What a credential may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads every resource of its project through both faces; writes nothing.
    Reader,
    /// Full control of its project's mirroring resources.
    Member,
    /// A member that also manages its own project's credentials (admin API).
    Admin,
    /// Runs the deployment: projects, credentials, networks, hosts and host bindings, every
    /// agent. Also a full member of its own project.
    Operator,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Reader, Role::Member, Role::Admin, Role::Operator];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Operator => "operator",
        }
    }

    /// Whether the role may change its project's mirroring resources.
    pub fn may_write(self) -> bool {
        self != Role::Reader
    }

    /// Whether the role may set a port's host binding (`binding:host_id`, `binding:profile`).
    pub fn may_bind(self) -> bool {
        self == Role::Operator
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a role's name.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a role: use operator, admin, member or reader")]
pub struct InvalidRole(pub String);

impl FromStr for Role {
    type Err = InvalidRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| InvalidRole(s.to_owned()))
    }
}

/// Who is acting on the service: a credential's project and role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub project: ProjectId,
    pub role: Role,
}

impl Actor {
    pub fn new(project: ProjectId, role: Role) -> Self {
        Actor { project, role }
    }
}

/// Per-project overrides of the quotas; `None` takes the server's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<u32>,
}

/// A tenant: the Huawei `project_id` and the Alibaba account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    pub quotas: QuotaOverrides,
}

/// An agent host the operator enrolled. Its credential is stored only as a hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub host_id: String,
    /// Lower-case hex SHA-256 of the host's token.
    pub token_hash: String,
    pub enabled: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl fmt::Debug for Host {
    // Even the hash stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("host_id", &self.host_id)
            .field("enabled", &self.enabled)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A network: address space the operator gives to one project, or shares with all. The
/// fixed IPs of a port lie in its network's CIDRs, and networks do not overlap, so an address
/// belongs to one network and so to one project (see `docs/security.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// The owner; `None` for a network shared by the operator with every project.
    pub project_id: Option<ProjectId>,
    pub cidrs: Vec<IpNet>,
    /// Unix seconds.
    pub created_at: i64,
}

impl Network {
    /// Whether `project` may put ports in this network.
    pub fn usable_by(&self, project: &ProjectId) -> bool {
        self.project_id.as_ref().is_none_or(|p| p == project)
    }

    /// Whether `ip` lies in one of the network's CIDRs.
    pub fn contains(&self, ip: &std::net::IpAddr) -> bool {
        self.cidrs.iter().any(|c| c.contains(ip))
    }

    /// Whether any CIDR of this network overlaps one of `other`'s.
    pub fn overlaps(&self, other: &Network) -> bool {
        self.cidrs.iter().any(|a| {
            other
                .cidrs
                .iter()
                .any(|b| a.contains(&b.network()) || b.contains(&a.network()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_order() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().is_err());
        assert!(!Role::Reader.may_write());
        assert!(Role::Member.may_write() && !Role::Member.may_bind());
        assert!(Role::Operator.may_bind());
    }

    #[test]
    fn networks_overlap_and_contain() {
        let net = |cidrs: &[&str]| Network {
            id: "n".into(),
            name: String::new(),
            project_id: None,
            cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            created_at: 0,
        };
        let a = net(&["10.0.0.0/24"]);
        assert!(a.overlaps(&net(&["10.0.0.128/25"])));
        assert!(a.overlaps(&net(&["10.0.0.0/16"])));
        assert!(!a.overlaps(&net(&["10.0.1.0/24", "fd00::/64"])));
        assert!(a.contains(&"10.0.0.7".parse().unwrap()));
        assert!(!a.contains(&"10.0.1.7".parse().unwrap()));
    }
}
