//! Ports: the elastic network interfaces sessions mirror from and to.

use rand::Rng;
use tmirror_model::*;
use tmirror_store::{ListQuery, Page, PortField};

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

/// In the caller's transaction; [`Service`] runs each in one of its own.
impl Writer<'_> {
    pub async fn port_create(
        &mut self,
        project: &ProjectId,
        input: PortCreate,
    ) -> ServiceResult<Port> {
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
        tx.put_port(&port).await?;
        Ok(port)
    }

    pub async fn port_update(
        &mut self,
        project: &ProjectId,
        id: PortId,
        input: PortUpdate,
    ) -> ServiceResult<Port> {
        if let Some(p) = &input.binding_profile {
            check_interface_name(p)?;
        }
        let tx = &mut *self.tx;
        let mut port = tx
            .get_port(project, id)
            .await?
            .ok_or_else(|| DomainError::not_found(ResourceKind::Port, id))?;
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
        if let Some(v) = input.host_id {
            port.status = status_for(&v);
            port.host_id = v;
        }
        if let Some(v) = input.binding_profile {
            port.binding_profile = v;
        }
        port.updated_at = Timestamp::now();
        tx.put_port(&port).await?;
        Ok(port)
    }

    /// Deleting a port that a session uses (as a source or as its target) is refused: the
    /// session would silently stop mirroring. Remove it from the session first.
    pub async fn port_delete(&mut self, project: &ProjectId, id: PortId) -> ServiceResult<()> {
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
        tx.delete_port(project, id).await?;
        Ok(())
    }
}
