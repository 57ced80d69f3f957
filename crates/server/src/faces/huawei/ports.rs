//! `/v1/{project_id}/ports`: the ENIs sessions use. Errors use the v1 body `{"code", "message"}`;
//! lists have no `page_info` and no `request_id`, as in Huawei's v1 API.
//!
//! Besides Huawei's fields, a port takes two binding attributes the data plane uses:
//! `binding:host_id` (the agent host) and `binding:profile`
//! `{"interface_name", "capture_side": "host" | "guest"}`.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use tmirror_model::*;
use tmirror_store::{Condition, PortField, Value};
use utoipa::ToSchema;

use super::doc::{self, LenientBoolean, PortPath, ProjectPath, V1Error, V3Error};
use super::error::{from_service, invalid};
use super::input;
use super::query::{list_query, Kind, Query, MAX_LIMIT};
use super::views::{body, PortListReply, PortReply, PortView};
use super::{path_id, V1};
use crate::auth::Caller;
use crate::http::{ApiError, RequestId};
use crate::service::{PortCreate, PortUpdate};
use crate::AppState;

/// The collection path, as in the annotations below.
pub(super) const COLLECTION: &str = "/v1/{project_id}/ports";

/// `{"port": CreatePortOption}`.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreatePortRequestBody)]
struct CreateBody {
    port: CreateOption,
}

/// `{"port": UpdatePortOption}`.
#[derive(Deserialize, ToSchema)]
#[schema(as = UpdatePortRequestBody)]
struct UpdateBody {
    port: UpdateOption,
}

/// A fixed IP of a new port.
#[derive(Deserialize, ToSchema)]
#[schema(as = FixedIpOption)]
struct FixedIpOption {
    /// Subnet id, recorded as given.
    #[serde(default)]
    subnet_id: Option<String>,
    /// The IP address (IPv4 or IPv6); required, since tmirror has no IPAM.
    #[serde(default)]
    #[schema(example = "192.168.0.10")]
    ip_address: Option<String>,
}

/// `binding:profile`: where the data plane captures the port's traffic.
#[derive(Deserialize, ToSchema)]
#[schema(as = BindingProfileOption)]
struct ProfileOption {
    /// Name of the interface on the agent host; absent or `""` for none.
    #[serde(default)]
    #[schema(example = "tap0")]
    interface_name: Option<String>,
    /// `host` (the default; also for absent or `""`) or `guest`.
    #[serde(default)]
    #[schema(example = "host")]
    capture_side: Option<String>,
}

/// A new port.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreatePortOption)]
struct CreateOption {
    /// The network the port's subnet belongs to; required, not empty.
    network_id: String,
    /// 0–255 characters; default `""`.
    #[serde(default)]
    name: Option<String>,
    /// At most one fixed IP.
    #[serde(default)]
    fixed_ips: Option<Vec<FixedIpOption>>,
    /// `""` (the default), `neutron:VIP_PORT` or `compute:<zone>`.
    #[serde(default)]
    device_owner: Option<String>,
    /// The device (instance) id; default `""`.
    #[serde(default)]
    device_id: Option<String>,
    /// Security group ids, recorded as given.
    #[serde(default)]
    security_groups: Option<Vec<String>>,
    /// Only `true` is supported.
    #[serde(default, deserialize_with = "input::lenient_bool")]
    #[schema(value_type = Option<LenientBoolean>)]
    admin_state_up: Option<bool>,
    /// The agent host name that captures this port's traffic.
    #[serde(default, rename = "binding:host_id")]
    host_id: Option<String>,
    /// Where on the agent host the port's traffic is captured.
    #[serde(default, rename = "binding:profile")]
    profile: Option<ProfileOption>,
    /// Not supported: only an empty list is accepted.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    allowed_address_pairs: Option<Vec<serde_json::Value>>,
    /// Not supported: only an empty list is accepted.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    extra_dhcp_opts: Option<Vec<serde_json::Value>>,
}

/// Changes to a port; absent fields are left as they are. Fixed IPs cannot change.
#[derive(Deserialize, ToSchema)]
#[schema(as = UpdatePortOption)]
struct UpdateOption {
    /// 0–255 characters.
    name: Option<String>,
    /// Security group ids.
    security_groups: Option<Vec<String>>,
    /// `""`, `neutron:VIP_PORT` or `compute:<zone>`.
    device_owner: Option<String>,
    /// The device (instance) id.
    device_id: Option<String>,
    /// The agent host name that captures this port's traffic.
    #[serde(rename = "binding:host_id")]
    host_id: Option<String>,
    /// Where on the agent host the port's traffic is captured (replaces the whole profile).
    #[serde(rename = "binding:profile")]
    profile: Option<ProfileOption>,
    /// Accepted only as the port already has them (a client may send the whole port back);
    /// other addresses are refused.
    fixed_ips: Option<Vec<FixedIpOption>>,
    /// Not supported: only an empty list is accepted.
    #[schema(value_type = Option<Vec<Object>>)]
    allowed_address_pairs: Option<Vec<serde_json::Value>>,
    /// Not supported: only an empty list is accepted.
    #[schema(value_type = Option<Vec<Object>>)]
    extra_dhcp_opts: Option<Vec<serde_json::Value>>,
}

/// tmirror does not model address pairs or DHCP options; refusing them is better than
/// acknowledging and silently dropping them.
fn refuse_unsupported(
    pairs: &Option<Vec<serde_json::Value>>,
    dhcp: &Option<Vec<serde_json::Value>>,
) -> Result<(), ApiError> {
    for (field, v) in [("allowed_address_pairs", pairs), ("extra_dhcp_opts", dhcp)] {
        if v.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(invalid(
                V1,
                format!("{field}: not supported by tmirror; send an empty list or leave it out"),
            ));
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.chars().count() > 255 {
        return Err(invalid(V1, "name: at most 255 characters"));
    }
    Ok(())
}

/// Huawei lets callers set only `""` or `neutron:VIP_PORT`; tmirror also accepts
/// `compute:<zone>` so that operators can record which ports are VM interfaces.
fn check_device_owner(owner: &str) -> Result<(), ApiError> {
    if owner.is_empty() || owner == "neutron:VIP_PORT" || owner.starts_with("compute:") {
        Ok(())
    } else {
        Err(invalid(
            V1,
            format!(
                "device_owner: must be \"\", neutron:VIP_PORT or compute:<zone>, not {owner:?}"
            ),
        ))
    }
}

fn fixed_ips(list: Vec<FixedIpOption>) -> Result<Vec<FixedIp>, ApiError> {
    if list.len() > 1 {
        return Err(invalid(V1, "fixed_ips: a port has at most one fixed IP"));
    }
    list.into_iter()
        .map(|f| {
            let raw = f.ip_address.unwrap_or_default();
            let ip_address: IpAddr = raw.trim().parse().map_err(|_| {
                invalid(V1, format!("fixed_ips.ip_address: {raw:?} is not an IP address; tmirror has no IPAM, so give the address"))
            })?;
            Ok(FixedIp { subnet_id: f.subnet_id.unwrap_or_default(), ip_address })
        })
        .collect()
}

fn profile(p: ProfileOption) -> Result<BindingProfile, ApiError> {
    let capture_side = match p.capture_side.as_deref() {
        None | Some("") => CaptureSide::default(),
        Some(s) => s
            .parse()
            .map_err(|e: InvalidValue| invalid(V1, format!("binding:profile.{e}")))?,
    };
    Ok(BindingProfile {
        interface_name: p.interface_name.filter(|n| !n.is_empty()),
        capture_side,
    })
}

fn answer(status: StatusCode, p: &Port) -> Response {
    let reply = PortReply {
        port: PortView::from(p),
    };
    (status, body(&reply)).into_response()
}

/// Creates a port.
#[utoipa::path(
    post,
    path = "/v1/{project_id}/ports",
    operation_id = "create_port",
    tag = doc::PORTS,
    params(ProjectPath),
    request_body = CreateBody,
    responses(
        (status = 201, description = "The port was created, with status `DOWN` and a new MAC address.", body = PortReply),
        (status = 400, description = "Invalid request (`VPC.0101`).", body = V1Error),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`); a v3 body, as the API gateway answers.", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V1Error),
        (status = 409, description = "The project holds as many ports as its quota allows (`VPC.0114`).", body = V1Error),
    ),
)]
pub async fn create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let o = input::parse::<CreateBody>(&body, V1)?.port;
    refuse_unsupported(&o.allowed_address_pairs, &o.extra_dhcp_opts)?;
    let name = o.name.unwrap_or_default();
    check_name(&name)?;
    if o.network_id.trim().is_empty() {
        return Err(invalid(V1, "network_id: required"));
    }
    if o.admin_state_up == Some(false) {
        return Err(invalid(V1, "admin_state_up: only true is supported"));
    }
    let device_owner = o.device_owner.unwrap_or_default();
    check_device_owner(&device_owner)?;
    let input = PortCreate {
        name,
        network_id: o.network_id.trim().to_owned(),
        fixed_ips: fixed_ips(o.fixed_ips.unwrap_or_default())?,
        device_id: o.device_id.unwrap_or_default(),
        device_owner,
        security_groups: o.security_groups.unwrap_or_default(),
        host_id: o.host_id.unwrap_or_default(),
        binding_profile: o.profile.map(profile).transpose()?.unwrap_or_default(),
    };
    let p = st
        .service
        .port_create(&caller.actor(), input)
        .await
        .map_err(|e| from_service(e, V1))?;
    Ok(answer(StatusCode::CREATED, &p))
}

/// Shows a port.
#[utoipa::path(
    get,
    path = "/v1/{project_id}/ports/{port_id}",
    operation_id = "show_port",
    tag = doc::PORTS,
    params(PortPath),
    responses(
        (status = 200, description = "The port.", body = PortReply),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`); a v3 body, as the API gateway answers.", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V1Error),
        (status = 404, description = "No such port (`VPC.1704`).", body = V1Error),
    ),
)]
pub async fn show(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Port, &id)?;
    let p = st
        .service
        .port_show(&caller.project, id)
        .await
        .map_err(|e| from_service(e, V1))?;
    Ok(answer(StatusCode::OK, &p))
}

const FIELDS: &[(&str, PortField, Kind)] = &[
    ("id", PortField::Id, Kind::Text),
    ("name", PortField::Name, Kind::Text),
    ("network_id", PortField::NetworkId, Kind::Text),
    ("mac_address", PortField::MacAddress, Kind::Text),
    ("device_id", PortField::DeviceId, Kind::Text),
    ("device_owner", PortField::DeviceOwner, Kind::Text),
    ("status", PortField::Status, Kind::Text),
    ("admin_state_up", PortField::AdminStateUp, Kind::Bool),
    ("binding:host_id", PortField::HostId, Kind::Text),
    ("security_groups", PortField::SecurityGroup, Kind::Text),
];

/// Lists ports, in creation order; no `page_info`, as in Huawei's v1 API.
#[utoipa::path(
    get,
    path = "/v1/{project_id}/ports",
    operation_id = "list_ports",
    tag = doc::PORTS,
    params(ProjectPath),
    responses(
        (status = 200, description = "The ports.", body = PortListReply),
        (status = 400, description = "Bad query parameter, limit or marker (`VPC.0101`).", body = V1Error),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`); a v3 body, as the API gateway answers.", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V1Error),
    ),
)]
pub async fn list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(_rid): Extension<RequestId>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw.as_deref());
    // v1 ports allow any limit up to 2^31-1 (default 2000).
    let mut q = list_query(&query, FIELDS, MAX_LIMIT, i32::MAX as u32, V1)?;
    // fixed_ips=ip_address=10.0.0.1 / fixed_ips=subnet_id=<id>, repeatable.
    let mut by_ip = Vec::new();
    let mut by_subnet = Vec::new();
    for v in query.all("fixed_ips") {
        match v.split_once('=') {
            Some(("ip_address", ip)) => by_ip.push(Value::Text(ip.to_owned())),
            Some(("subnet_id", subnet)) => by_subnet.push(Value::Text(subnet.to_owned())),
            _ => {
                return Err(invalid(
                    V1,
                    format!("fixed_ips: expected ip_address=<ip> or subnet_id=<id>, not {v:?}"),
                ))
            }
        }
    }
    if !by_ip.is_empty() {
        q.conditions.push(Condition {
            field: PortField::FixedIpAddress,
            values: by_ip,
        });
    }
    if !by_subnet.is_empty() {
        q.conditions.push(Condition {
            field: PortField::FixedIpSubnet,
            values: by_subnet,
        });
    }
    let page = st
        .service
        .port_list(&caller.project, &q)
        .await
        .map_err(|e| from_service(e, V1))?;
    let views: Vec<PortView> = page.items.iter().map(PortView::from).collect();
    Ok(body(&PortListReply { ports: views }).into_response())
}

/// Updates a port.
#[utoipa::path(
    put,
    path = "/v1/{project_id}/ports/{port_id}",
    operation_id = "update_port",
    tag = doc::PORTS,
    params(PortPath),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The updated port.", body = PortReply),
        (status = 400, description = "Invalid request (`VPC.0101`).", body = V1Error),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`); a v3 body, as the API gateway answers.", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V1Error),
        (status = 404, description = "No such port (`VPC.1704`).", body = V1Error),
    ),
)]
pub async fn update(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Port, &id)?;
    let o = input::parse::<UpdateBody>(&body, V1)?.port;
    refuse_unsupported(&o.allowed_address_pairs, &o.extra_dhcp_opts)?;
    if let Some(n) = &o.name {
        check_name(n)?;
    }
    if let Some(owner) = &o.device_owner {
        check_device_owner(owner)?;
    }
    let input = PortUpdate {
        name: o.name,
        security_groups: o.security_groups,
        device_id: o.device_id,
        device_owner: o.device_owner,
        host_id: o.host_id,
        binding_profile: o.profile.map(profile).transpose()?,
        fixed_ips: o.fixed_ips.map(fixed_ips).transpose()?,
    };
    let p = st
        .service
        .port_update(&caller.actor(), id, input)
        .await
        .map_err(|e| from_service(e, V1))?;
    Ok(answer(StatusCode::OK, &p))
}

/// Deletes a port.
#[utoipa::path(
    delete,
    path = "/v1/{project_id}/ports/{port_id}",
    operation_id = "delete_port",
    tag = doc::PORTS,
    params(PortPath),
    responses(
        (status = 204, description = "The port was deleted; no body."),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`); a v3 body, as the API gateway answers.", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V1Error),
        (status = 404, description = "No such port (`VPC.1704`).", body = V1Error),
        (status = 409, description = "A session uses the port as a source or target (`VPC.1711`).", body = V1Error),
    ),
)]
pub async fn delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Port, &id)?;
    st.service
        .port_delete(&caller.actor(), id)
        .await
        .map_err(|e| from_service(e, V1))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The list's query parameters: [`FIELDS`] and the repeatable `fixed_ips`.
pub(super) fn list_parameters() -> Vec<utoipa::openapi::path::Parameter> {
    let mut params = doc::list_parameters(FIELDS, i32::MAX as u32);
    params.push(doc::repeatable(
        "fixed_ips",
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String),
        "`ip_address=<ip>` or `subnet_id=<id>` (URL-encoded, e.g. `fixed_ips=ip_address%3D10.0.0.1`); \
repeat the key to match any of several values.",
    ));
    params
}
