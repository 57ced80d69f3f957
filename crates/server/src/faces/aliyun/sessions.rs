//! The session actions.

use std::ops::RangeInclusive;

use rand::Rng;
use serde_json::{json, Value};
use tmirror_model::*;
use tmirror_store::{Condition, ListQuery, SessionField, Value as Q};
use uuid::Uuid;

use super::error::{from_service, illegal, missing, not_found};
use super::states;
use super::tags::{self, Extras, NarrowingFields, SESSION};
use super::{
    check_description, check_name, creation_time, from_list_error, ids, marker_of, ok,
    unknown_token, Answer, Begun, Ctx, Write,
};
use crate::http::ApiError;
use crate::service::states::{
    lifecycle, tombstone_state, AliyunSessionPage, Applied, Change, Lifecycle,
};
use crate::service::{ServiceError, SessionCreate, SessionUpdate, TargetChange};
use std::collections::{HashMap, HashSet};
use tmirror_store::AliyunTombstone;

fn session_id(ctx: &Ctx<'_>) -> Result<SessionId, ApiError> {
    let s = ctx.p.required("TrafficMirrorSessionId")?;
    ids::parse(ResourceKind::Session, s)
        .map(SessionId)
        .ok_or_else(|| not_found(ResourceKind::Session, s))
}

fn filter_id(s: &str) -> Result<FilterId, ApiError> {
    ids::parse(ResourceKind::Filter, s)
        .map(FilterId)
        .ok_or_else(|| not_found(ResourceKind::Filter, s))
}

fn port_id(s: &str) -> Result<PortId, ApiError> {
    ids::parse(ResourceKind::Port, s)
        .map(PortId)
        .ok_or_else(|| not_found(ResourceKind::Port, s))
}

fn sources(ctx: &Ctx<'_>) -> Result<Vec<PortId>, ApiError> {
    let list = ctx.p.list("TrafficMirrorSourceIds")?;
    if list.is_empty() {
        return Err(missing("TrafficMirrorSourceIds.N"));
    }
    list.iter().map(|s| port_id(s)).collect()
}

fn target_type(s: &str) -> Result<TargetType, ApiError> {
    match s {
        "NetworkInterface" => Ok(TargetType::Eni),
        "SLB" => Ok(TargetType::Elb),
        other => Err(illegal(
            "TrafficMirrorTargetType",
            format!("{other:?}: must be NetworkInterface or SLB"),
        )),
    }
}

fn shown_target_type(t: TargetType) -> &'static str {
    match t {
        TargetType::Eni => "NetworkInterface",
        TargetType::Elb => "SLB",
    }
}

/// The target for a type: an `eni-` id for NetworkInterface, an `lb-` id for SLB.
fn target(kind: TargetType, s: &str) -> Result<SessionTarget, ApiError> {
    match kind {
        TargetType::Eni => port_id(s).map(SessionTarget::Port),
        TargetType::Elb => ids::parse(ResourceKind::LoadBalancer, s)
            .map(|u| SessionTarget::LoadBalancer(LoadBalancerId(u)))
            .ok_or_else(|| not_found(ResourceKind::LoadBalancer, s)),
    }
}

/// The id a target shows in this face.
fn shown_target_id(t: SessionTarget) -> String {
    match t {
        SessionTarget::Port(p) => ids::show(ResourceKind::Port, p.0),
        SessionTarget::LoadBalancer(l) => ids::show(ResourceKind::LoadBalancer, l.0),
    }
}

fn priority(ctx: &Ctx<'_>) -> Result<Option<SessionPriority>, ApiError> {
    ctx.p.ranged("Priority")
}

fn vni(ctx: &Ctx<'_>) -> Result<Option<Vni>, ApiError> {
    ctx.p.ranged("VirtualNetworkId")
}

/// Alibaba copies 64 to 8500 bytes of a packet (the model allows from 1, for Huawei).
const PACKET_LENGTH: RangeInclusive<i64> = 64..=PacketLength::HIGHEST;

fn packet_length(ctx: &Ctx<'_>) -> Result<Option<PacketLength>, ApiError> {
    ctx.p.ranged_within("PacketLength", PACKET_LENGTH)
}

pub async fn create(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let filter = filter_id(ctx.p.required("TrafficMirrorFilterId")?)?;
    let sources = sources(ctx)?;
    let target_raw = ctx.p.required("TrafficMirrorTargetId")?;
    let kind = target_type(ctx.p.required("TrafficMirrorTargetType")?)?;
    let target = target(kind, target_raw)?;
    let priority = priority(ctx)?.ok_or_else(|| missing("Priority"))?;
    // Alibaba picks a random VNI when none is given.
    let vni = match vni(ctx)? {
        Some(v) => v,
        None => Vni::new(rand::thread_rng().gen_range(Vni::LOWEST..=Vni::HIGHEST))
            .expect("drawn from Vni's own range"),
    };
    let packet_length = packet_length(ctx)?.unwrap_or(PacketLength::MTU);
    let name = check_name(ctx, "TrafficMirrorSessionName")?.unwrap_or_default();
    let description =
        check_description(ctx, "TrafficMirrorSessionDescription")?.unwrap_or_default();
    let enabled = ctx.p.bool("Enabled")?.unwrap_or(false);
    let group = tags::parse_group(ctx, "ResourceGroupId")?;
    let tag_list = tags::parse_tags(ctx, "Tag")?;
    let mut w = match Write::begin(ctx, true).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    let s = w
        .service(ctx)?
        .session_create(SessionCreate {
            name,
            description,
            filter_id: filter,
            sources: SessionSources::Eni(sources),
            target,
            vni,
            packet_length,
            priority,
            enabled,
        })
        .await
        .map_err(from_service)?;
    let canonical = s.id.to_string();
    if let Some(g) = &group {
        w.records()
            .aliyun_set_resource_group(ctx.project(), SESSION, &canonical, g)
            .await
            .map_err(|e| from_service(e.into()))?;
    }
    tags::add_tags(&mut w, ctx.project(), SESSION, &canonical, &tag_list).await?;
    let answer = json!({
        "TrafficMirrorSessionId": ids::show(ResourceKind::Session, s.id.0),
        "ResourceGroupId": group.as_deref().unwrap_or(tags::DEFAULT_GROUP),
    });
    w.finish(ctx, answer).await
}

pub async fn delete(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let id = session_id(ctx)?;
    let applied = ctx.st.service.applied().await.map_err(from_service)?;
    let mut w = match Write::begin(ctx, true).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    states::session_settled(&mut w, ctx, id, &applied).await?;
    let tombstone = tombstone(ctx, &mut w, ctx.project(), id, &applied).await?;
    w.service(ctx)?
        .session_delete(id)
        .await
        .map_err(from_service)?;
    if let Some(t) = tombstone {
        w.records()
            .aliyun_put_tombstone(ctx.project(), &t)
            .await
            .map_err(|e| from_service(e.into()))?;
    }
    w.finish(ctx, ok()).await
}

/// What a deleted session leaves for `ListTrafficMirrorSessions` to show as `Deleting`: only
/// when a connected agent hosts it (and so has the deletion to apply).
async fn tombstone(
    ctx: &Ctx<'_>,
    w: &mut Write,
    project: &ProjectId,
    id: SessionId,
    applied: &Applied,
) -> Result<Option<AliyunTombstone>, ApiError> {
    let s = match w.service(ctx)?.session_show(id).await {
        Ok(s) => s,
        // No such session: the deletion gives the answer.
        Err(ServiceError::Domain(DomainError::NotFound { .. })) => return Ok(None),
        Err(e) => return Err(from_service(e)),
    };
    let hosts: Vec<String> = w
        .service(ctx)?
        .session_hosts(project, &s, applied)
        .await
        .map_err(from_service)?
        .into_iter()
        .collect();
    let held = lifecycle(
        Change::Deleted(u64::MAX),
        hosts.iter().map(String::as_str),
        applied,
    );
    if held != Lifecycle::Deleting {
        return Ok(None);
    }
    let extras = Extras::load_in(w, project, SESSION, &[id.to_string()]).await?;
    let shown = HashMap::from([(id, Lifecycle::Deleting)]);
    Ok(Some(AliyunTombstone {
        id: id.to_string(),
        kind: SESSION.to_owned(),
        revision: 0,
        view: serde_json::to_value(view(&s, &extras, &shown, &HashMap::new()))
            .expect("a session's view is JSON"),
        hosts,
    }))
}

pub async fn update(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let id = session_id(ctx)?;
    let kind = ctx
        .p
        .get("TrafficMirrorTargetType")
        .map(target_type)
        .transpose()?;
    let filter = ctx
        .p
        .get("TrafficMirrorFilterId")
        .map(filter_id)
        .transpose()?;
    let name = check_name(ctx, "TrafficMirrorSessionName")?;
    let description = check_description(ctx, "TrafficMirrorSessionDescription")?;
    let priority = priority(ctx)?;
    let vni = vni(ctx)?;
    let packet_length = packet_length(ctx)?;
    let enabled = ctx.p.bool("Enabled")?;
    let applied = ctx.st.service.applied().await.map_err(from_service)?;
    let mut w = match Write::begin(ctx, true).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    states::session_settled(&mut w, ctx, id, &applied).await?;
    let target = match ctx.p.get("TrafficMirrorTargetId") {
        None => None,
        Some(raw) => {
            // The id's kind follows the type sent with it, else the session's current type.
            let current = match kind {
                Some(k) => k,
                None => w
                    .service(ctx)?
                    .session_show(id)
                    .await
                    .map_err(from_service)?
                    .target
                    .kind(),
            };
            Some(target(current, raw)?)
        }
    };
    w.service(ctx)?
        .session_update(
            id,
            SessionUpdate {
                name,
                description,
                filter_id: filter,
                target: TargetChange {
                    kind,
                    id: target.map(|t| t.id()),
                },
                vni,
                packet_length,
                priority,
                enabled,
                source_type: None,
            },
        )
        .await
        .map_err(from_service)?;
    w.finish(ctx, ok()).await
}

pub async fn add_sources(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let id = session_id(ctx)?;
    let add = sources(ctx)?;
    let applied = ctx.st.service.applied().await.map_err(from_service)?;
    let mut w = match Write::begin(ctx, true).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    states::session_settled(&mut w, ctx, id, &applied).await?;
    w.service(ctx)?
        .session_add_sources(id, add.iter().map(|p| p.0).collect())
        .await
        .map_err(from_service)?;
    w.finish(ctx, ok()).await
}

pub async fn remove_sources(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let id = session_id(ctx)?;
    let remove = sources(ctx)?;
    if remove.len() > 10 {
        return Err(illegal(
            "TrafficMirrorSourceIds",
            "at most 10 sources per request",
        ));
    }
    let applied = ctx.st.service.applied().await.map_err(from_service)?;
    let mut w = match Write::begin(ctx, true).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    states::session_settled(&mut w, ctx, id, &applied).await?;
    w.service(ctx)?
        .session_remove_sources(id, remove.iter().map(|p| p.0).collect())
        .await
        .map_err(from_service)?;
    w.finish(ctx, ok()).await
}

/// `TrafficMirrorSessionBusinessStatus`: Alibaba's `Normal`, or why the session's load
/// balancer cannot share its copies (tmirror's values, in the API's style; docs/load-balancers.md).
fn business_status(degraded: Option<LbDegraded>) -> &'static str {
    match degraded {
        None => "Normal",
        // No backend server takes flows: copies go nowhere.
        Some(LbDegraded::NoMembers) => "NoBackendServer",
        // Every backend server fails its check: copies go to all of them (fail open).
        Some(LbDegraded::NoneHealthy) => "BackendServerAbnormal",
    }
}

/// A session as `ListTrafficMirrorSessions` shows it, serialised straight to the answer's
/// text: building a `serde_json::Value` tree first (a map node per field) and serialising that
/// was a tenth of a describe's instructions (docs/performance.md).
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct SessionView<'a> {
    traffic_mirror_session_id: String,
    traffic_mirror_session_name: &'a str,
    traffic_mirror_session_description: &'a str,
    traffic_mirror_session_status: &'static str,
    traffic_mirror_session_business_status: &'static str,
    enabled: bool,
    priority: u16,
    virtual_network_id: u32,
    packet_length: u16,
    traffic_mirror_filter_id: String,
    traffic_mirror_source_ids: Vec<String>,
    traffic_mirror_target_id: String,
    traffic_mirror_target_type: &'static str,
    resource_group_id: &'a str,
    creation_time: String,
    tags: Vec<TagView<'a>>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct TagView<'a> {
    key: &'a str,
    value: &'a str,
}

fn view<'a>(
    s: &'a Session,
    extras: &'a Extras,
    states: &HashMap<SessionId, Lifecycle>,
    degraded: &HashMap<SessionId, LbDegraded>,
) -> SessionView<'a> {
    let id = s.id.to_string();
    SessionView {
        traffic_mirror_session_id: ids::show(ResourceKind::Session, s.id.0),
        traffic_mirror_session_name: &s.name,
        traffic_mirror_session_description: &s.description,
        traffic_mirror_session_status: states
            .get(&s.id)
            .copied()
            .unwrap_or(Lifecycle::Created)
            .as_str(),
        traffic_mirror_session_business_status: business_status(degraded.get(&s.id).copied()),
        enabled: s.enabled,
        priority: s.priority.get(),
        virtual_network_id: s.vni.get(),
        packet_length: s.packet_length.get(),
        traffic_mirror_filter_id: ids::show(ResourceKind::Filter, s.filter_id.0),
        traffic_mirror_source_ids: s
            .sources
            .ports()
            .iter()
            .map(|p| ids::show(ResourceKind::Port, p.0))
            .collect(),
        traffic_mirror_target_id: shown_target_id(s.target),
        traffic_mirror_target_type: shown_target_type(s.target.kind()),
        resource_group_id: extras.group(&id),
        creation_time: creation_time(s.created_at),
        tags: extras
            .tags_of(&id)
            .iter()
            .map(|(key, value)| TagView { key, value })
            .collect(),
    }
}

/// A row of the answer: a live session's view, or a deleted one's as it was kept.
// At most a page of them lives, for one serialisation: a box per row would cost more.
#[allow(clippy::large_enum_variant)]
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Shown<'a> {
    Live(SessionView<'a>),
    Deleting(&'a Value),
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct SessionList<'a> {
    total_count: String,
    next_token: String,
    traffic_mirror_sessions: Vec<Shown<'a>>,
}

pub async fn list(ctx: &Ctx<'_>) -> Result<Answer, ApiError> {
    let max = ctx.p.int_within("MaxResults", 1..=100)?.unwrap_or(10) as usize;
    let wanted_tags = tags::parse_tags(ctx, "Tags")?;
    let group = ctx.p.get("ResourceGroupId").map(str::to_owned);
    let mut conditions = Vec::new();
    // An id of the wrong form names nothing: the answer is an empty list, not an error.
    let mut nothing = false;
    let wanted_ids = ctx.p.list("TrafficMirrorSessionIds")?;
    if wanted_ids.len() > 100 {
        return Err(illegal("TrafficMirrorSessionIds", "at most 100 ids"));
    }
    if !wanted_ids.is_empty() {
        let values: Vec<Q> = wanted_ids
            .iter()
            .filter_map(|s| ids::parse(ResourceKind::Session, s))
            .map(|u| Q::Text(u.hyphenated().to_string()))
            .collect();
        nothing |= values.is_empty();
        conditions.push(Condition {
            field: SessionField::Id,
            values,
        });
    }
    for (param, kind, field) in [
        (
            "TrafficMirrorFilterId",
            ResourceKind::Filter,
            SessionField::FilterId,
        ),
        (
            "TrafficMirrorSourceId",
            ResourceKind::Port,
            SessionField::SourceId,
        ),
        (
            "TrafficMirrorTargetId",
            ResourceKind::Port,
            SessionField::TargetId,
        ),
    ] {
        if let Some(v) = ctx.p.get(param) {
            // A target is a port (`eni-`) or a load balancer (`lb-`).
            let parsed = ids::parse(kind, v).or_else(|| {
                (field == SessionField::TargetId)
                    .then(|| ids::parse(ResourceKind::LoadBalancer, v))
                    .flatten()
            });
            match parsed {
                Some(u) => conditions.push(Condition {
                    field,
                    values: vec![Q::Text(u.hyphenated().to_string())],
                }),
                None => nothing = true,
            }
        }
    }
    if let Some(name) = ctx.p.get("TrafficMirrorSessionName") {
        conditions.push(Condition {
            field: SessionField::Name,
            values: vec![Q::Text(name.to_owned())],
        });
    }
    if let Some(v) = ctx.p.int("VirtualNetworkId")? {
        conditions.push(Condition {
            field: SessionField::Vni,
            values: vec![Q::Int(v)],
        });
    }
    if let Some(v) = ctx.p.int("Priority")? {
        conditions.push(Condition {
            field: SessionField::Priority,
            values: vec![Q::Int(v)],
        });
    }
    if let Some(v) = ctx.p.bool("Enabled")? {
        conditions.push(Condition {
            field: SessionField::Enabled,
            values: vec![Q::Bool(v)],
        });
    }
    conditions.extend(tags::narrowing(
        group.as_deref(),
        &wanted_tags,
        &NarrowingFields {
            group: SessionField::ResourceGroup,
            group_absent_or: SessionField::ResourceGroupAbsentOr,
            tag_key: SessionField::TagKey,
            tag_pair: SessionField::TagPair,
        },
    ));
    let applied = ctx.st.service.applied().await.map_err(from_service)?;
    let token = ctx.p.get("NextToken");
    let mut q = ListQuery {
        conditions,
        marker: None,
        limit: max as u32,
    };
    // A first page by ids (the SDKs' "describe") that found every id live has no deleted one
    // to add: its tombstones need not be read. Otherwise the page waits for them (a token may
    // point into them).
    let wanted: HashSet<Uuid> = wanted_ids
        .iter()
        .filter_map(|s| ids::parse(ResourceKind::Session, s))
        .collect();
    let mut first_page = None;
    if !nothing && token.is_none() && !wanted.is_empty() {
        let read = page_of(ctx, &q, &applied).await?;
        let found: HashSet<Uuid> = read.page.items.iter().map(|s| s.id.0).collect();
        let all_live = found.is_superset(&wanted);
        first_page = Some((read, all_live));
    }
    // Deleted sessions some connected agent has still to remove (the server forgets the others
    // in the background: a list only reads). They follow the live ones, few and in memory.
    let mut gone = Vec::new();
    if !nothing && !matches!(first_page, Some((_, true))) {
        let tombstones = ctx
            .st
            .service
            .aliyun_tombstones(ctx.project(), SESSION)
            .await
            .map_err(from_service)?;
        let hosts: Vec<String> = tombstones.iter().flat_map(|t| t.hosts.clone()).collect();
        ctx.st
            .service
            .look_up_hosts(&applied, &hosts)
            .await
            .map_err(from_service)?;
        for t in tombstones {
            if tombstone_state(&t, &applied) == Lifecycle::Deleting
                && shown_matches(ctx, &t.view, &wanted_ids, &group, &wanted_tags)?
            {
                gone.push(t.view);
            }
        }
    }
    let gone_id = |v: &Value| {
        v["TrafficMirrorSessionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    // The token is the last shown id: a live session's (the store pages on after it) or a
    // deleted one's (the live part is over).
    let gone_from = token.and_then(|t| gone.iter().position(|v| gone_id(v) == t));
    let mut live = Vec::new();
    let mut live_more = false;
    let mut states = HashMap::new();
    let mut extras = Extras::default();
    let mut total = gone.len() as u64;
    if !nothing {
        if gone_from.is_none() {
            let read = match first_page {
                Some((read, _)) => read,
                None => {
                    q.marker = token
                        .map(|t| marker_of(ResourceKind::Session, t))
                        .transpose()?;
                    page_of(ctx, &q, &applied).await?
                }
            };
            live = read.page.items;
            live_more = read.page.more;
            states = read.states;
            extras = Extras::from_records(read.extras);
        }
        // A first page with nothing after it is the whole list: its length is the count
        // (a request by ids, the SDKs' "describe", needs no second query).
        total += if token.is_none() && !live_more {
            live.len() as u64
        } else {
            q.marker = None;
            ctx.st
                .service
                .session_count(ctx.project(), &q)
                .await
                .map_err(from_service)?
        };
    } else if token.is_some() {
        return Err(unknown_token());
    }
    let mut items: Vec<Listed> = live.into_iter().map(Listed::Live).collect();
    let rest = gone.into_iter().skip(gone_from.map_or(0, |i| i + 1));
    let mut rest = rest.map(Listed::Deleting).peekable();
    let mut more = live_more;
    if !live_more {
        while items.len() < max {
            match rest.next() {
                Some(v) => items.push(v),
                None => break,
            }
        }
        more = rest.peek().is_some();
    }
    let next = match items.last() {
        Some(last) if more => last.shown_id(),
        _ => String::new(),
    };
    let live: Vec<Session> = items
        .iter()
        .filter_map(|i| match i {
            Listed::Live(s) => Some(s.clone()),
            Listed::Deleting(_) => None,
        })
        .collect();
    let degraded = ctx
        .st
        .service
        .session_targets_degraded(ctx.project(), &live)
        .await
        .map_err(from_service)?;
    let shown = items
        .iter()
        .map(|i| match i {
            Listed::Live(s) => Shown::Live(view(s, &extras, &states, &degraded)),
            Listed::Deleting(v) => Shown::Deleting(v),
        })
        .collect();
    Answer::text(&SessionList {
        total_count: total.to_string(),
        next_token: next,
        traffic_mirror_sessions: shown,
    })
}

/// A page of the list with the state, tags and group of each of its sessions.
async fn page_of(
    ctx: &Ctx<'_>,
    q: &ListQuery<SessionField>,
    applied: &Applied,
) -> Result<AliyunSessionPage, ApiError> {
    let service = &ctx.st.service;
    let read = service.aliyun_session_page(ctx.project(), q, applied);
    read.await.map_err(from_list_error)
}

/// A row of `ListTrafficMirrorSessions`: a session, or the view of a deleted one.
enum Listed {
    Live(Session),
    Deleting(Value),
}

impl Listed {
    fn shown_id(&self) -> String {
        match self {
            Listed::Live(s) => ids::show(ResourceKind::Session, s.id.0),
            Listed::Deleting(v) => v["TrafficMirrorSessionId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// Whether a deleted session's view matches the list's filters (the live sessions are
/// filtered by the store).
fn shown_matches(
    ctx: &Ctx<'_>,
    v: &Value,
    wanted_ids: &[String],
    group: &Option<String>,
    wanted_tags: &[(String, Option<String>)],
) -> Result<bool, ApiError> {
    let same = |kind: ResourceKind, a: &str, b: &Value| {
        b.as_str()
            .and_then(|b| ids::parse(kind, b))
            .is_some_and(|b| ids::parse(kind, a) == Some(b))
    };
    let id = &v["TrafficMirrorSessionId"];
    if !wanted_ids.is_empty()
        && !wanted_ids
            .iter()
            .any(|w| same(ResourceKind::Session, w, id))
    {
        return Ok(false);
    }
    if let Some(f) = ctx.p.get("TrafficMirrorFilterId") {
        if !same(ResourceKind::Filter, f, &v["TrafficMirrorFilterId"]) {
            return Ok(false);
        }
    }
    if let Some(t) = ctx.p.get("TrafficMirrorTargetId") {
        let kind = if t
            .trim()
            .starts_with(ids::prefix(ResourceKind::LoadBalancer))
        {
            ResourceKind::LoadBalancer
        } else {
            ResourceKind::Port
        };
        if !same(kind, t, &v["TrafficMirrorTargetId"]) {
            return Ok(false);
        }
    }
    if let Some(src) = ctx.p.get("TrafficMirrorSourceId") {
        let sources = v["TrafficMirrorSourceIds"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !sources.iter().any(|p| same(ResourceKind::Port, src, p)) {
            return Ok(false);
        }
    }
    if let Some(name) = ctx.p.get("TrafficMirrorSessionName") {
        if v["TrafficMirrorSessionName"] != name {
            return Ok(false);
        }
    }
    for (param, field) in [
        ("VirtualNetworkId", "VirtualNetworkId"),
        ("Priority", "Priority"),
    ] {
        if let Some(want) = ctx.p.int(param)? {
            if v[field].as_i64() != Some(want) {
                return Ok(false);
            }
        }
    }
    if let Some(want) = ctx.p.bool("Enabled")? {
        if v["Enabled"].as_bool() != Some(want) {
            return Ok(false);
        }
    }
    if let Some(g) = group {
        if v["ResourceGroupId"] != g.as_str() {
            return Ok(false);
        }
    }
    let tags = v["Tags"].as_array().cloned().unwrap_or_default();
    Ok(wanted_tags.iter().all(|(k, want)| {
        tags.iter().any(|t| {
            t["Key"] == k.as_str() && want.as_ref().is_none_or(|w| t["Value"] == w.as_str())
        })
    }))
}
