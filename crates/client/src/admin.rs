//! Typed client for the admin API (`/admin/v1`, see `docs/admin-api.md`): projects,
//! credentials, enrolled hosts, networks and port bindings.
//!
//! Requests are signed exactly like the Huawei face's (the same [`Client`] underneath), with
//! a credential of the operator, or of a project's admin for that project's own credentials.
//! Errors come back as [`ClientError::Api`] with the admin API's `code` (`Forbidden`,
//! `NotFound`, `Conflict`, ...) as `error_code`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tmirror_client::{AdminClient, Credentials, ProjectCreate, Role};
//!
//! let file = Credentials::load("tmirror-data/admin-credentials.json")?;
//! let admin = AdminClient::new(file.endpoint.as_deref().unwrap_or("http://127.0.0.1:9696"),
//!                              file.credentials)?;
//! let project = admin.project_create(&ProjectCreate::named("acme")).await?;
//! let key = admin.credential_create(&project.id, Role::Member).await?;
//! // What a tenant puts in its credentials file:
//! std::fs::write("acme.json", serde_json::to_vec_pretty(&key.file())?)?;
//! let host = admin.host_create("hv-1").await?;
//! std::fs::write("hv-1.json", serde_json::to_vec_pretty(&host)?)?;
//! # Ok(()) }
//! ```

use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Serialize};
pub use tmirror_model::Role;

use crate::{BindingProfile, CaptureSide, Client, ClientError, Credentials, Extra};

/// A client of the admin API for one endpoint and one credential. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AdminClient {
    client: Client,
}

impl From<Client> for AdminClient {
    fn from(client: Client) -> Self {
        AdminClient { client }
    }
}

// ---------------------------------------------------------------------------------------------
// Wire types

/// Per-project overrides of the server's default quotas; `None` takes the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Quotas {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<u32>,
}

/// What a project holds (in [`AdminClient::project_show`]'s answer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProjectUsage {
    pub ports: u64,
    pub filters: u64,
    pub sessions: u64,
    pub networks: u64,
    pub credentials: u64,
    pub load_balancers: u64,
}

/// A project (tenant).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// 32 lower-case hex digits: the Huawei `project_id`, the Alibaba account.
    pub id: String,
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
    #[serde(default)]
    pub quotas: Quotas,
    /// Only in [`AdminClient::project_show`]'s answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ProjectUsage>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Body of create project.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProjectCreate {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quotas: Option<Quotas>,
}

impl ProjectCreate {
    /// A project named `name` with the server's default quotas.
    pub fn named(name: impl Into<String>) -> Self {
        ProjectCreate {
            name: name.into(),
            quotas: None,
        }
    }
}

/// Body of update project: only what changes. `quotas`, when given, replaces the project's
/// whole set of overrides (an absent quota goes back to the server's default).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProjectUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quotas: Option<Quotas>,
}

/// A credential as listed: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub access_key: String,
    pub project_id: String,
    pub role: Role,
    pub enabled: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; `None` until a request is signed with it.
    #[serde(default)]
    pub last_used_at: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A credential just created, with its secret (shown this once) and the endpoint to use it on.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCredential {
    pub access_key: String,
    pub secret_key: String,
    pub project_id: String,
    /// `http://host:port` of the server, as the request reached it.
    pub endpoint: String,
    pub role: Role,
    pub enabled: bool,
    pub created_at: String,
    #[serde(default)]
    pub last_used_at: Option<String>,
}

impl NewCredential {
    /// The credentials file contents, `{"access_key", "secret_key", "project_id",
    /// "endpoint"}`: the shape of `admin-credentials.json`, which the CLI's
    /// `--credentials-file`, [`Credentials::load`] and the SDKs' samples read.
    pub fn file(&self) -> CredentialFile {
        CredentialFile {
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            project_id: self.project_id.clone(),
            endpoint: self.endpoint.clone(),
        }
    }

    /// The credential to sign with.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            project_id: self.project_id.clone(),
        }
    }
}

impl fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewCredential")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("project_id", &self.project_id)
            .field("endpoint", &self.endpoint)
            .field("role", &self.role)
            .finish()
    }
}

/// A credentials file, exactly `{"access_key", "secret_key", "project_id", "endpoint"}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialFile {
    pub access_key: String,
    pub secret_key: String,
    pub project_id: String,
    pub endpoint: String,
}

impl fmt::Debug for CredentialFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialFile")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("project_id", &self.project_id)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// What an enrolled host's agent last reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAgent {
    pub registered_at: String,
    pub last_seen: String,
    /// Whether the agent was seen recently enough to count as connected.
    pub connected: bool,
    pub applied_generation: u64,
    /// Revisions the host's applied desired state is behind the current one.
    #[serde(default)]
    pub lag: Option<u64>,
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// The agent's counters as it last reported them (see [`HostAgent::interface_status`]).
    #[serde(default)]
    pub counters: serde_json::Value,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One source interface of a host, from its agent's last report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceStatus {
    pub interface: String,
    /// `capturing`, `waiting for interface`, `no sender`, `stopped` or `starting`.
    pub state: String,
    pub captured: u64,
    pub mirrored: u64,
    pub not_mirrored: u64,
    /// Frames the kernel dropped because the capture ring was full.
    pub ring_drops: u64,
    /// Selected copies that could not be sent.
    pub send_drops: u64,
}

impl InterfaceStatus {
    pub fn drops(&self) -> u64 {
        self.ring_drops + self.send_drops
    }
}

impl HostAgent {
    /// The source interfaces the agent reported, by name (none if it reported no counters).
    pub fn interface_status(&self) -> Vec<InterfaceStatus> {
        let Some(all) = self.counters["interfaces"].as_object() else {
            return Vec::new();
        };
        all.iter()
            .map(|(name, c)| {
                let n = |key: &str| c[key].as_u64().unwrap_or(0);
                InterfaceStatus {
                    interface: name.clone(),
                    state: c["state"].as_str().unwrap_or("unknown").to_owned(),
                    captured: n("captured"),
                    mirrored: n("mirrored"),
                    not_mirrored: n("not_mirrored"),
                    ring_drops: n("ring_drops"),
                    send_drops: n("send_drops"),
                }
            })
            .collect()
    }
}

/// A session's delivery: on each host that captures one of its sources, the copies sent
/// and whether the host applied the session's last change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub session_id: String,
    pub project_id: String,
    pub enabled: bool,
    /// The Alibaba face's lifecycle state (`Created`, `Creating`, `Modifying`).
    pub state: String,
    pub revision: u64,
    pub applied_everywhere: bool,
    pub copies_per_second: f64,
    pub bytes_per_second: f64,
    pub hosts: Vec<HostDelivery>,
}

/// One host's part in a [`Delivery`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostDelivery {
    pub host_id: String,
    pub connected: bool,
    /// `None` while the host's agent never registered.
    pub applied_generation: Option<u64>,
    pub applied: bool,
    /// Since the agent started.
    pub copies: u64,
    pub bytes: u64,
    /// Over the agent's last reporting interval.
    pub copies_per_second: f64,
    pub bytes_per_second: f64,
}

/// An enrolled agent host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub host_id: String,
    pub enabled: bool,
    pub created_at: String,
    /// Absent until the host's agent registers (and in create/rotate/enable answers).
    #[serde(default)]
    pub agent: Option<HostAgent>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The credential a host's agent uses: the contents of the file `tmirror agent` reads,
/// `{"host_id", "token", "endpoint"}`. Shown once, on create and on rotate.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCredential {
    pub host_id: String,
    pub token: String,
    /// `http://host:port` of the server, as the request reached it.
    pub endpoint: String,
}

impl fmt::Debug for HostCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostCredential")
            .field("host_id", &self.host_id)
            .field("token", &"<redacted>")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// A network: address space given to one project, or shared with all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// The owner; `None` when shared.
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub shared: bool,
    pub cidrs: Vec<String>,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An elastic IP pool: public addresses and the gateway host interface they live on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EipPool {
    pub id: String,
    pub cidrs: Vec<String>,
    /// "" while bound to no gateway.
    #[serde(default)]
    pub host_id: String,
    #[serde(default)]
    pub interface_name: String,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Body of put EIP pool: its addresses and gateway binding (both or neither of `host_id`
/// and `interface_name`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EipPoolPut {
    pub cidrs: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
}

/// Body of create network: give `project_id`, or `shared: true`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NetworkCreate {
    /// `None`: the server makes a `net-…` id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    pub cidrs: Vec<String>,
}

/// Body of set port binding. An empty `host_id` unbinds the port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortBinding {
    pub host_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_side: Option<CaptureSide>,
}

/// A port's binding after a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundPort {
    pub id: String,
    pub project_id: String,
    /// Empty when unbound.
    #[serde(default)]
    pub host_id: String,
    #[serde(default)]
    pub profile: BindingProfile,
    pub status: String,
    #[serde(flatten)]
    pub extra: Extra,
}

// Envelopes.
#[derive(Deserialize)]
struct ProjectReply {
    project: Project,
}
#[derive(Deserialize)]
struct ProjectList {
    projects: Vec<Project>,
}
#[derive(Serialize)]
struct RoleBody {
    role: Role,
}
#[derive(Deserialize)]
struct NewCredentialReply {
    credential: NewCredential,
}
#[derive(Deserialize)]
struct CredentialReply {
    credential: Credential,
}
#[derive(Deserialize)]
struct CredentialList {
    credentials: Vec<Credential>,
}
#[derive(Serialize)]
struct HostBody<'a> {
    host_id: &'a str,
}
#[derive(Deserialize)]
struct HostCredentialReply {
    credential: HostCredential,
}
#[derive(Deserialize)]
struct HostReply {
    host: Host,
}
#[derive(Deserialize)]
struct DeliveryReply {
    delivery: Delivery,
}
#[derive(Deserialize)]
struct HostList {
    hosts: Vec<Host>,
}
#[derive(Deserialize)]
struct NetworkReply {
    network: Network,
}
#[derive(Deserialize)]
struct NetworkList {
    networks: Vec<Network>,
}
#[derive(Deserialize)]
struct EipPoolReply {
    eip_pool: EipPool,
}
#[derive(Deserialize)]
struct EipPoolList {
    eip_pools: Vec<EipPool>,
}
#[derive(Deserialize)]
struct BoundPortReply {
    port: BoundPort,
}

const ADMIN: [&str; 2] = ["admin", "v1"];

/// `/admin/v1/` followed by `rest`.
fn path<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    ADMIN.iter().copied().chain(rest.iter().copied()).collect()
}

impl AdminClient {
    /// A client for `endpoint` (`http://host:port`), signing with `credentials`.
    pub fn new(endpoint: &str, credentials: Credentials) -> Result<AdminClient, ClientError> {
        Ok(AdminClient {
            client: Client::new(endpoint, credentials)?,
        })
    }

    /// The endpoint as given.
    pub fn endpoint(&self) -> &str {
        self.client.endpoint()
    }

    /// The project of the credential this client signs with.
    pub fn project_id(&self) -> &str {
        self.client.project_id()
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, rest: &[&str]) -> Result<T, ClientError> {
        self.client.call(Method::GET, &path(rest), &[], None).await
    }

    async fn with_body<T: serde::de::DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        rest: &[&str],
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let bytes = body.and_then(|b| Client::json(b));
        self.client.call(method, &path(rest), &[], bytes).await
    }

    async fn post<T: serde::de::DeserializeOwned>(&self, rest: &[&str]) -> Result<T, ClientError> {
        self.with_body::<T, ()>(Method::POST, rest, None).await
    }

    async fn delete(&self, rest: &[&str]) -> Result<(), ClientError> {
        self.client.call_empty(&path(rest)).await
    }

    // -----------------------------------------------------------------------------------------
    // Projects (operator; an admin may show its own)

    /// `POST /admin/v1/projects` (201).
    pub async fn project_create(&self, p: &ProjectCreate) -> Result<Project, ClientError> {
        let r: ProjectReply = self.with_body(Method::POST, &["projects"], Some(p)).await?;
        Ok(r.project)
    }

    /// `GET /admin/v1/projects`.
    pub async fn project_list(&self) -> Result<Vec<Project>, ClientError> {
        let r: ProjectList = self.get(&["projects"]).await?;
        Ok(r.projects)
    }

    /// `GET /admin/v1/projects/{id}`, with its usage.
    pub async fn project_show(&self, id: &str) -> Result<Project, ClientError> {
        let r: ProjectReply = self.get(&["projects", id]).await?;
        Ok(r.project)
    }

    /// `PATCH /admin/v1/projects/{id}`.
    pub async fn project_update(
        &self,
        id: &str,
        u: &ProjectUpdate,
    ) -> Result<Project, ClientError> {
        let r: ProjectReply = self
            .with_body(Method::PATCH, &["projects", id], Some(u))
            .await?;
        Ok(r.project)
    }

    /// `DELETE /admin/v1/projects/{id}` (204); refused (409) while the project holds ports,
    /// filters, sessions, networks or credentials.
    pub async fn project_delete(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&["projects", id]).await
    }

    // -----------------------------------------------------------------------------------------
    // Credentials (operator; a project's admin for its own project, roles below operator)

    /// `POST /admin/v1/projects/{id}/credentials` (201): the only time the secret is shown.
    pub async fn credential_create(
        &self,
        project_id: &str,
        role: Role,
    ) -> Result<NewCredential, ClientError> {
        let r: NewCredentialReply = self
            .with_body(
                Method::POST,
                &["projects", project_id, "credentials"],
                Some(&RoleBody { role }),
            )
            .await?;
        Ok(r.credential)
    }

    /// `GET /admin/v1/projects/{id}/credentials`, without secrets, oldest first.
    pub async fn credential_list(&self, project_id: &str) -> Result<Vec<Credential>, ClientError> {
        let r: CredentialList = self.get(&["projects", project_id, "credentials"]).await?;
        Ok(r.credentials)
    }

    /// `POST /admin/v1/credentials/{ak}/disable`: refused at once by every server.
    pub async fn credential_disable(&self, access_key: &str) -> Result<Credential, ClientError> {
        let r: CredentialReply = self.post(&["credentials", access_key, "disable"]).await?;
        Ok(r.credential)
    }

    /// `POST /admin/v1/credentials/{ak}/enable`.
    pub async fn credential_enable(&self, access_key: &str) -> Result<Credential, ClientError> {
        let r: CredentialReply = self.post(&["credentials", access_key, "enable"]).await?;
        Ok(r.credential)
    }

    /// `DELETE /admin/v1/credentials/{ak}` (204).
    pub async fn credential_delete(&self, access_key: &str) -> Result<(), ClientError> {
        self.delete(&["credentials", access_key]).await
    }

    // -----------------------------------------------------------------------------------------
    // Hosts (operator)

    /// `POST /admin/v1/hosts` (201): enrols `host_id` and answers its agent's credential,
    /// shown this once.
    pub async fn host_create(&self, host_id: &str) -> Result<HostCredential, ClientError> {
        let r: HostCredentialReply = self
            .with_body(Method::POST, &["hosts"], Some(&HostBody { host_id }))
            .await?;
        Ok(r.credential)
    }

    /// `GET /admin/v1/hosts`, each with what its agent last reported.
    pub async fn host_list(&self) -> Result<Vec<Host>, ClientError> {
        let r: HostList = self.get(&["hosts"]).await?;
        Ok(r.hosts)
    }

    /// `GET /admin/v1/projects/{project}/sessions/{session}/delivery`: the operator's for
    /// any project, any role's of its own.
    pub async fn session_delivery(
        &self,
        project: &str,
        session: &str,
    ) -> Result<Delivery, ClientError> {
        let r: DeliveryReply = self
            .get(&["projects", project, "sessions", session, "delivery"])
            .await?;
        Ok(r.delivery)
    }

    /// `GET /admin/v1/hosts/{id}`.
    pub async fn host_show(&self, host_id: &str) -> Result<Host, ClientError> {
        let r: HostReply = self.get(&["hosts", host_id]).await?;
        Ok(r.host)
    }

    /// `POST /admin/v1/hosts/{id}/disable`: its agent is refused until enabled.
    pub async fn host_disable(&self, host_id: &str) -> Result<Host, ClientError> {
        let r: HostReply = self.post(&["hosts", host_id, "disable"]).await?;
        Ok(r.host)
    }

    /// `POST /admin/v1/hosts/{id}/enable`.
    pub async fn host_enable(&self, host_id: &str) -> Result<Host, ClientError> {
        let r: HostReply = self.post(&["hosts", host_id, "enable"]).await?;
        Ok(r.host)
    }

    /// `POST /admin/v1/hosts/{id}/rotate`: a new token; the old one stops working.
    pub async fn host_rotate(&self, host_id: &str) -> Result<HostCredential, ClientError> {
        let r: HostCredentialReply = self.post(&["hosts", host_id, "rotate"]).await?;
        Ok(r.credential)
    }

    /// `DELETE /admin/v1/hosts/{id}` (204).
    pub async fn host_delete(&self, host_id: &str) -> Result<(), ClientError> {
        self.delete(&["hosts", host_id]).await
    }

    // -----------------------------------------------------------------------------------------
    // Networks (operator)

    /// `POST /admin/v1/networks` (201); refused (409) if a CIDR overlaps another network's.
    pub async fn network_create(&self, n: &NetworkCreate) -> Result<Network, ClientError> {
        let r: NetworkReply = self.with_body(Method::POST, &["networks"], Some(n)).await?;
        Ok(r.network)
    }

    /// `GET /admin/v1/networks`.
    pub async fn network_list(&self) -> Result<Vec<Network>, ClientError> {
        let r: NetworkList = self.get(&["networks"]).await?;
        Ok(r.networks)
    }

    /// `DELETE /admin/v1/networks/{id}` (204); refused (409) while ports use it.
    pub async fn network_delete(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&["networks", id]).await
    }

    // -----------------------------------------------------------------------------------------
    // Elastic IP pools (operator)

    /// `PUT /admin/v1/eip-pools/{id}`: creates or replaces a pool and its gateway binding;
    /// refused (409) if a CIDR overlaps another pool's or leaves out one of its EIPs.
    pub async fn eip_pool_put(&self, id: &str, b: &EipPoolPut) -> Result<EipPool, ClientError> {
        let r: EipPoolReply = self
            .with_body(Method::PUT, &["eip-pools", id], Some(b))
            .await?;
        Ok(r.eip_pool)
    }

    /// `GET /admin/v1/eip-pools`.
    pub async fn eip_pool_list(&self) -> Result<Vec<EipPool>, ClientError> {
        let r: EipPoolList = self.get(&["eip-pools"]).await?;
        Ok(r.eip_pools)
    }

    /// `DELETE /admin/v1/eip-pools/{id}` (204); refused (409) while EIPs use it.
    pub async fn eip_pool_delete(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&["eip-pools", id]).await
    }

    // -----------------------------------------------------------------------------------------
    // Port bindings (operator)

    /// `PUT /admin/v1/ports/{id}/binding`: binds any project's port to a host interface.
    pub async fn port_bind(
        &self,
        port_id: &str,
        b: &PortBinding,
    ) -> Result<BoundPort, ClientError> {
        let r: BoundPortReply = self
            .with_body(Method::PUT, &["ports", port_id, "binding"], Some(b))
            .await?;
        Ok(r.port)
    }

    /// Unbinds a port: `PUT /admin/v1/ports/{id}/binding` with an empty host.
    pub async fn port_unbind(&self, port_id: &str) -> Result<BoundPort, ClientError> {
        self.port_bind(port_id, &PortBinding::default()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_only_what_is_set() {
        let n = NetworkCreate {
            project_id: Some("p".into()),
            cidrs: vec!["10.0.0.0/24".into()],
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"{"project_id":"p","cidrs":["10.0.0.0/24"]}"#
        );
        let u = ProjectUpdate {
            quotas: Some(Quotas {
                sessions: Some(3),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            r#"{"quotas":{"sessions":3}}"#
        );
        assert_eq!(
            serde_json::to_string(&PortBinding::default()).unwrap(),
            r#"{"host_id":""}"#
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_and_the_file_has_four_keys() {
        let c: NewCredential = serde_json::from_str(
            r#"{"access_key":"AK","secret_key":"very-secret","project_id":"p","endpoint":"http://h:1",
                "role":"member","enabled":true,"created_at":"t","last_used_at":null}"#,
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("very-secret"));
        assert!(!format!("{:?}", c.file()).contains("very-secret"));
        let file: serde_json::Value = serde_json::to_value(c.file()).unwrap();
        let mut keys: Vec<_> = file.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["access_key", "endpoint", "project_id", "secret_key"]);
        let h = HostCredential {
            host_id: "h".into(),
            token: "tmh_secret".into(),
            endpoint: "http://h:1".into(),
        };
        assert!(!format!("{h:?}").contains("tmh_secret"));
    }
}
