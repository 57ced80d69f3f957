//! Elastic IPs (`docs/eips.md`): the operator's pools, bound to a gateway host's external
//! interface, and the projects' addresses taken from them and associated with their ports.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use tmirror_model::*;

use super::tenancy::operator_only;
use super::{Service, ServiceResult, Writer};

/// A pool as the operator gives it: creating or replacing (same id) its addresses and binding.
#[derive(Clone, Debug)]
pub struct EipPoolPut {
    pub id: String,
    pub cidrs: Vec<IpNet>,
    /// The gateway host; "" leaves the pool unbound (its EIPs are mirrored nowhere).
    pub host_id: String,
    pub interface_name: String,
}

/// A new elastic IP.
#[derive(Clone, Debug)]
pub struct EipCreate {
    /// The pool to take the address from (Huawei `publicip.type`).
    pub pool_id: String,
    /// An explicit address of the pool; `None` takes the pool's first free one.
    pub address: Option<IpAddr>,
    /// The address family asked for (`Some(true)`: IPv4); `None` takes the pool's.
    pub ipv4: Option<bool>,
    pub name: String,
    /// A port of the project to associate at once.
    pub port_id: Option<PortId>,
    pub bandwidth: Bandwidth,
}

/// Changes to an elastic IP; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct EipUpdate {
    pub name: Option<String>,
    /// `Some(None)` dissociates it from its port.
    pub port_id: Option<Option<PortId>>,
}

/// Linux's limit on an interface name (IFNAMSIZ less the terminating NUL).
const IFNAME_MAX: usize = 15;

fn check_pool(input: &EipPoolPut) -> ServiceResult<()> {
    let id = &input.id;
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_graphic()) {
        return Err(DomainError::invalid(
            Field::Name,
            "a pool id is 1 to 64 printable ASCII characters (like 5_bgp)",
        )
        .into());
    }
    if input.cidrs.is_empty() {
        return Err(DomainError::invalid(Field::Name, "a pool needs at least one CIDR").into());
    }
    let iface = &input.interface_name;
    if input.host_id.is_empty() != iface.is_empty() {
        return Err(DomainError::invalid(
            Field::Binding,
            "give both host_id and interface_name (the gateway's external interface), or neither",
        )
        .into());
    }
    if iface.len() > IFNAME_MAX || iface.contains(['/', ' ']) {
        return Err(DomainError::invalid(
            Field::InterfaceName,
            "an interface name is at most 15 characters without '/' or spaces",
        )
        .into());
    }
    Ok(())
}

impl Service {
    /// Creates or replaces a pool; only the operator may. Replacing keeps its creation time;
    /// every existing EIP of the pool must stay inside its new CIDRs.
    pub async fn eip_pool_put(&self, actor: &Actor, input: EipPoolPut) -> ServiceResult<EipPool> {
        operator_only(actor, "manage elastic IP pools")?;
        check_pool(&input)?;
        self.transact(|tx| {
            let input = input.clone();
            Box::pin(async move {
                let created_at = match tx.eip_pool(&input.id).await? {
                    Some(old) => old.created_at,
                    None => Timestamp::now().0,
                };
                let pool = EipPool {
                    id: input.id,
                    cidrs: input.cidrs,
                    host_id: input.host_id,
                    interface_name: input.interface_name,
                    created_at,
                };
                if let Some(other) = tx
                    .eip_pools()
                    .await?
                    .iter()
                    .find(|p| p.id != pool.id && p.overlaps(&pool))
                {
                    return Err(DomainError::Conflict(format!(
                        "the CIDRs overlap those of elastic IP pool {}: an address belongs to one pool",
                        other.id
                    ))
                    .into());
                }
                if let Some(outside) = tx
                    .eips_in_pool(&pool.id)
                    .await?
                    .iter()
                    .find(|e| !pool.contains(&e.address))
                {
                    return Err(DomainError::Conflict(format!(
                        "elastic IP {} ({}) is outside the new CIDRs; release it first",
                        outside.id, outside.address
                    ))
                    .into());
                }
                tx.put_eip_pool(&pool).await?;
                Ok(pool)
            })
        })
        .await
    }

    /// Every pool; only the operator may list them.
    pub async fn eip_pool_list(&self, actor: &Actor) -> ServiceResult<Vec<EipPool>> {
        operator_only(actor, "list elastic IP pools")?;
        let mut r = self.store.read().await?;
        Ok(r.eip_pools().await?)
    }

    /// Deletes a pool that no EIP uses; only the operator may.
    pub async fn eip_pool_delete(&self, actor: &Actor, id: &str) -> ServiceResult<()> {
        operator_only(actor, "manage elastic IP pools")?;
        self.transact(|tx| {
            let id = id.to_owned();
            Box::pin(async move {
                if let Some(e) = tx.eips_in_pool(&id).await?.first() {
                    return Err(DomainError::Conflict(format!(
                        "elastic IP pool {id} still holds elastic IP {}; release it first",
                        e.id
                    ))
                    .into());
                }
                if !tx.delete_eip_pool(&id).await? {
                    return Err(DomainError::UnknownRecord {
                        kind: "elastic IP pool",
                        id,
                    }
                    .into());
                }
                Ok(())
            })
        })
        .await
    }

    pub async fn eip_show(&self, project: &ProjectId, id: EipId) -> ServiceResult<Eip> {
        let mut r = self.store.read().await?;
        r.get_eip(project, id)
            .await?
            .ok_or_else(|| DomainError::not_found(ResourceKind::Eip, id).into())
    }

    /// The project's EIPs, oldest first.
    pub async fn eip_list(&self, project: &ProjectId) -> ServiceResult<Vec<Eip>> {
        let mut r = self.store.read().await?;
        Ok(r.list_eips(project).await?)
    }

    /// The private address each associated port of `eips` has (its first fixed IP): the
    /// address the gateway translates the EIP to.
    pub async fn eip_private_ips(
        &self,
        project: &ProjectId,
        eips: &[Eip],
    ) -> ServiceResult<HashMap<PortId, IpAddr>> {
        let mut r = self.store.read().await?;
        let mut out = HashMap::new();
        for port in eips.iter().filter_map(|e| e.port_id) {
            if let Some(ip) = r
                .get_port(project, port)
                .await?
                .and_then(|p| p.primary_ip())
            {
                out.insert(port, ip);
            }
        }
        Ok(out)
    }
}

/// In the caller's transaction; [`Service`] runs each in one of its own.
impl Writer<'_> {
    pub async fn eip_create(&mut self, input: EipCreate) -> ServiceResult<Eip> {
        let project = &self.actor.project.clone();
        self.check_room(project, ResourceKind::Eip, Quota::EipsPerProject)
            .await?;
        let tx = &mut *self.tx;
        let pool = tx.eip_pool(&input.pool_id).await?.ok_or_else(|| {
            DomainError::invalid(
                Field::Name,
                format!(
                    "publicip type {:?} is no elastic IP pool of this cloud; ask the operator which pools exist",
                    input.pool_id
                ),
            )
        })?;
        let taken: Vec<IpAddr> = tx
            .eips_in_pool(&pool.id)
            .await?
            .iter()
            .map(|e| e.address)
            .collect();
        let address = match input.address {
            Some(ip) if !pool.contains(&ip) => {
                return Err(DomainError::invalid(
                    Field::FixedIp,
                    format!("{ip} is not an address of elastic IP pool {}", pool.id),
                )
                .into())
            }
            Some(ip) if taken.contains(&ip) => {
                return Err(DomainError::Conflict(format!("{ip} is already in use")).into())
            }
            Some(ip) => ip,
            // Among the first taken+1 addresses at least one is free.
            None => pool
                .addresses(taken.len() + 1)
                .into_iter()
                .find(|ip| !taken.contains(ip))
                .ok_or_else(|| {
                    DomainError::Conflict(format!(
                        "elastic IP pool {} has no free address left",
                        pool.id
                    ))
                })?,
        };
        if input.ipv4.is_some_and(|v4| v4 != address.is_ipv4()) {
            return Err(DomainError::invalid(
                Field::FixedIp,
                format!(
                    "ip_version: elastic IP pool {} hands out {address}, of the other IP version",
                    pool.id
                ),
            )
            .into());
        }
        let now = Timestamp::now();
        let eip = Eip {
            id: EipId::new(),
            project_id: project.clone(),
            pool_id: pool.id,
            address,
            name: input.name,
            port_id: None,
            bandwidth: input.bandwidth,
            created_at: now,
            updated_at: now,
        };
        tx.put_eip(&eip).await?;
        match input.port_id {
            // In the creating transaction: a refused association allocates nothing.
            Some(port) => {
                let update = EipUpdate {
                    name: None,
                    port_id: Some(Some(port)),
                };
                self.eip_update(eip.id, update).await
            }
            None => Ok(eip),
        }
    }

    /// Renames, associates with a port of the project (one EIP per port) or dissociates.
    pub async fn eip_update(&mut self, id: EipId, input: EipUpdate) -> ServiceResult<Eip> {
        let project = &self.actor.project.clone();
        let tx = &mut *self.tx;
        let mut eip = tx
            .get_eip(project, id)
            .await?
            .ok_or_else(|| DomainError::not_found(ResourceKind::Eip, id))?;
        if let Some(port) = input.port_id {
            if let Some(port) = port {
                if tx.get_port(project, port).await?.is_none() {
                    return Err(DomainError::not_found(ResourceKind::Port, port).into());
                }
                if let Some(other) = tx.eips_of_port(port).await?.into_iter().find(|e| *e != id) {
                    return Err(DomainError::Conflict(format!(
                        "port {port} is already associated with elastic IP {other}; dissociate it first"
                    ))
                    .into());
                }
            }
            eip.port_id = port;
        }
        if let Some(name) = input.name {
            eip.name = name;
        }
        eip.updated_at = Timestamp::now();
        tx.put_eip(&eip).await?;
        Ok(eip)
    }

    /// Releases an EIP that no session mirrors.
    pub async fn eip_delete(&mut self, id: EipId) -> ServiceResult<()> {
        let project = &self.actor.project.clone();
        let tx = &mut *self.tx;
        if tx.get_eip(project, id).await?.is_none() {
            return Err(DomainError::not_found(ResourceKind::Eip, id).into());
        }
        if let Some(by) = tx.sessions_with_eip_source(id).await?.first() {
            return Err(DomainError::InUse {
                kind: ResourceKind::Eip,
                id: id.to_string(),
                by: by.to_string(),
            }
            .into());
        }
        tx.delete_eip(project, id).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(host: &str, iface: &str) -> EipPoolPut {
        EipPoolPut {
            id: "5_bgp".into(),
            cidrs: vec!["198.51.100.0/24".parse().unwrap()],
            host_id: host.into(),
            interface_name: iface.into(),
        }
    }

    #[test]
    fn a_pool_binding_names_both_host_and_interface_or_neither() {
        assert!(check_pool(&put("gw-1", "eth0")).is_ok());
        assert!(check_pool(&put("", "")).is_ok());
        assert!(check_pool(&put("gw-1", "")).is_err());
        assert!(check_pool(&put("", "eth0")).is_err());
        assert!(check_pool(&put("gw-1", "a-name-far-too-long")).is_err());
        let mut empty = put("", "");
        empty.cidrs.clear();
        assert!(check_pool(&empty).is_err());
    }
}
