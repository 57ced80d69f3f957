//! Ports: the elastic network interfaces sessions mirror from and to.

use rand::Rng;
use tmirror_model::*;
use tmirror_store::{ListQuery, Page, PortField, WriteTx};

use super::{Service, ServiceResult, Writer};

/// A new port.
#[derive(Clone, Debug, Default)]
pub struct PortCreate {
    pub name: String,
    pub network_id: String,
    pub fixed_ips: Vec<FixedIp>,
    pub device_id: String,
    pub device_owner: String,
    pub security_groups: Vec<String>,
    pub host_id: String,
    pub binding_profile: BindingProfile,
}

/// Changes to a port; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct PortUpdate {
    pub name: Option<String>,
    pub security_groups: Option<Vec<String>>,
    pub device_id: Option<String>,
    pub device_owner: Option<String>,
    pub host_id: Option<String>,
    pub binding_profile: Option<BindingProfile>,
    /// Accepted only when the addresses are the port's own: see [`Writer::port_update`].
    pub fixed_ips: Option<Vec<FixedIp>>,
}

/// A MAC address in OpenStack's locally administered range `fa:16:3e`, as Huawei assigns.
fn random_mac() -> String {
    let b: [u8; 3] = rand::thread_rng().gen();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

/// A bound port is up; an unbound one is down, as in Neutron.
fn status_for(host_id: &str) -> String {
    if host_id.is_empty() { "DOWN" } else { "ACTIVE" }.to_owned()
}

fn check_interface_name(profile: &BindingProfile) -> ServiceResult<()> {
    if let Some(name) = &profile.interface_name {
        // Linux interface names: 1-15 bytes, no '/', no whitespace.
        if name.is_empty()
            || name.len() > 15
            || name.contains('/')
            || name.contains(char::is_whitespace)
        {
            return Err(DomainError::invalid(
                Field::InterfaceName,
                "must be a Linux interface name: 1 to 15 characters, no '/' or spaces",
            )
            .into());
        }
    }
    Ok(())
}

impl Service {
    pub async fn port_show(&self, project: &ProjectId, id: PortId) -> ServiceResult<Port> {
        let mut r = self.store.read().await?;
        r.get_port(project, id)
            .await?
            .ok_or_else(|| DomainError::not_found(ResourceKind::Port, id).into())
    }

    pub async fn port_list(
        &self,
        project: &ProjectId,
        q: &ListQuery<PortField>,
    ) -> ServiceResult<Page<Port>> {
        let mut r = self.store.read().await?;
        Ok(r.list_ports(project, q).await?)
    }
}

/// The network rules of a new port's addresses (see `docs/security.md`, "Addresses"): its
/// network is the project's (a network named for the first time becomes the project's) or
/// shared; its fixed IPs lie in the network's CIDRs if it has any, in no other network's, and
/// no other port of the network or of another project holds them. So an address copies can
/// be sent to belongs to one project.
async fn claim_addresses(tx: &mut dyn WriteTx, port: &Port) -> ServiceResult<()> {
    let project = &port.project_id;
    let network = match tx.network(&port.network_id).await? {
        Some(n) if n.usable_by(project) => n,
        // Said the same way whether the network is another project's or not there.
        Some(_) => {
            return Err(DomainError::invalid(
                Field::NetworkId,
                format!(
                "{:?} is another project's network: use one of your own, a shared one, or a new id",
                port.network_id
            ),
            )
            .into())
        }
        None => {
            let n = Network {
                id: port.network_id.clone(),
                name: String::new(),
                project_id: Some(project.clone()),
                cidrs: Vec::new(),
                created_at: port.created_at.0,
            };
            tx.put_network(&n).await?;
            n
        }
    };
    let others: Vec<Network> = tx
        .networks()
        .await?
        .into_iter()
        .filter(|n| n.id != network.id && !n.cidrs.is_empty())
        .collect();
    for ip in port.fixed_ips.iter().map(|f| f.ip_address) {
        if !network.cidrs.is_empty() && !network.contains(&ip) {
            return Err(DomainError::invalid(
                Field::FixedIp,
                format!("{ip} is not in the CIDRs of network {}", network.id),
            )
            .into());
        }
        if let Some(owner) = others.iter().find(|n| n.contains(&ip)) {
            return Err(DomainError::invalid(
                Field::FixedIp,
                format!(
                    "{ip} belongs to the address space of network {}; create the port there",
                    if owner.usable_by(project) {
                        owner.id.as_str()
                    } else {
                        "of another project"
                    }
                ),
            )
            .into());
        }
        let holders = tx.ports_with_ip(&ip.to_string()).await?;
        if holders
            .iter()
            .any(|p| p.id != port.id && (p.network_id == network.id || &p.project_id != project))
        {
            return Err(DomainError::Conflict(format!(
                "IP address {ip} is already in use; choose another address"
            ))
            .into());
        }
    }
    Ok(())
}

/// One host interface belongs to at most one port: a bound port's interface is not named by
/// another port on the same host, nor by an unbound one (which any host may capture by name).
async fn check_interface_free(tx: &mut dyn WriteTx, port: &Port) -> ServiceResult<()> {
    let Some(name) = &port.binding_profile.interface_name else {
        return Ok(());
    };
    let taken = tx
        .ports_with_interface(name)
        .await?
        .into_iter()
        .any(|other| {
            other.id != port.id
                && (other.host_id == port.host_id
                    || other.host_id.is_empty()
                    || port.host_id.is_empty())
        });
    if taken {
        return Err(DomainError::Conflict(format!(
            "interface {name} is already bound to another port{}",
            if port.host_id.is_empty() {
                String::new()
            } else {
                format!(" on host {}", port.host_id)
            }
        ))
        .into());
    }
    Ok(())
}

/// Sets a port's host binding, checked: a Linux interface name, free on that host.
pub(super) async fn bind_port(
    tx: &mut dyn WriteTx,
    mut port: Port,
    host_id: String,
    profile: BindingProfile,
) -> ServiceResult<Port> {
    check_interface_name(&profile)?;
    port.status = status_for(&host_id);
    port.host_id = host_id;
    port.binding_profile = profile;
    port.updated_at = Timestamp::now();
    check_interface_free(tx, &port).await?;
    tx.put_port(&port).await?;
    Ok(port)
}

/// In the caller's transaction; [`Service`] runs each in one of its own.
impl Writer<'_> {
    /// Host bindings steer which packets a host copies: only the operator sets them (as in
    /// Neutron, whose default policy makes `binding:*` admin-only).
    fn check_binds(&self) -> ServiceResult<()> {
        if self.actor.role.may_bind() {
            return Ok(());
        }
        Err(DomainError::Forbidden(
            "only the operator may set binding:host_id and binding:profile".into(),
        )
        .into())
    }

    pub async fn port_create(&mut self, input: PortCreate) -> ServiceResult<Port> {
        let project = &self.actor.project.clone();
        if !input.host_id.is_empty() || input.binding_profile != BindingProfile::default() {
            self.check_binds()?;
        }
        check_interface_name(&input.binding_profile)?;
        self.check_room(project, ResourceKind::Port, Quota::PortsPerProject)
            .await?;
        let now = Timestamp::now();
        let port = Port {
            id: PortId::new(),
            project_id: project.clone(),
            name: input.name,
            network_id: input.network_id,
            admin_state_up: true,
            mac_address: random_mac(),
            fixed_ips: input.fixed_ips,
            device_id: input.device_id,
            device_owner: input.device_owner,
            status: status_for(&input.host_id),
            security_groups: input.security_groups,
            host_id: input.host_id,
            binding_profile: input.binding_profile,
            created_at: now,
            updated_at: now,
        };
        let tx = &mut *self.tx;
        claim_addresses(tx, &port).await?;
        check_interface_free(tx, &port).await?;
        tx.put_port(&port).await?;
        Ok(port)
    }

    pub async fn port_update(&mut self, id: PortId, input: PortUpdate) -> ServiceResult<Port> {
        let project = &self.actor.project.clone();
        if input.host_id.is_some() || input.binding_profile.is_some() {
            self.check_binds()?;
        }
        if let Some(p) = &input.binding_profile {
            check_interface_name(p)?;
        }
        let tx = &mut *self.tx;
        let mut port = tx
            .get_port(project, id)
            .await?
            .ok_or_else(|| DomainError::not_found(ResourceKind::Port, id))?;
        // A port keeps its fixed IPs for its life: the rules that compare addresses were
        // checked against them when they applied (a member is never a source of its load
        // balancer's sessions; a target has an address; a member's address is the project's)
        // and an address that changed under them would break those rules unseen.
        if let Some(ips) = &input.fixed_ips {
            let given = ips.iter().map(|f| f.ip_address);
            if !given.eq(port.fixed_ips.iter().map(|f| f.ip_address)) {
                return Err(DomainError::invalid(
                    Field::FixedIp,
                    "a port's fixed IPs cannot be changed; create a port with the new address",
                )
                .into());
            }
        }
        if let Some(v) = input.name {
            port.name = v;
        }
        if let Some(v) = input.security_groups {
            port.security_groups = v;
        }
        if let Some(v) = input.device_id {
            port.device_id = v;
        }
        if let Some(v) = input.device_owner {
            port.device_owner = v;
        }
        if input.host_id.is_some() || input.binding_profile.is_some() {
            let host = input.host_id.unwrap_or_else(|| port.host_id.clone());
            let profile = input
                .binding_profile
                .unwrap_or_else(|| port.binding_profile.clone());
            return bind_port(tx, port, host, profile).await;
        }
        port.updated_at = Timestamp::now();
        tx.put_port(&port).await?;
        Ok(port)
    }

    /// Deleting a port that a session uses (as a source or as its target) is refused: the
    /// session would silently stop mirroring. Remove it from the session first.
    pub async fn port_delete(&mut self, id: PortId) -> ServiceResult<()> {
        let project = &self.actor.project.clone();
        let tx = &mut *self.tx;
        if tx.get_port(project, id).await?.is_none() {
            return Err(DomainError::not_found(ResourceKind::Port, id).into());
        }
        let mut users = tx.sessions_with_source(id).await?;
        users.extend(tx.sessions_with_target(id).await?);
        if let Some(by) = users.first() {
            return Err(DomainError::InUse {
                kind: ResourceKind::Port,
                id: id.to_string(),
                by: by.to_string(),
            }
            .into());
        }
        // As Neutron does with floating IPs: the port's EIP stays, dissociated.
        for eip in tx.eips_of_port(id).await? {
            if let Some(mut e) = tx.get_eip(project, eip).await? {
                e.port_id = None;
                e.updated_at = Timestamp::now();
                tx.put_eip(&e).await?;
            }
        }
        tx.delete_port(project, id).await?;
        Ok(())
    }
}
