//! AddBackendServers, RemoveBackendServers, SetBackendServers and DescribeHealthStatus.
//!
//! A backend server is a member: an ENI (`Type: eni`, `ServerId: eni-…`, its first private IP)
//! or an address (`Type: ip`, `ServerId` the address). tmirror has no ECS or ECI instances.
//! `Port` is where the copies go (default 4789), `Weight` 0–100 (default 100).

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::{json, Map, Value};
use tmirror_model::*;

use super::super::error::{bad, from_service, invalid, missing, not_found};
use super::super::{ids, Begun, Ctx, Write};
use super::{int_in, lb_id, listeners, shown_id};
use crate::http::ApiError;
use crate::service::{MemberCreate, MemberEndpoint, MemberUpdate, ServiceError};

/// SLB's most backend servers in one call.
const PER_CALL: usize = 20;

/// SLB's longest backend server description.
const DESCRIPTION_MAX: usize = 80;

/// How a member is named in this face: its ENI's id, or its address.
pub fn server_id(m: &LbMember) -> String {
    match m.port_id {
        Some(p) => ids::show(ResourceKind::Port, p.0),
        None => m.address.to_string(),
    }
}

pub fn server_type(m: &LbMember) -> &'static str {
    if m.port_id.is_some() {
        "eni"
    } else {
        "ip"
    }
}

/// One item of `BackendServers`.
struct Server {
    id: String,
    /// `None` for Remove and Set without a `Type`: they name servers by id.
    endpoint: Option<MemberEndpoint>,
    port: Option<u16>,
    weight: Option<MemberWeight>,
    description: Option<String>,
}

/// A number given as a JSON number or as text (the SDKs' examples send both).
fn number(o: &Map<String, Value>, field: &str, lo: i64, hi: i64) -> Result<Option<i64>, ApiError> {
    let name = format!("BackendServers.{field}");
    let v = match o.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    match v {
        Some(v) if (lo..=hi).contains(&v) => Ok(Some(v)),
        Some(v) => Err(invalid(
            &name,
            format!("must be between {lo} and {hi}, not {v}"),
        )),
        None => Err(invalid(&name, "must be an integer")),
    }
}

fn text<'a>(o: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(
            &format!("BackendServers.{field}"),
            "must be a string",
        )),
    }
}

/// `BackendServers`: a JSON list of 1 to 20 objects. Items naming the same server and port
/// as an earlier one are dropped, as SLB does. `adding`: the servers are new, so their `Type`
/// counts even when absent (SLB's default, `ecs`, which tmirror does not have).
fn servers(ctx: &Ctx<'_>, adding: bool) -> Result<Vec<Server>, ApiError> {
    let raw = ctx.p.required("BackendServers")?;
    let list: Vec<Value> = serde_json::from_str(raw)
        .map_err(|_| invalid("BackendServers", "must be a JSON list of objects"))?;
    if list.is_empty() || list.len() > PER_CALL {
        return Err(invalid(
            "BackendServers",
            format!(
                "must list 1 to {PER_CALL} backend servers, not {}",
                list.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for item in &list {
        let o = item
            .as_object()
            .ok_or_else(|| invalid("BackendServers", "every item must be an object"))?;
        let id = text(o, "ServerId")?.ok_or_else(|| missing("BackendServers.ServerId"))?;
        let kind = match text(o, "Type")? {
            None if !adding => None,
            given => Some(given.unwrap_or("ecs")),
        };
        let endpoint = match kind {
            None => None,
            Some("eni") => Some(MemberEndpoint::Port(
                ids::parse(ResourceKind::Port, id)
                    .map(PortId)
                    .ok_or_else(|| not_found(ResourceKind::Port, id))?,
            )),
            Some("ip") => {
                let ip = id.parse::<IpAddr>().map_err(|_| {
                    invalid(
                        "BackendServers.ServerId",
                        format!("{id:?} is not an IP address (Type ip)"),
                    )
                })?;
                if text(o, "ServerIp")?.is_some_and(|s| s.parse::<IpAddr>().ok() != Some(ip)) {
                    return Err(invalid(
                        "BackendServers.ServerIp",
                        format!("an ip backend server's ServerIp must be its ServerId {id}"),
                    ));
                }
                Some(MemberEndpoint::Address(ip))
            }
            Some(other) => {
                return Err(invalid(
                    "BackendServers.Type",
                    format!(
                        "{other:?}: tmirror has no ECS or ECI instances; add collectors as eni \
                         (ServerId eni-…) or ip (ServerId the address) backend servers"
                    ),
                ))
            }
        };
        let port = number(o, "Port", 1, 65535)?.map(|p| p as u16);
        let weight =
            number(o, "Weight", 0, 100)?.map(|w| MemberWeight::new(w).expect("checked range"));
        let description = text(o, "Description")?.map(str::to_owned);
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > DESCRIPTION_MAX)
        {
            return Err(invalid(
                "BackendServers.Description",
                format!("must be at most {DESCRIPTION_MAX} characters"),
            ));
        }
        if seen.insert((id.to_owned(), port)) {
            out.push(Server {
                id: id.to_owned(),
                endpoint,
                port,
                weight,
                description,
            });
        }
    }
    Ok(out)
}

/// The members a server names: by its id, and by port when one is given.
fn matching(lb: &LoadBalancer, s: &Server) -> Result<Vec<MemberId>, ApiError> {
    let found: Vec<MemberId> = lb
        .members
        .iter()
        .filter(|m| server_id(m) == s.id && s.port.is_none_or(|p| p == m.port))
        .map(|m| m.id)
        .collect();
    if found.is_empty() {
        return Err(not_found(ResourceKind::Member, &s.id));
    }
    Ok(found)
}

/// What Add, Remove and Set answer: every backend server of the load balancer after the call.
fn answer(lb: &LoadBalancer) -> Value {
    let servers: Vec<Value> = lb
        .members
        .iter()
        .map(|m| {
            json!({
                "ServerId": server_id(m),
                "ServerIp": m.address.to_string(),
                "Port": m.port,
                "Type": server_type(m),
                "Weight": m.weight.get().to_string(),
                "Description": m.name,
            })
        })
        .collect();
    json!({"LoadBalancerId": shown_id(lb), "BackendServers": {"BackendServer": servers}})
}

/// A write to one load balancer's backend servers, begun: the servers the request names, the
/// open write (with its ClientToken) and the load balancer as read in it.
struct Backends {
    id: LoadBalancerId,
    servers: Vec<Server>,
    w: Write,
    lb: LoadBalancer,
}

/// The prelude of the three writes: the request is parsed (`adding`: each server must say its
/// type), then the write begun, unless the ClientToken has answered it already (`Err`: that
/// answer, again).
async fn begin(ctx: &Ctx<'_>, adding: bool) -> Result<Result<Backends, Value>, ApiError> {
    let id = lb_id(ctx)?;
    let servers = servers(ctx, adding)?;
    let mut w = match Write::begin(ctx, false).await? {
        Begun::Replay(v) => return Ok(Err(v)),
        Begun::Open(w) => w,
    };
    let lb = w
        .service(ctx)?
        .load_balancer_show(id)
        .await
        .map_err(from_service)?;
    Ok(Ok(Backends { id, servers, w, lb }))
}

pub async fn add(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let Backends {
        id,
        servers,
        mut w,
        mut lb,
    } = match begin(ctx, true).await? {
        Ok(b) => b,
        Err(replay) => return Ok(replay),
    };
    for s in servers {
        let endpoint = s.endpoint.clone().expect("adding: every server has a type");
        let input = MemberCreate {
            name: s.description.clone().unwrap_or_default(),
            endpoint,
            port: s.port,
            // SLB's default weight.
            weight: s
                .weight
                .unwrap_or(MemberWeight::new(100).expect("in range")),
            admin_state_up: true,
            subnet_id: String::new(),
        };
        lb = match w.service(ctx)?.member_add(id, input).await {
            Ok((lb, _)) => lb,
            // The service's message names canonical ids; this face names the server.
            Err(ServiceError::Domain(DomainError::Conflict(_))) => {
                return Err(bad(
                    "DuplicatedParam.BackendServers",
                    format!(
                        "The backend server {} (port {}) is already a backend server of {}.",
                        s.id,
                        s.port.unwrap_or(DEFAULT_MEMBER_PORT),
                        shown_id(&lb)
                    ),
                ))
            }
            Err(e) => return Err(from_service(e)),
        };
    }
    let answer = answer(&lb);
    w.finish(ctx, answer).await
}

pub async fn remove(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let Backends {
        id,
        servers,
        mut w,
        mut lb,
    } = match begin(ctx, false).await? {
        Ok(b) => b,
        Err(replay) => return Ok(replay),
    };
    let mut gone = Vec::new();
    for s in &servers {
        gone.extend(matching(&lb, s)?);
    }
    gone.sort();
    gone.dedup();
    for m in gone {
        lb = w
            .service(ctx)?
            .member_remove(id, m)
            .await
            .map_err(from_service)?;
    }
    let answer = answer(&lb);
    w.finish(ctx, answer).await
}

pub async fn set(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let Backends {
        id,
        servers,
        mut w,
        mut lb,
    } = match begin(ctx, false).await? {
        Ok(b) => b,
        Err(replay) => return Ok(replay),
    };
    for s in &servers {
        for m in matching(&lb, s)? {
            let input = MemberUpdate {
                name: s.description.clone(),
                weight: s.weight,
                admin_state_up: None,
            };
            lb = w
                .service(ctx)?
                .member_update(id, m, input)
                .await
                .map_err(from_service)?;
        }
    }
    let answer = answer(&lb);
    w.finish(ctx, answer).await
}

/// SLB's words for a member's health: `unavailable` until a check has judged it (or when no
/// check runs).
fn health_status(h: MemberHealth) -> &'static str {
    match h {
        MemberHealth::Online => "normal",
        MemberHealth::Offline => "abnormal",
        MemberHealth::Initial | MemberHealth::NoMonitor => "unavailable",
    }
}

pub async fn health(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let id = lb_id(ctx)?;
    let wanted = int_in(ctx, "ListenerPort", 1..=65535)?;
    let lb = ctx
        .st
        .service
        .load_balancer_show(ctx.project(), id)
        .await
        .map_err(from_service)?;
    let listener = listeners::port(&lb);
    if let Some(p) = wanted {
        if listener != Some(p as u16) {
            return Err(listeners::unknown(&lb, p));
        }
    }
    let servers: Vec<Value> = lb
        .members
        .iter()
        .map(|m| {
            let mut v = json!({
                "ServerId": server_id(m),
                "ServerIp": m.address.to_string(),
                "Port": m.port,
                "ServerHealthStatus": health_status(m.operating_status),
            });
            if let Some(p) = listener {
                v["ListenerPort"] = p.into();
                v["Protocol"] = "udp".into();
            }
            v
        })
        .collect();
    Ok(json!({"BackendServers": {"BackendServer": servers}}))
}
