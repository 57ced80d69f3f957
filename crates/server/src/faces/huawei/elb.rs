//! The ELB v3 subset that stands up a load balancer to mirror to: `/v3/{project_id}/elb/`
//! `loadbalancers`, `listeners`, `pools`, `pools/{id}/members` and `healthmonitors`
//! (`docs/load-balancers.md`).
//!
//! This face parses ELB's bodies and renders its views; the rules (one UDP listener and pool
//! per load balancer, the listener's default pool, a monitor per pool) are the service's
//! (`service::lb_parts`). A load balancer's listener, pool and monitor have ids derived from its
//! own ([`LbPart`]). Fields tmirror does not act on (flavors, availability zones, bandwidth,
//! the pool's algorithm, ...) are accepted, kept in the load balancer's `kept` document, and
//! shown back as given.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{json, Map, Value};
use tmirror_model::*;
use uuid::Uuid;

use super::elb_list::{
    lb_request, listener_request, member_page, member_request, monitor_request, page_info,
    pool_request, view_page, ListRequest,
};
use super::error::{from_service, invalid};
use super::input::{self, check_description, check_name};
use super::V3;
use crate::auth::Caller;
use crate::http::{ApiError, RequestId};
use crate::service::{
    kept_doc as kept, part_doc, with_kept_doc, DefaultPool, ListenerCreate, ListenerUpdate,
    LoadBalancerCreate, LoadBalancerUpdate, MemberCreate, MemberEndpoint, MemberUpdate, PoolCreate,
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

/// What every handler of the subset starts from: the state, who calls (set by the signing
/// layer) and the request's id.
struct Ctx {
    st: AppState,
    caller: Caller,
    rid: RequestId,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let Extension(caller) = Extension::<Caller>::from_request_parts(parts, st)
            .await
            .map_err(IntoResponse::into_response)?;
        let Extension(rid) = Extension::<RequestId>::from_request_parts(parts, st)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Ctx {
            st: st.clone(),
            caller,
            rid,
        })
    }
}

/// The id of a load balancer's part.
fn derived(lb: LoadBalancerId, part: LbPart) -> String {
    part.id_of(lb).to_string()
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

/// The load balancer a listener, pool or monitor id names.
fn owner(s: &str, part: LbPart) -> Result<LoadBalancerId, ApiError> {
    s.parse::<Uuid>()
        .map(|u| part.owner(u))
        .map_err(|_| not_found(ResourceKind::LoadBalancer, s))
}

/// The load balancer of the listener, pool or monitor `id`, if that part exists.
async fn part_owner(
    st: &AppState,
    caller: &Caller,
    id: &str,
    part: LbPart,
) -> Result<LoadBalancer, ApiError> {
    let lb = st
        .service
        .load_balancer_show(&caller.project, owner(id, part)?)
        .await
        .map_err(|err| named(err, id))?;
    let exists = match part {
        LbPart::Monitor => lb.health_monitor.is_some(),
        LbPart::Listener | LbPart::Pool => part_doc(&lb, part).is_some(),
    };
    if !exists {
        return Err(not_found(ResourceKind::LoadBalancer, id));
    }
    Ok(lb)
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
    let pools: Vec<Value> = part_doc(lb, LbPart::Pool)
        .map(|_| json!({"id": derived(lb.id, LbPart::Pool)}))
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

async fn lb_create(Ctx { st, caller, rid }: Ctx, body: Bytes) -> Result<Response, ApiError> {
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
    Ctx { st, caller, rid }: Ctx,
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
    Ctx { st, caller, rid }: Ctx,
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
    Ctx { st, caller, rid }: Ctx,
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
        kept: Some(with_kept_doc(&current, "loadbalancer", Some(keep))),
    };
    let lb = st
        .service
        .load_balancer_update(&caller.actor(), id, input)
        .await
        .map_err(e)?;
    Ok(reply(StatusCode::OK, "loadbalancer", lb_view(&lb), &rid))
}

async fn lb_delete(
    Ctx { st, caller, .. }: Ctx,
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
    part_doc(lb, LbPart::Listener)
        .map(|_| json!({"id": derived(lb.id, LbPart::Listener)}))
        .into_iter()
        .collect()
}

fn listener_view(lb: &LoadBalancer) -> Value {
    let mut v = part_doc(lb, LbPart::Listener).cloned().unwrap_or_default();
    let view = json!({
        "id": derived(lb.id, LbPart::Listener),
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

/// The listener fields of `o` the face keeps, with the ones it shows (name, description,
/// admin state) checked, and the default pool the body names (`None`: not named).
fn listener_input(
    o: &Map<String, Value>,
) -> Result<(Map<String, Value>, Option<DefaultPool>), ApiError> {
    let mut keep = rest(o, LISTENER_FIELDS);
    if let Some(n) = name(o)? {
        keep.insert("name".into(), json!(n));
    }
    if let Some(d) = description(o)? {
        keep.insert("description".into(), json!(d));
    }
    if let Some(a) = flag(o, "admin_state_up")? {
        keep.insert("admin_state_up".into(), json!(a));
    }
    let pool = match o.get("default_pool_id") {
        None => None,
        Some(Value::Null) => Some(DefaultPool::None),
        Some(_) => {
            let written = text(o, "default_pool_id")?.expect("present");
            Some(DefaultPool::Pool {
                owner: written.parse::<Uuid>().ok().map(|u| LbPart::Pool.owner(u)),
                written,
            })
        }
    };
    Ok((keep, pool))
}

async fn listener_create(Ctx { st, caller, rid }: Ctx, body: Bytes) -> Result<Response, ApiError> {
    let o = wrapped(&body, "listener")?;
    let lb =
        text(&o, "loadbalancer_id")?.ok_or_else(|| invalid(V3, "loadbalancer_id: required"))?;
    let protocol = text(&o, "protocol")?.ok_or_else(|| invalid(V3, "protocol: required"))?;
    let port = int(&o, "protocol_port")?.ok_or_else(|| invalid(V3, "protocol_port: required"))?;
    let (kept, default_pool) = listener_input(&o)?;
    let input = ListenerCreate {
        protocol,
        port,
        default_pool,
        kept,
    };
    let lb = st
        .service
        .listener_create(&caller.actor(), lb_id(&lb)?, input)
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
    Ctx { st, caller, rid }: Ctx,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let lb = part_owner(&st, &caller, &id, LbPart::Listener).await?;
    Ok(reply(StatusCode::OK, "listener", listener_view(&lb), &rid))
}

/// A listed part: how its list request is parsed, its view of a load balancer that has it
/// (`None`: one that has not), and the key of the list.
struct PartList {
    request: fn(Option<&str>) -> Result<ListRequest<&'static str>, ApiError>,
    view: fn(&LoadBalancer) -> Option<Value>,
    key: &'static str,
}

/// A list of listeners, pools or monitors: one per load balancer of the project that has one
/// (few: see the quota), paged and filtered here (`elb_list::view_page`).
async fn part_list(
    Ctx { st, caller, rid }: Ctx,
    raw: Option<String>,
    list: PartList,
) -> Result<Response, ApiError> {
    let r = (list.request)(raw.as_deref())?;
    let lbs = st
        .service
        .load_balancer_list(&caller.project)
        .await
        .map_err(e)?;
    let views = lbs.iter().filter_map(list.view).collect();
    let (views, more) = view_page(views, &r)?;
    Ok(paged_reply(list.key, views, more, r.reverse, &rid))
}

async fn listener_list(cx: Ctx, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let list = PartList {
        request: listener_request,
        view: |lb| part_doc(lb, LbPart::Listener).map(|_| listener_view(lb)),
        key: "listeners",
    };
    part_list(cx, raw, list).await
}

/// `protocol`, `protocol_port` and `loadbalancer_id` cannot change: ELB's update body has none
/// of them.
async fn listener_update(
    Ctx { st, caller, rid }: Ctx,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let lb = owner(&id, LbPart::Listener)?;
    let o = wrapped(&body, "listener")?;
    for fixed in ["protocol", "protocol_port", "loadbalancer_id"] {
        if o.get(fixed).is_some_and(|v| !v.is_null()) {
            return Err(invalid(V3, format!("{fixed}: cannot be changed")));
        }
    }
    let (kept, default_pool) = listener_input(&o)?;
    let lb = st
        .service
        .listener_update(&caller.actor(), lb, ListenerUpdate { default_pool, kept })
        .await
        .map_err(|err| named(err, &id))?;
    Ok(reply(StatusCode::OK, "listener", listener_view(&lb), &rid))
}

async fn listener_delete(
    Ctx { st, caller, .. }: Ctx,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    st.service
        .listener_delete(&caller.actor(), owner(&id, LbPart::Listener)?)
        .await
        .map_err(|err| named(err, &id))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- pools ----------------------------------------------------------------------------------

const POOL_FIELDS: &[&str] = &["loadbalancer_id", "listener_id", "protocol", "lb_algorithm"];

fn pool_view(lb: &LoadBalancer) -> Value {
    let mut v = part_doc(lb, LbPart::Pool).cloned().unwrap_or_default();
    let monitor = lb
        .health_monitor
        .as_ref()
        .map(|_| derived(lb.id, LbPart::Monitor));
    let view = json!({
        "id": derived(lb.id, LbPart::Pool),
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
    part_owner(st, caller, id, LbPart::Pool).await
}

async fn pool_create(Ctx { st, caller, rid }: Ctx, body: Bytes) -> Result<Response, ApiError> {
    let o = wrapped(&body, "pool")?;
    let by_lb = text(&o, "loadbalancer_id")?;
    let by_listener = text(&o, "listener_id")?;
    let protocol = text(&o, "protocol")?.ok_or_else(|| invalid(V3, "protocol: required"))?;
    let algorithm =
        text(&o, "lb_algorithm")?.ok_or_else(|| invalid(V3, "lb_algorithm: required"))?;
    // One of the two, as in ELB: the listener's load balancer, or the load balancer named.
    if by_lb.is_none() && by_listener.is_none() {
        return Err(invalid(V3, "loadbalancer_id or listener_id: required"));
    }
    let mut kept = rest(&o, POOL_FIELDS);
    kept.insert("lb_algorithm".into(), json!(algorithm));
    let input = PoolCreate {
        load_balancer: by_lb.as_deref().map(lb_id).transpose()?,
        listener: match &by_listener {
            Some(l) => Some((owner(l, LbPart::Listener)?, l.clone())),
            None => None,
        },
        protocol,
        kept,
    };
    let lb = st
        .service
        .pool_create(&caller.actor(), input)
        .await
        .map_err(|err| match &by_listener {
            // The load balancer named is read as the listener's when there is one.
            Some(l) => named(err, l),
            None => e(err),
        })?;
    Ok(reply(StatusCode::CREATED, "pool", pool_view(&lb), &rid))
}

async fn pool_show(
    Ctx { st, caller, rid }: Ctx,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let lb = pool_owner(&st, &caller, &id).await?;
    Ok(reply(StatusCode::OK, "pool", pool_view(&lb), &rid))
}

async fn pool_list(cx: Ctx, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let list = PartList {
        request: pool_request,
        view: |lb| part_doc(lb, LbPart::Pool).map(|_| pool_view(lb)),
        key: "pools",
    };
    part_list(cx, raw, list).await
}

/// Deleting the pool removes its monitor; refused while it has members (the service's rules).
async fn pool_delete(
    Ctx { st, caller, .. }: Ctx,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    st.service
        .pool_delete(&caller.actor(), owner(&id, LbPart::Pool)?)
        .await
        .map_err(|err| named(err, &id))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- members --------------------------------------------------------------------------------

fn member_view(lb: &LoadBalancer, m: &LbMember) -> Value {
    json!({
        "id": m.id.to_string(),
        "name": m.name,
        "project_id": lb.project_id.as_str(),
        "pool_id": derived(lb.id, LbPart::Pool),
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
    Ctx { st, caller, rid }: Ctx,
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
    Ctx { st, caller, rid }: Ctx,
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
    Ctx { st, caller, rid }: Ctx,
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
    Ctx { st, caller, rid }: Ctx,
    Path((_, pool, member)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let lb = pool_owner(&st, &caller, &pool).await?;
    let view = member_view(&lb, find(&lb, member_id(&member)?)?);
    Ok(reply(StatusCode::OK, "member", view, &rid))
}

async fn member_list(
    Ctx { st, caller, rid }: Ctx,
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
    Ctx { st, caller, rid }: Ctx,
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
    Ctx { st, caller, .. }: Ctx,
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
    let mut v = part_doc(lb, LbPart::Monitor).cloned().unwrap_or_default();
    let view = json!({
        "id": derived(lb.id, LbPart::Monitor),
        "project_id": lb.project_id.as_str(),
        "type": m.kind.as_str(),
        "monitor_port": m.port,
        "delay": m.interval.get(),
        "timeout": m.timeout.get(),
        "max_retries": m.up_threshold.get(),
        "max_retries_down": m.down_threshold.get(),
        "admin_state_up": m.admin_state_up,
        "pools": [{"id": derived(lb.id, LbPart::Pool)}],
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
    part_owner(st, caller, id, LbPart::Monitor).await
}

/// A pool's monitor: one per pool, the service's rule.
async fn monitor_create(Ctx { st, caller, rid }: Ctx, body: Bytes) -> Result<Response, ApiError> {
    let o = wrapped(&body, "healthmonitor")?;
    let pool = text(&o, "pool_id")?.ok_or_else(|| invalid(V3, "pool_id: required"))?;
    for required in ["type", "delay", "timeout", "max_retries"] {
        if o.get(required).is_none_or(Value::is_null) {
            return Err(invalid(V3, format!("{required}: required")));
        }
    }
    // The body is checked before the state: a bad request is a 400 whatever exists.
    let monitor = monitor_from(&o, HealthMonitor::tcp())?;
    let lb = st
        .service
        .monitor_create(
            &caller.actor(),
            owner(&pool, LbPart::Pool)?,
            monitor,
            rest(&o, MONITOR_FIELDS),
        )
        .await
        .map_err(|err| named(err, &pool))?;
    let m = lb.health_monitor.as_ref().expect("just set");
    Ok(reply(
        StatusCode::CREATED,
        "healthmonitor",
        monitor_view(&lb, m),
        &rid,
    ))
}

async fn monitor_show(
    Ctx { st, caller, rid }: Ctx,
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
async fn monitor_list(cx: Ctx, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let list = PartList {
        request: monitor_request,
        view: |lb| lb.health_monitor.as_ref().map(|m| monitor_view(lb, m)),
        key: "healthmonitors",
    };
    part_list(cx, raw, list).await
}

async fn monitor_update(
    Ctx { st, caller, rid }: Ctx,
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
    Ctx { st, caller, .. }: Ctx,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let lb = monitor_owner(&st, &caller, &id).await?;
    st.service
        .health_monitor_set(&caller.actor(), lb.id, None)
        .await
        .map_err(e)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
