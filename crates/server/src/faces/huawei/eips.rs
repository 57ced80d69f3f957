//! `/v1/{project_id}/publicips`: elastic IPs, the subset of Huawei's EIP v1 API that the
//! `huaweicloudsdkeip` client and Terraform's `huaweicloud_vpc_eip` use (create, show, list,
//! update to associate or dissociate a port, delete). Errors use the v1 body, as for ports.
//!
//! `publicip.type` names one of the operator's pools (`docs/eips.md`); the bandwidth is kept
//! and shown back, never enforced.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::{Deserialize, Serialize};
use tmirror_model::*;
use utoipa::ToSchema;

use super::doc::{self, EipPath, ProjectPath, V1Error, V3Error};
use super::error::{from_service, invalid};
use super::input;
use super::query::{Kind, Query};
use super::views::{body, timestamp};
use super::{path_id, V1};
use crate::auth::Caller;
use crate::http::ApiError;
use crate::service::eips::{EipCreate, EipUpdate};
use crate::AppState;

/// Huawei's largest page of EIPs.
const MAX_LIMIT: u32 = 2000;

/// The collection path, as in the annotations below.
pub(super) const COLLECTION: &str = "/v1/{project_id}/publicips";

/// The list's filter keys, each repeatable.
const FILTERS: &[(&str, (), Kind)] = &[
    ("id", (), Kind::Text),
    ("port_id", (), Kind::Text),
    ("public_ip_address", (), Kind::Text),
    ("private_ip_address", (), Kind::Text),
];

/// The list's query parameters: [`FILTERS`], `limit` and `marker`.
pub(super) fn list_parameters() -> Vec<utoipa::openapi::path::Parameter> {
    doc::list_parameters(FILTERS, MAX_LIMIT)
}

/// `{"publicip", "bandwidth", "enterprise_project_id"?}`.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreatePublicipRequestBody)]
struct CreateBody {
    publicip: CreateOption,
    bandwidth: BandwidthOption,
    /// Accepted and ignored: tmirror has no enterprise projects.
    #[serde(default)]
    #[allow(dead_code)]
    enterprise_project_id: Option<String>,
}

/// The address to allocate.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreatePublicipOption)]
struct CreateOption {
    /// The pool (line type), like `5_bgp`: one the operator configured.
    #[serde(rename = "type")]
    #[schema(example = "5_bgp")]
    pool: String,
    /// An explicit address of the pool; absent takes the pool's first free one.
    #[serde(default)]
    ip_address: Option<String>,
    /// 4 (default) or 6; it must match the pool's addresses.
    #[serde(default)]
    ip_version: Option<i64>,
    /// A name: 1–64 letters, digits, `_`, `-`, `.`.
    #[serde(default)]
    alias: Option<String>,
    /// A port to associate at once.
    #[serde(default)]
    port_id: Option<String>,
}

/// The bandwidth: kept and shown, not enforced.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreatePublicipBandwidthOption)]
struct BandwidthOption {
    /// `PER` (dedicated) or `WHOLE` (shared, with `id`).
    share_type: String,
    /// Mbit/s, 1–2000; required for `PER`.
    #[serde(default)]
    size: Option<i64>,
    /// Required for `PER`: 1–64 letters, digits, `_`, `-`, `.`.
    #[serde(default)]
    name: Option<String>,
    /// `bandwidth` (default) or `traffic`.
    #[serde(default)]
    charge_mode: Option<String>,
    /// The shared bandwidth of a `WHOLE` EIP.
    #[serde(default)]
    id: Option<String>,
}

/// `{"publicip": UpdatePublicipOption}`.
#[derive(Deserialize, ToSchema)]
#[schema(as = UpdatePublicipsRequestBody)]
struct UpdateBody {
    publicip: UpdateOption,
}

/// What changes: a new name, or the association (an absent, empty or null `port_id`
/// dissociates). With both, only the name changes, as Huawei documents.
#[derive(Deserialize, ToSchema)]
#[schema(as = UpdatePublicipOption)]
struct UpdateOption {
    #[serde(default)]
    port_id: Option<String>,
    #[serde(default)]
    alias: Option<String>,
    /// Changing the IP version is not supported; only the EIP's own version is accepted.
    #[serde(default)]
    ip_version: Option<i64>,
}

/// An elastic IP as Huawei's v1 API shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = Publicip)]
pub struct EipView {
    pub id: String,
    /// `DOWN` (not associated) or `ACTIVE` (associated with a port).
    #[schema(example = "DOWN")]
    pub status: &'static str,
    /// The pool (line type).
    #[serde(rename = "type")]
    #[schema(example = "5_bgp")]
    pub pool: String,
    /// The IPv4 address (absent for an IPv6 EIP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip_address: Option<String>,
    /// The IPv6 address (absent for an IPv4 EIP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ipv6_address: Option<String>,
    pub ip_version: u8,
    /// The associated port, absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_id: Option<String>,
    /// The associated port's address, the one the gateway translates the EIP to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_ip_address: Option<String>,
    pub tenant_id: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    #[schema(example = "2026-12-05 02:13:00")]
    pub create_time: String,
    pub bandwidth_id: String,
    pub bandwidth_name: String,
    pub bandwidth_share_type: String,
    pub bandwidth_size: u32,
    pub alias: String,
    /// Always `0`: tmirror has no enterprise projects.
    pub enterprise_project_id: &'static str,
}

impl EipView {
    fn new(e: &Eip, private: &HashMap<PortId, IpAddr>) -> Self {
        let (v4, v6) = match e.address {
            IpAddr::V4(a) => (Some(a.to_string()), None),
            IpAddr::V6(a) => (None, Some(a.to_string())),
        };
        EipView {
            id: e.id.to_string(),
            status: e.status(),
            pool: e.pool_id.clone(),
            public_ip_address: v4,
            public_ipv6_address: v6,
            ip_version: if e.address.is_ipv4() { 4 } else { 6 },
            port_id: e.port_id.map(|p| p.to_string()),
            private_ip_address: e
                .port_id
                .and_then(|p| private.get(&p))
                .map(|ip| ip.to_string()),
            tenant_id: e.project_id.to_string(),
            create_time: timestamp(e.created_at)
                .trim_end_matches('Z')
                .replacen('T', " ", 1),
            bandwidth_id: e.bandwidth.id.clone(),
            bandwidth_name: e.bandwidth.name.clone(),
            bandwidth_share_type: e.bandwidth.share_type.clone(),
            bandwidth_size: e.bandwidth.size,
            alias: e.name.clone(),
            enterprise_project_id: "0",
        }
    }
}

/// `{"publicip": …}`.
#[derive(Serialize, ToSchema)]
#[schema(as = PublicipReply)]
pub struct EipReply {
    publicip: EipView,
}

/// `{"publicips": […]}`.
#[derive(Serialize, ToSchema)]
#[schema(as = PublicipListReply)]
pub struct EipListReply {
    publicips: Vec<EipView>,
}

async fn answer(st: &AppState, caller: &Caller, e: &Eip) -> Result<Response, ApiError> {
    let private = st
        .service
        .eip_private_ips(&caller.project, std::slice::from_ref(e))
        .await
        .map_err(|e| from_service(e, V1))?;
    let reply = EipReply {
        publicip: EipView::new(e, &private),
    };
    Ok(body(&reply).into_response())
}

fn check_alias(alias: &str) -> Result<(), ApiError> {
    input::check_name("alias", alias, V1)
}

fn bandwidth(o: BandwidthOption) -> Result<Bandwidth, ApiError> {
    let charge_mode = o.charge_mode.unwrap_or_else(|| "bandwidth".into());
    if !matches!(charge_mode.as_str(), "bandwidth" | "traffic") {
        return Err(invalid(
            V1,
            format!("bandwidth.charge_mode: must be bandwidth or traffic, not {charge_mode:?}"),
        ));
    }
    match o.share_type.as_str() {
        "PER" => {
            let name = o
                .name
                .ok_or_else(|| invalid(V1, "bandwidth.name: required for a PER bandwidth"))?;
            input::check_name("bandwidth.name", &name, V1)?;
            let size = o
                .size
                .ok_or_else(|| invalid(V1, "bandwidth.size: required for a PER bandwidth"))?;
            if !(1..=2000).contains(&size) {
                return Err(invalid(
                    V1,
                    format!("bandwidth.size: must be 1 to 2000 (Mbit/s), not {size}"),
                ));
            }
            Ok(Bandwidth {
                id: uuid::Uuid::new_v4().to_string(),
                name,
                size: size as u32,
                share_type: "PER".into(),
                charge_mode,
            })
        }
        "WHOLE" => {
            let id = o.id.filter(|s| !s.is_empty()).ok_or_else(|| {
                invalid(V1, "bandwidth.id: required for a WHOLE (shared) bandwidth")
            })?;
            Ok(Bandwidth {
                id,
                name: o.name.unwrap_or_default(),
                size: o.size.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32,
                share_type: "WHOLE".into(),
                charge_mode,
            })
        }
        other => Err(invalid(
            V1,
            format!("bandwidth.share_type: must be PER or WHOLE, not {other:?}"),
        )),
    }
}

fn ip_version(v: Option<i64>) -> Result<Option<u8>, ApiError> {
    match v {
        None => Ok(None),
        Some(4) => Ok(Some(4)),
        Some(6) => Ok(Some(6)),
        Some(other) => Err(invalid(
            V1,
            format!("ip_version: must be 4 or 6, not {other}"),
        )),
    }
}

/// Allocates an elastic IP.
#[utoipa::path(
    post,
    path = "/v1/{project_id}/publicips",
    operation_id = "create_publicip",
    tag = doc::EIPS,
    params(ProjectPath),
    request_body = CreateBody,
    responses(
        (status = 200, description = "The EIP was allocated (`DOWN` until associated).", body = EipReply),
        (status = 400, description = "Invalid request, unknown pool or an address outside it (`VPC.0101`).", body = V1Error),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`); a v3 body, as the API gateway answers.", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`); a reader's key (`VPC.0010`).", body = V1Error),
        (status = 404, description = "The port to associate does not exist (`VPC.1704`).", body = V1Error),
        (status = 409, description = "The address is in use, the pool is full, the port has an EIP (`VPC.1711`); quota exceeded (`VPC.0114`).", body = V1Error),
    ),
)]
pub async fn create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let o = input::parse::<CreateBody>(&body, V1)?;
    let name = o.publicip.alias.unwrap_or_default();
    if !name.is_empty() {
        check_alias(&name)?;
    }
    let address = o
        .publicip
        .ip_address
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpAddr>().map_err(|_| {
                invalid(
                    V1,
                    format!("publicip.ip_address: {s:?} is not an IP address"),
                )
            })
        })
        .transpose()?;
    let version = ip_version(o.publicip.ip_version)?;
    if let (Some(v), Some(a)) = (version, address) {
        if (v == 4) != a.is_ipv4() {
            return Err(invalid(
                V1,
                format!("publicip.ip_address: {a} is not an IPv{v} address"),
            ));
        }
    }
    let port = o
        .publicip
        .port_id
        .filter(|s| !s.is_empty())
        .map(|s| input::id::<PortId>("publicip.port_id", &s, V1))
        .transpose()?;
    let input = EipCreate {
        pool_id: o.publicip.pool,
        address,
        ipv4: version.map(|v| v == 4),
        name,
        port_id: port,
        bandwidth: bandwidth(o.bandwidth)?,
    };
    let e = st
        .service
        .eip_create(&caller.actor(), input)
        .await
        .map_err(|e| from_service(e, V1))?;
    answer(&st, &caller, &e).await
}

/// Shows an elastic IP.
#[utoipa::path(
    get,
    path = "/v1/{project_id}/publicips/{publicip_id}",
    operation_id = "show_publicip",
    tag = doc::EIPS,
    params(EipPath),
    responses(
        (status = 200, description = "The EIP.", body = EipReply),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`); a v3 body, as the API gateway answers.", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V1Error),
        (status = 404, description = "No such EIP (`VPC.0504`).", body = V1Error),
    ),
)]
pub async fn show(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Eip, &id)?;
    let e = st
        .service
        .eip_show(&caller.project, id)
        .await
        .map_err(|e| from_service(e, V1))?;
    answer(&st, &caller, &e).await
}

/// Lists elastic IPs in allocation order: `limit` (default and most 2000) and `marker` (the
/// last id of the previous page); `id`, `port_id`, `public_ip_address` and
/// `private_ip_address` filter, each repeatable.
#[utoipa::path(
    get,
    path = "/v1/{project_id}/publicips",
    operation_id = "list_publicips",
    tag = doc::EIPS,
    params(ProjectPath),
    responses(
        (status = 200, description = "The EIPs.", body = EipListReply),
        (status = 400, description = "Bad limit or marker (`VPC.0101`).", body = V1Error),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`); a v3 body, as the API gateway answers.", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`).", body = V1Error),
    ),
)]
pub async fn list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw.as_deref());
    let (limit, marker) = query.page(MAX_LIMIT, MAX_LIMIT, V1)?;
    let all = st
        .service
        .eip_list(&caller.project)
        .await
        .map_err(|e| from_service(e, V1))?;
    let private = st
        .service
        .eip_private_ips(&caller.project, &all)
        .await
        .map_err(|e| from_service(e, V1))?;
    let start = match &marker {
        None => 0,
        Some(m) => {
            all.iter()
                .position(|e| e.id.to_string() == *m)
                .ok_or_else(|| {
                    invalid(
                        V1,
                        format!("marker {m:?} is not the id of an EIP in this list; start again without a marker"),
                    )
                })?
                + 1
        }
    };
    let wanted = |key: &str, value: Option<String>| {
        let values = query.all(key);
        values.is_empty() || value.is_some_and(|v| values.contains(&v))
    };
    let views: Vec<EipView> = all[start..]
        .iter()
        .map(|e| EipView::new(e, &private))
        .filter(|v| {
            wanted("id", Some(v.id.clone()))
                && wanted("port_id", v.port_id.clone())
                && wanted(
                    "public_ip_address",
                    v.public_ip_address
                        .clone()
                        .or_else(|| v.public_ipv6_address.clone()),
                )
                && wanted("private_ip_address", v.private_ip_address.clone())
        })
        .take(limit as usize)
        .collect();
    Ok(body(&EipListReply { publicips: views }).into_response())
}

/// Renames an elastic IP, or associates it with a port or dissociates it.
#[utoipa::path(
    put,
    path = "/v1/{project_id}/publicips/{publicip_id}",
    operation_id = "update_publicip",
    tag = doc::EIPS,
    params(EipPath),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The updated EIP.", body = EipReply),
        (status = 400, description = "Invalid request (`VPC.0101`).", body = V1Error),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`); a v3 body, as the API gateway answers.", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`); a reader's key (`VPC.0010`).", body = V1Error),
        (status = 404, description = "No such EIP (`VPC.0504`) or port (`VPC.1704`).", body = V1Error),
        (status = 409, description = "The port already has another EIP (`VPC.1711`).", body = V1Error),
    ),
)]
pub async fn update(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Eip, &id)?;
    let o = input::parse::<UpdateBody>(&body, V1)?.publicip;
    let input = match o.alias {
        Some(alias) => {
            check_alias(&alias)?;
            EipUpdate {
                name: Some(alias),
                port_id: None,
            }
        }
        None => {
            if let Some(v) = ip_version(o.ip_version)? {
                // Only "no change" is possible; checked against the EIP below.
                let e = st
                    .service
                    .eip_show(&caller.project, id)
                    .await
                    .map_err(|e| from_service(e, V1))?;
                if (v == 4) != e.address.is_ipv4() {
                    return Err(invalid(
                        V1,
                        "ip_version: an EIP's IP version cannot be changed",
                    ));
                }
                return answer(&st, &caller, &e).await;
            }
            let port = o
                .port_id
                .filter(|s| !s.is_empty())
                .map(|s| input::id::<PortId>("publicip.port_id", &s, V1))
                .transpose()?;
            EipUpdate {
                name: None,
                port_id: Some(port),
            }
        }
    };
    let e = st
        .service
        .eip_update(&caller.actor(), id, input)
        .await
        .map_err(|e| from_service(e, V1))?;
    answer(&st, &caller, &e).await
}

/// Releases an elastic IP.
#[utoipa::path(
    delete,
    path = "/v1/{project_id}/publicips/{publicip_id}",
    operation_id = "delete_publicip",
    tag = doc::EIPS,
    params(EipPath),
    responses(
        (status = 204, description = "The EIP was released; no body."),
        (status = 401, description = "Missing or wrong signature, unknown access key, or skewed `X-Sdk-Date` (`APIGW.0301`); a v3 body, as the API gateway answers.", body = V3Error),
        (status = 403, description = "The path's project is not the credential's (`VPC.0007`); a reader's key (`VPC.0010`).", body = V1Error),
        (status = 404, description = "No such EIP (`VPC.0504`).", body = V1Error),
        (status = 409, description = "A session mirrors the EIP (`VPC.1711`).", body = V1Error),
    ),
)]
pub async fn delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_id(ResourceKind::Eip, &id)?;
    st.service
        .eip_delete(&caller.actor(), id)
        .await
        .map_err(|e| from_service(e, V1))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
