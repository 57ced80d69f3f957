//! The ELB v3 subset that stands up a load balancer to mirror to: `/v3/{project_id}/elb/`
//! `loadbalancers`, `listeners`, `pools`, `pools/{id}/members` and `healthmonitors`
//! (`docs/load-balancers.md`).
//!
//! A tmirror load balancer has at most one listener, one pool and one health monitor, so their ids are the
//! load balancer's id with fixed bits flipped ([`derived`]): one-to-one, with no table of
//! their own. Fields tmirror does not act on (flavors, availability zones, bandwidth, the
//! pool's algorithm, ...) are accepted, kept in the load balancer's `kept` document, and shown
//! back as given.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{json, Map, Value};
use tmirror_model::*;
use uuid::Uuid;

use super::elb_list::{
    lb_request, listener_request, member_page, member_request, monitor_request, page_info,
    pool_request, view_page,
};
use super::error::{from_service, invalid};
use super::input::{self, check_description, check_name};
use super::V3;
use crate::auth::Caller;
use crate::http::{ApiError, RequestId};
use crate::service::{
    LoadBalancerCreate, LoadBalancerUpdate, MemberCreate, MemberEndpoint, MemberUpdate,
    ServiceError,
};
use crate::AppState;

/// The routes of the subset (signed like the rest of the face by the caller's layer).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v3/{project_id}/elb/loadbalancers",
            get(lb_list).post(lb_create),
        )
        .route(
            "/v3/{project_id}/elb/loadbalancers/{id}",
            get(lb_show).put(lb_update).delete(lb_delete),
        )
        .route(
            "/v3/{project_id}/elb/listeners",
            get(listener_list).post(listener_create),
        )
        .route(
            "/v3/{project_id}/elb/listeners/{id}",
            get(listener_show)
                .put(listener_update)
                .delete(listener_delete),
        )
        .route(
            "/v3/{project_id}/elb/pools",
            get(pool_list).post(pool_create),
        )
        .route(
            "/v3/{project_id}/elb/pools/{id}",
            get(pool_show).delete(pool_delete),
        )
        .route(
            "/v3/{project_id}/elb/pools/{id}/members",
            get(member_list).post(member_create),
        )
        .route(
            "/v3/{project_id}/elb/pools/{id}/members/batch-add",
            axum::routing::post(member_batch_add),
        )
        .route(
            "/v3/{project_id}/elb/pools/{id}/members/batch-delete",
            axum::routing::post(member_batch_delete),
        )
        .route(
            "/v3/{project_id}/elb/pools/{id}/members/{member_id}",
            get(member_show).put(member_update).delete(member_delete),
        )
        .route(
            "/v3/{project_id}/elb/healthmonitors",
            get(monitor_list).post(monitor_create),
        )
        .route(
            "/v3/{project_id}/elb/healthmonitors/{id}",
            get(monitor_show).put(monitor_update).delete(monitor_delete),
        )
}

/// What the derived ids flip: bits of the UUID's node field, never its version or variant.
const POOL: u128 = 0x0000_0000_0000_0000_0000_0000_0000_0001;
const MONITOR: u128 = 0x0000_0000_0000_0000_0000_0000_0000_0002;
const LISTENER: u128 = 0x0000_0000_0000_0000_0000_0000_0000_0003;

/// The id of a load balancer's pool, monitor or listener (`salt` [`POOL`], [`MONITOR`] or
/// [`LISTENER`]), and back.
fn derived(id: Uuid, salt: u128) -> Uuid {
    Uuid::from_u128(id.as_u128() ^ salt)
}

fn e(err: ServiceError) -> ApiError {
    from_service(err, V3)
}

fn not_found(kind: ResourceKind, id: &str) -> ApiError {
    e(DomainError::not_found(kind, id).into())
}

/// A service error about the load balancer behind a pool or monitor id, named by that id.
fn named(err: ServiceError, id: &str) -> ApiError {
    match err {
        ServiceError::Domain(DomainError::NotFound { .. }) => {
            not_found(ResourceKind::LoadBalancer, id)
        }
        other => e(other),
    }
}

fn lb_id(s: &str) -> Result<LoadBalancerId, ApiError> {
    s.parse::<Uuid>()
        .map(LoadBalancerId)
        .map_err(|_| not_found(ResourceKind::LoadBalancer, s))
}

/// The load balancer a pool or monitor id names.
fn owner(s: &str, salt: u128) -> Result<LoadBalancerId, ApiError> {
    s.parse::<Uuid>()
        .map(|u| LoadBalancerId(derived(u, salt)))
        .map_err(|_| not_found(ResourceKind::LoadBalancer, s))
}

/// The object under `key` of a JSON body.
fn wrapped(body: &[u8], key: &str) -> Result<Map<String, Value>, ApiError> {
    let v: Value = input::parse(body, V3)?;
    match v.get(key) {
        Some(Value::Object(o)) => Ok(o.clone()),
        _ => Err(invalid(V3, format!("{key}: required, an object"))),
    }
}

fn text(o: &Map<String, Value>, k: &str) -> Result<Option<String>, ApiError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(V3, format!("{k}: must be a string"))),
    }
}

fn int(o: &Map<String, Value>, k: &str) -> Result<Option<i64>, ApiError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        Some(_) => Err(invalid(V3, format!("{k}: must be an integer"))),
    }
}

fn flag(o: &Map<String, Value>, k: &str) -> Result<Option<bool>, ApiError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(V3, format!("{k}: must be true or false"))),
    }
}

fn name(o: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    let n = text(o, "name")?;
    // ELB names may be empty (the SDKs send "" for none).
    if let Some(n) = n.as_deref().filter(|n| !n.is_empty()) {
        check_name("name", n, V3)?;
    }
    Ok(n)
}

fn description(o: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    let d = text(o, "description")?;
    if let Some(d) = &d {
        check_description("description", d, V3)?;
    }
    Ok(d)
}

/// The fields of `o` the face does not act on, to keep.
fn rest(o: &Map<String, Value>, used: &[&str]) -> Map<String, Value> {
    o.iter()
        .filter(|(k, _)| !used.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `kept.huawei.<part>` of a load balancer.
fn kept<'a>(lb: &'a LoadBalancer, part: &str) -> Option<&'a Map<String, Value>> {
    lb.kept.get("huawei")?.get(part)?.as_object()
}

fn with_kept(lb: &LoadBalancer, part: &str, value: Option<Map<String, Value>>) -> Value {
    let mut all = lb.kept.as_object().cloned().unwrap_or_default();
    let mut huawei = all
        .get("huawei")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match value {
        Some(v) => huawei.insert(part.to_owned(), Value::Object(v)),
        None => huawei.remove(part),
    };
    all.insert("huawei".into(), Value::Object(huawei));
    Value::Object(all)
}

fn reply(status: StatusCode, key: &str, view: Value, rid: &RequestId) -> Response {
    (
        status,
        axum::Json(json!({ key: view, "request_id": rid.0 })),
    )
        .into_response()
}

/// A paged list: the items and Huawei's `page_info` (`elb_list::page_info`).
fn paged_reply(
    key: &str,
    views: Vec<Value>,
    more: bool,
    reverse: bool,
    rid: &RequestId,
) -> Response {
    let ids: Vec<String> = views
        .iter()
        .filter_map(|v| v["id"].as_str().map(str::to_owned))
        .collect();
    axum::Json(json!({
        key: views,
        "page_info": page_info(&ids, more, reverse),
        "request_id": rid.0,
    }))
    .into_response()
}

fn time(t: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

// ---- load balancers -------------------------------------------------------------------------

const LB_FIELDS: &[&str] = &["name", "description", "vip_address", "admin_state_up"];

fn lb_view(lb: &LoadBalancer) -> Value {
    let mut v = kept(lb, "loadbalancer").cloned().unwrap_or_default();
    let pools: Vec<Value> = kept(lb, "pool")
        .map(|_| json!({"id": derived(lb.id.0, POOL).to_string()}))
        .into_iter()
        .collect();
    let view = json!({
        "id": lb.id.to_string(),
        "project_id": lb.project_id.as_str(),
        "name": lb.name,
        "description": lb.description,
        "vip_address": lb.vip_address.map(|a| a.to_string()),
        "admin_state_up": lb.admin_state_up,
        "provisioning_status": "ACTIVE",
        "operating_status": if lb.admin_state_up { "ONLINE" } else { "OFFLINE" },
        "pools": pools,
        "listeners": listener_refs(lb),
        "created_at": time(lb.created_at),
        "updated_at": time(lb.updated_at),
    });
    for (k, x) in view.as_object().expect("an object") {
        v.insert(k.clone(), x.clone());
    }
    Value::Object(v)
}

async fn lb_create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let o = wrapped(&body, "loadbalancer")?;
    let vip = text(&o, "vip_address")?
        .map(|a| {
            a.parse()
                .map_err(|_| invalid(V3, format!("vip_address: {a:?} is not an IP address")))
        })
        .transpose()?;
    let input = LoadBalancerCreate {
        name: name(&o)?.unwrap_or_default(),
        description: description(&o)?.unwrap_or_default(),
        vip_address: vip,
        admin_state_up: flag(&o, "admin_state_up")?.unwrap_or(true),
        kept: json!({"huawei": {"loadbalancer": rest(&o, LB_FIELDS)}}),
    };
    let lb = st
        .service
        .load_balancer_create(&caller.actor(), input)
        .await
        .map_err(e)?;
    Ok(reply(
        StatusCode::CREATED,
        "loadbalancer",
        lb_view(&lb),
        &rid,
    ))
}

async fn lb_show(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let lb = st
        .service
        .load_balancer_show(&caller.project, lb_id(&id)?)
        .await
        .map_err(e)?;
    Ok(reply(StatusCode::OK, "loadbalancer", lb_view(&lb), &rid))
}

async fn lb_list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let r = lb_request(raw.as_deref())?;
    let page = st
        .service
        .load_balancer_page(&caller.project, &r.query, r.reverse)
        .await
        .map_err(e)?;
    Ok(paged_reply(
        "loadbalancers",
        page.items.iter().map(lb_view).collect(),
        page.more,
        r.reverse,
        &rid,
    ))
}

async fn lb_update(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = lb_id(&id)?;
    let o = wrapped(&body, "loadbalancer")?;
    let current = st
        .service
        .load_balancer_show(&caller.project, id)
        .await
        .map_err(e)?;
    let mut keep = kept(&current, "loadbalancer").cloned().unwrap_or_default();
    keep.extend(rest(&o, LB_FIELDS));
    let input = LoadBalancerUpdate {
        name: name(&o)?,
        description: description(&o)?,
        admin_state_up: flag(&o, "admin_state_up")?,
        kept: Some(with_kept(&current, "loadbalancer", Some(keep))),
    };
    let lb = st
        .service
        .load_balancer_update(&caller.actor(), id, input)
        .await
        .map_err(e)?;
    Ok(reply(StatusCode::OK, "loadbalancer", lb_view(&lb), &rid))
}

async fn lb_delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    st.service
        .load_balancer_delete(&caller.actor(), lb_id(&id)?)
        .await
        .map_err(e)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- listeners ------------------------------------------------------------------------------
//
// A listener is accepted, kept and shown back: copies reach members past it (as with Alibaba's
// mirror path), each at the member's own `protocol_port`, so its port and protocol decide
// nothing. It exists so that SDK and Terraform scripts that stand up "load balancer, UDP
// listener, pool" run unchanged. A tmirror load balancer has one pool, hence one listener.

const LISTENER_FIELDS: &[&str] = &[
    "loadbalancer_id",
    "protocol",
    "protocol_port",
    "name",
    "description",
    "admin_state_up",
    "default_pool_id",
];

/// `[{"id": listener}]` when the load balancer has its listener, else `[]`.
fn listener_refs(lb: &LoadBalancer) -> Vec<Value> {
    kept(lb, "listener")
        .map(|_| json!({"id": derived(lb.id.0, LISTENER).to_string()}))
        .into_iter()
        .collect()
}

fn listener_view(lb: &LoadBalancer) -> Value {
    let mut v = kept(lb, "listener").cloned().unwrap_or_default();
    let view = json!({
        "id": derived(lb.id.0, LISTENER).to_string(),
        "project_id": lb.project_id.as_str(),
        "protocol": v.get("protocol").cloned().unwrap_or(json!("UDP")),
        "protocol_port": v.get("protocol_port").cloned().unwrap_or(json!(4789)),
        "name": v.get("name").cloned().unwrap_or(json!("")),
        "description": v.get("description").cloned().unwrap_or(json!("")),
        "admin_state_up": v.get("admin_state_up").cloned().unwrap_or(json!(true)),
        "default_pool_id": v.get("default_pool_id").cloned().unwrap_or(Value::Null),
        "loadbalancers": [{"id": lb.id.to_string()}],
        "created_at": time(lb.created_at),
        "updated_at": time(lb.updated_at),
    });
    for (k, x) in view.as_object().expect("an object") {
        v.insert(k.clone(), x.clone());
    }
    Value::Object(v)
}

/// The load balancer of a listener id, if the listener exists.
async fn listener_owner(
    st: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<LoadBalancer, ApiError> {
    let lb = st
        .service
        .load_balancer_show(&caller.project, owner(id, LISTENER)?)
        .await
        .map_err(|err| named(err, id))?;
    if kept(&lb, "listener").is_none() {
        return Err(not_found(ResourceKind::LoadBalancer, id));
    }
    Ok(lb)
}

/// The listener fields of `o` that the face checks, written over `into`: `default_pool_id`
/// must be the load balancer's own pool (or null, for none).
fn listener_fields(
    o: &Map<String, Value>,
    lb: &LoadBalancer,
    into: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    if let Some(n) = name(o)? {
        into.insert("name".into(), json!(n));
    }
    if let Some(d) = description(o)? {
        into.insert("description".into(), json!(d));
    }
    if let Some(a) = flag(o, "admin_state_up")? {
        into.insert("admin_state_up".into(), json!(a));
    }
    match o.get("default_pool_id") {
        None => {}
        Some(Value::Null) => {
            into.insert("default_pool_id".into(), Value::Null);
        }
        Some(_) => {
            let pool = text(o, "default_pool_id")?.expect("present");
            let own = derived(lb.id.0, POOL).to_string();
            if pool != own || kept(lb, "pool").is_none() {
                return Err(invalid(
                    V3,
                    format!(
                        "default_pool_id: {pool:?} is not a pool of load balancer {}",
                        lb.id
                    ),
                ));
            }
            into.insert("default_pool_id".into(), json!(pool));
        }
    }
    Ok(())
}

async fn listener_create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let o = wrapped(&body, "listener")?;
    let lb =
        text(&o, "loadbalancer_id")?.ok_or_else(|| invalid(V3, "loadbalancer_id: required"))?;
    let protocol = text(&o, "protocol")?.ok_or_else(|| invalid(V3, "protocol: required"))?;
    if protocol != "UDP" {
        return Err(invalid(
            V3,
            format!("protocol: mirrored copies are VXLAN over UDP; the listener must be UDP, not {protocol:?}"),
        ));
    }
    let port = int(&o, "protocol_port")?.ok_or_else(|| invalid(V3, "protocol_port: required"))?;
    if !(1..=65535).contains(&port) {
        return Err(invalid(
            V3,
            format!("protocol_port: 1 to 65535, not {port}"),
        ));
    }
    let id = lb_id(&lb)?;
    let current = st
        .service
        .load_balancer_show(&caller.project, id)
        .await
        .map_err(e)?;
    if kept(&current, "listener").is_some() {
        return Err(e(DomainError::Conflict(format!(
            "load balancer {id} already has its listener {}: a tmirror load balancer has one",
            derived(id.0, LISTENER)
        ))
        .into()));
    }
    let mut keep = rest(&o, LISTENER_FIELDS);
    keep.insert("protocol".into(), json!(protocol));
    keep.insert("protocol_port".into(), json!(port));
    listener_fields(&o, &current, &mut keep)?;
    let lb = st
        .service
        .load_balancer_update(
            &caller.actor(),
            id,
            LoadBalancerUpdate {
                kept: Some(with_kept(&current, "listener", Some(keep))),
                ..Default::default()
            },
        )
        .await
        .map_err(e)?;
    Ok(reply(
        StatusCode::CREATED,
        "listener",
        listener_view(&lb),
        &rid,
    ))
}

async fn listener_show(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let lb = listener_owner(&st, &caller, &id).await?;
    Ok(reply(StatusCode::OK, "listener", listener_view(&lb), &rid))
}

async fn listener_list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let r = listener_request(raw.as_deref())?;
    let lbs = st
        .service
        .load_balancer_list(&caller.project)
        .await
        .map_err(e)?;
    let views = lbs
        .iter()
        .filter(|l| kept(l, "listener").is_some())
        .map(listener_view)
        .collect();
    let (views, more) = view_page(views, &r)?;
    Ok(paged_reply("listeners", views, more, r.reverse, &rid))
}

/// `protocol` and `protocol_port` cannot change (as in ELB, whose update has neither).
async fn listener_update(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let lb = listener_owner(&st, &caller, &id).await?;
    let o = wrapped(&body, "listener")?;
    for fixed in ["protocol", "protocol_port", "loadbalancer_id"] {
        if o.get(fixed).is_some_and(|v| !v.is_null()) {
            return Err(invalid(V3, format!("{fixed}: cannot be changed")));
        }
    }
    let mut keep = kept(&lb, "listener").cloned().unwrap_or_default();
    keep.extend(rest(&o, LISTENER_FIELDS));
    listener_fields(&o, &lb, &mut keep)?;
    let lb = st
        .service
        .load_balancer_update(
            &caller.actor(),
            lb.id,
            LoadBalancerUpdate {
                kept: Some(with_kept(&lb, "listener", Some(keep))),
                ..Default::default()
            },
        )
        .await
        .map_err(e)?;
    Ok(reply(StatusCode::OK, "listener", listener_view(&lb), &rid))
}

async fn listener_delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let lb = listener_owner(&st, &caller, &id).await?;
    st.service
        .load_balancer_update(
            &caller.actor(),
            lb.id,
            LoadBalancerUpdate {
                kept: Some(with_kept(&lb, "listener", None)),
                ..Default::default()
            },
        )
        .await
        .map_err(e)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- pools ----------------------------------------------------------------------------------

const POOL_FIELDS: &[&str] = &["loadbalancer_id", "listener_id", "protocol", "lb_algorithm"];

fn pool_view(lb: &LoadBalancer) -> Value {
    let mut v = kept(lb, "pool").cloned().unwrap_or_default();
    let monitor = lb
        .health_monitor
        .as_ref()
        .map(|_| derived(lb.id.0, MONITOR).to_string());
    let view = json!({
        "id": derived(lb.id.0, POOL).to_string(),
        "project_id": lb.project_id.as_str(),
        "protocol": v.get("protocol").cloned().unwrap_or(json!("UDP")),
        "lb_algorithm": v.get("lb_algorithm").cloned().unwrap_or(json!("ROUND_ROBIN")),
        "loadbalancers": [{"id": lb.id.to_string()}],
        "listeners": listener_refs(lb),
        "members": lb.members.iter().map(|m| json!({"id": m.id.to_string()})).collect::<Vec<_>>(),
        "healthmonitor_id": monitor,
        "admin_state_up": true,
    });
    for (k, x) in view.as_object().expect("an object") {
        v.insert(k.clone(), x.clone());
    }
    Value::Object(v)
}

/// The load balancer of a pool id, if the pool exists.
async fn pool_owner(st: &AppState, caller: &Caller, id: &str) -> Result<LoadBalancer, ApiError> {
    let lb = st
        .service
        .load_balancer_show(&caller.project, owner(id, POOL)?)
        .await
        .map_err(|err| named(err, id))?;
    if kept(&lb, "pool").is_none() {
        return Err(not_found(ResourceKind::LoadBalancer, id));
    }
    Ok(lb)
}

async fn pool_create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let o = wrapped(&body, "pool")?;
    let by_lb = text(&o, "loadbalancer_id")?;
    let by_listener = text(&o, "listener_id")?;
    let protocol = text(&o, "protocol")?.ok_or_else(|| invalid(V3, "protocol: required"))?;
    if protocol != "UDP" {
        return Err(invalid(
            V3,
            format!("protocol: mirrored copies are VXLAN over UDP; the pool must be UDP, not {protocol:?}"),
        ));
    }
    let algorithm =
        text(&o, "lb_algorithm")?.ok_or_else(|| invalid(V3, "lb_algorithm: required"))?;
    // One of the two, as in ELB: the listener's load balancer, or the load balancer named.
    let current = match (by_lb, by_listener) {
        (Some(lb), None) => st
            .service
            .load_balancer_show(&caller.project, lb_id(&lb)?)
            .await
            .map_err(e)?,
        (None, Some(l)) => listener_owner(&st, &caller, &l).await?,
        (Some(lb), Some(l)) => {
            let current = listener_owner(&st, &caller, &l).await?;
            if current.id.to_string() != lb {
                return Err(invalid(
                    V3,
                    format!("listener_id: listener {l} is not of load balancer {lb}"),
                ));
            }
            current
        }
        (None, None) => {
            return Err(invalid(V3, "loadbalancer_id or listener_id: required"));
        }
    };
    let id = current.id;
    if kept(&current, "pool").is_some() {
        return Err(e(DomainError::Conflict(format!(
            "load balancer {id} already has its pool {}: a tmirror load balancer has one",
            derived(id.0, POOL)
        ))
        .into()));
    }
    let mut keep = rest(&o, POOL_FIELDS);
    keep.insert("protocol".into(), json!(protocol));
    keep.insert("lb_algorithm".into(), json!(algorithm));
    let mut all = with_kept(&current, "pool", Some(keep));
    // A pool made for a listener is its default pool (ELB's rule).
    if o.get("listener_id").is_some_and(|v| !v.is_null()) {
        if let Some(l) = all["huawei"]["listener"].as_object_mut() {
            l.insert(
                "default_pool_id".into(),
                json!(derived(id.0, POOL).to_string()),
            );
        }
    }
    let lb = st
        .service
        .load_balancer_update(
            &caller.actor(),
            id,
            LoadBalancerUpdate {
                kept: Some(all),
                ..Default::default()
            },
        )
        .await
        .map_err(e)?;
    Ok(reply(StatusCode::CREATED, "pool", pool_view(&lb), &rid))
}

async fn pool_show(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let lb = pool_owner(&st, &caller, &id).await?;
    Ok(reply(StatusCode::OK, "pool", pool_view(&lb), &rid))
}

async fn pool_list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let r = pool_request(raw.as_deref())?;
    let lbs = st
        .service
        .load_balancer_list(&caller.project)
        .await
        .map_err(e)?;
    let views = lbs
        .iter()
        .filter(|l| kept(l, "pool").is_some())
        .map(pool_view)
        .collect();
    let (views, more) = view_page(views, &r)?;
    Ok(paged_reply("pools", views, more, r.reverse, &rid))
}

/// Deleting the pool removes its members and monitor, as in ELB (which refuses while members
/// remain; tmirror's pool is only a view of the load balancer's members).
async fn pool_delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let lb = pool_owner(&st, &caller, &id).await?;
    if !lb.members.is_empty() {
        return Err(e(DomainError::Conflict(format!(
            "pool {id} still has {} members: remove them first",
            lb.members.len()
        ))
        .into()));
    }
    st.service
        .health_monitor_set(&caller.actor(), lb.id, None)
        .await
        .map_err(e)?;
    let mut all = with_kept(&lb, "pool", None);
    // The listener is left without a default pool, not pointing at a pool that is gone.
    if let Some(l) = all["huawei"]["listener"].as_object_mut() {
        l.insert("default_pool_id".into(), Value::Null);
    }
    st.service
        .load_balancer_update(
            &caller.actor(),
            lb.id,
            LoadBalancerUpdate {
                kept: Some(all),
                ..Default::default()
            },
        )
        .await
        .map_err(e)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- members --------------------------------------------------------------------------------

fn member_view(lb: &LoadBalancer, m: &LbMember) -> Value {
    json!({
        "id": m.id.to_string(),
        "name": m.name,
        "project_id": lb.project_id.as_str(),
        "pool_id": derived(lb.id.0, POOL).to_string(),
        "address": m.address.to_string(),
        "protocol_port": m.port,
        "weight": m.weight.get(),
        "admin_state_up": m.admin_state_up,
        "subnet_cidr_id": m.subnet_id,
        "operating_status": m.operating_status.as_str(),
        "ip_version": if m.address.is_ipv4() { "v4" } else { "v6" },
    })
}

fn member_id(s: &str) -> Result<MemberId, ApiError> {
    s.parse::<Uuid>()
        .map(MemberId)
        .map_err(|_| not_found(ResourceKind::Member, s))
}

fn find(lb: &LoadBalancer, id: MemberId) -> Result<&LbMember, ApiError> {
    lb.members
        .iter()
        .find(|m| m.id == id)
        .ok_or_else(|| not_found(ResourceKind::Member, &id.to_string()))
}

/// A member as the body describes it (one `member`, or an item of a batch).
fn member_input(o: &Map<String, Value>) -> Result<MemberCreate, ApiError> {
    let address = text(o, "address")?.ok_or_else(|| invalid(V3, "address: required"))?;
    let address = address
        .parse()
        .map_err(|_| invalid(V3, format!("address: {address:?} is not an IP address")))?;
    let port = int(o, "protocol_port")?
        .map(|p| {
            u16::try_from(p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| invalid(V3, format!("protocol_port: 1 to 65535, not {p}")))
        })
        .transpose()?;
    let weight = match int(o, "weight")? {
        Some(w) => input::ranged("weight", w, V3)?,
        None => MemberWeight::DEFAULT,
    };
    Ok(MemberCreate {
        name: name(o)?.unwrap_or_default(),
        endpoint: MemberEndpoint::Address(address),
        port,
        weight,
        admin_state_up: flag(o, "admin_state_up")?.unwrap_or(true),
        subnet_id: text(o, "subnet_cidr_id")?.unwrap_or_default(),
    })
}

/// The array under `members` of a batch body, each item an object.
fn batch(body: &[u8]) -> Result<Vec<Map<String, Value>>, ApiError> {
    let v: Value = input::parse(body, V3)?;
    let Some(Value::Array(items)) = v.get("members") else {
        return Err(invalid(V3, "members: required, an array"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_object()
                .cloned()
                .ok_or_else(|| invalid(V3, format!("members[{i}]: must be an object")))
        })
        .collect()
}

async fn member_create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, pool)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let lb = pool_owner(&st, &caller, &pool).await?;
    let o = wrapped(&body, "member")?;
    let input = member_input(&o)?;
    let (lb, id) = st
        .service
        .member_add(&caller.actor(), lb.id, input)
        .await
        .map_err(e)?;
    let view = member_view(&lb, find(&lb, id)?);
    Ok(reply(StatusCode::CREATED, "member", view, &rid))
}

/// `batch-add`: every member or none (the service's rule); the answer lists the new members.
async fn member_batch_add(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, pool)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let lb = pool_owner(&st, &caller, &pool).await?;
    let inputs = batch(&body)?
        .iter()
        .map(member_input)
        .collect::<Result<Vec<_>, _>>()?;
    let (lb, ids) = st
        .service
        .members_add(&caller.actor(), lb.id, inputs)
        .await
        .map_err(e)?;
    let mut views = Vec::with_capacity(ids.len());
    for id in ids {
        let mut v = member_view(&lb, find(&lb, id)?);
        v["ret_status"] = json!("successful");
        views.push(v);
    }
    Ok(axum::Json(json!({"members": views, "request_id": rid.0})).into_response())
}

/// `batch-delete`: members named by `id`, or by `address` and `protocol_port` (default 4789);
/// every one or none.
async fn member_batch_delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, pool)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let lb = pool_owner(&st, &caller, &pool).await?;
    let mut ids = Vec::new();
    for (i, o) in batch(&body)?.iter().enumerate() {
        let id = match (text(o, "id")?, text(o, "address")?) {
            (Some(id), _) => member_id(&id)?,
            (None, Some(a)) => {
                let address: std::net::IpAddr = a
                    .parse()
                    .map_err(|_| invalid(V3, format!("address: {a:?} is not an IP address")))?;
                let port = int(o, "protocol_port")?.unwrap_or(i64::from(DEFAULT_MEMBER_PORT));
                lb.members
                    .iter()
                    .find(|m| m.address == address && i64::from(m.port) == port)
                    .map(|m| m.id)
                    .ok_or_else(|| not_found(ResourceKind::Member, &format!("{a}:{port}")))?
            }
            (None, None) => {
                return Err(invalid(
                    V3,
                    format!("members[{i}]: id, or address and protocol_port, required"),
                ))
            }
        };
        ids.push(id);
    }
    st.service
        .members_remove(&caller.actor(), lb.id, ids.clone())
        .await
        .map_err(e)?;
    let states: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id.to_string(), "ret_status": "successful"}))
        .collect();
    Ok(axum::Json(json!({"members": states, "request_id": rid.0})).into_response())
}

async fn member_show(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, pool, member)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let lb = pool_owner(&st, &caller, &pool).await?;
    let view = member_view(&lb, find(&lb, member_id(&member)?)?);
    Ok(reply(StatusCode::OK, "member", view, &rid))
}

async fn member_list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, pool)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let lb = pool_owner(&st, &caller, &pool).await?;
    let r = member_request(raw.as_deref())?;
    let (members, more) = member_page(&lb.members, &r)?;
    let views = members.iter().map(|m| member_view(&lb, m)).collect();
    Ok(paged_reply("members", views, more, r.reverse, &rid))
}

async fn member_update(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, pool, member)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let lb = pool_owner(&st, &caller, &pool).await?;
    let id = member_id(&member)?;
    let o = wrapped(&body, "member")?;
    let input = MemberUpdate {
        name: name(&o)?,
        weight: int(&o, "weight")?
            .map(|w| input::ranged("weight", w, V3))
            .transpose()?,
        admin_state_up: flag(&o, "admin_state_up")?,
    };
    let lb = st
        .service
        .member_update(&caller.actor(), lb.id, id, input)
        .await
        .map_err(e)?;
    let view = member_view(&lb, find(&lb, id)?);
    Ok(reply(StatusCode::OK, "member", view, &rid))
}

async fn member_delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, pool, member)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let lb = pool_owner(&st, &caller, &pool).await?;
    st.service
        .member_remove(&caller.actor(), lb.id, member_id(&member)?)
        .await
        .map_err(e)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- health monitors ------------------------------------------------------------------------

fn monitor_view(lb: &LoadBalancer, m: &HealthMonitor) -> Value {
    let mut v = kept(lb, "healthmonitor").cloned().unwrap_or_default();
    let view = json!({
        "id": derived(lb.id.0, MONITOR).to_string(),
        "project_id": lb.project_id.as_str(),
        "type": m.kind.as_str(),
        "monitor_port": m.port,
        "delay": m.interval.get(),
        "timeout": m.timeout.get(),
        "max_retries": m.up_threshold.get(),
        "max_retries_down": m.down_threshold.get(),
        "admin_state_up": m.admin_state_up,
        "pools": [{"id": derived(lb.id.0, POOL).to_string()}],
    });
    for (k, x) in view.as_object().expect("an object") {
        v.insert(k.clone(), x.clone());
    }
    Value::Object(v)
}

const MONITOR_FIELDS: &[&str] = &[
    "pool_id",
    "type",
    "monitor_port",
    "delay",
    "timeout",
    "max_retries",
    "max_retries_down",
    "admin_state_up",
];

/// `base` changed by the fields of `o`.
fn monitor_from(o: &Map<String, Value>, mut m: HealthMonitor) -> Result<HealthMonitor, ApiError> {
    if let Some(t) = text(o, "type")? {
        m.kind = t.parse().map_err(|e: InvalidValue| invalid(V3, e.0))?;
    }
    if let Some(p) = int(o, "monitor_port")? {
        m.port = Some(
            u16::try_from(p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| invalid(V3, format!("monitor_port: 1 to 65535, not {p}")))?,
        );
    }
    if let Some(v) = int(o, "delay")? {
        m.interval = input::ranged("delay", v, V3)?;
    }
    if let Some(v) = int(o, "timeout")? {
        m.timeout = input::ranged("timeout", v, V3)?;
    }
    if let Some(v) = int(o, "max_retries")? {
        m.up_threshold = input::ranged("max_retries", v, V3)?;
    }
    if let Some(v) = int(o, "max_retries_down")? {
        m.down_threshold = input::ranged("max_retries_down", v, V3)?;
    }
    if let Some(v) = flag(o, "admin_state_up")? {
        m.admin_state_up = v;
    }
    Ok(m)
}

async fn monitor_owner(st: &AppState, caller: &Caller, id: &str) -> Result<LoadBalancer, ApiError> {
    let lb = st
        .service
        .load_balancer_show(&caller.project, owner(id, MONITOR)?)
        .await
        .map_err(|err| named(err, id))?;
    if lb.health_monitor.is_none() {
        return Err(not_found(ResourceKind::LoadBalancer, id));
    }
    Ok(lb)
}

async fn monitor_create(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let o = wrapped(&body, "healthmonitor")?;
    let pool = text(&o, "pool_id")?.ok_or_else(|| invalid(V3, "pool_id: required"))?;
    for required in ["type", "delay", "timeout", "max_retries"] {
        if o.get(required).is_none_or(Value::is_null) {
            return Err(invalid(V3, format!("{required}: required")));
        }
    }
    // The body is checked before the state: a bad request is a 400 whatever exists.
    let monitor = monitor_from(&o, HealthMonitor::tcp())?;
    let lb = pool_owner(&st, &caller, &pool).await?;
    if lb.health_monitor.is_some() {
        return Err(e(DomainError::Conflict(format!(
            "pool {pool} already has its health monitor {}",
            derived(lb.id.0, MONITOR)
        ))
        .into()));
    }
    let keep = with_kept(&lb, "healthmonitor", Some(rest(&o, MONITOR_FIELDS)));
    let actor = caller.actor();
    st.service
        .load_balancer_update(
            &actor,
            lb.id,
            LoadBalancerUpdate {
                kept: Some(keep),
                ..Default::default()
            },
        )
        .await
        .map_err(e)?;
    let lb = st
        .service
        .health_monitor_set(&actor, lb.id, Some(monitor))
        .await
        .map_err(e)?;
    let m = lb.health_monitor.as_ref().expect("just set");
    Ok(reply(
        StatusCode::CREATED,
        "healthmonitor",
        monitor_view(&lb, m),
        &rid,
    ))
}

async fn monitor_show(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let lb = monitor_owner(&st, &caller, &id).await?;
    let m = lb
        .health_monitor
        .as_ref()
        .expect("checked by monitor_owner");
    Ok(reply(
        StatusCode::OK,
        "healthmonitor",
        monitor_view(&lb, m),
        &rid,
    ))
}

/// The project's health monitors (one per load balancer that has one), paged and filtered
/// like the pools.
async fn monitor_list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let r = monitor_request(raw.as_deref())?;
    let lbs = st
        .service
        .load_balancer_list(&caller.project)
        .await
        .map_err(e)?;
    let views = lbs
        .iter()
        .filter_map(|l| l.health_monitor.as_ref().map(|m| monitor_view(l, m)))
        .collect();
    let (views, more) = view_page(views, &r)?;
    Ok(paged_reply("healthmonitors", views, more, r.reverse, &rid))
}

async fn monitor_update(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(rid): Extension<RequestId>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let lb = monitor_owner(&st, &caller, &id).await?;
    let o = wrapped(&body, "healthmonitor")?;
    let current = lb.health_monitor.clone().expect("checked by monitor_owner");
    let monitor = monitor_from(&o, current)?;
    let lb = st
        .service
        .health_monitor_set(&caller.actor(), lb.id, Some(monitor))
        .await
        .map_err(e)?;
    let m = lb.health_monitor.as_ref().expect("just set");
    Ok(reply(
        StatusCode::OK,
        "healthmonitor",
        monitor_view(&lb, m),
        &rid,
    ))
}

async fn monitor_delete(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let lb = monitor_owner(&st, &caller, &id).await?;
    st.service
        .health_monitor_set(&caller.actor(), lb.id, None)
        .await
        .map_err(e)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
