//! The filter and filter-rule actions.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde_json::{json, Value};
use tmirror_model::*;
use tmirror_store::{Condition, FilterField, ListQuery, Value as Q};

use super::error::{from_service, illegal, missing, not_found};
use super::states;
use super::tags::{self, Extras, NarrowingFields, FILTER};
use super::{
    check_description, check_name, creation_time, from_list_error, ids, marker_of, ok,
    unknown_token, Begun, Ctx, Write,
};
use crate::http::ApiError;
use crate::service::states::Lifecycle;
use crate::service::{FilterCreate, FilterUpdate, RuleCreate, RuleUpdate};
use std::collections::HashMap;

/// Rules per direction in one request.
const MAX_RULES_PER_REQUEST: usize = 10;

fn filter_id(ctx: &Ctx<'_>) -> Result<FilterId, ApiError> {
    let s = ctx.p.required("TrafficMirrorFilterId")?;
    ids::parse(ResourceKind::Filter, s)
        .map(FilterId)
        .ok_or_else(|| not_found(ResourceKind::Filter, s))
}

fn rule_id(s: &str) -> Result<RuleId, ApiError> {
    ids::parse(ResourceKind::Rule, s)
        .map(RuleId)
        .ok_or_else(|| not_found(ResourceKind::Rule, s))
}

fn action(name: &str, s: &str) -> Result<RuleAction, ApiError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "accept" => Ok(RuleAction::Accept),
        "drop" => Ok(RuleAction::Reject),
        _ => Err(illegal(name, format!("{s:?}: must be accept or drop"))),
    }
}

fn shown_action(a: RuleAction) -> &'static str {
    match a {
        RuleAction::Accept => "accept",
        RuleAction::Reject => "drop",
    }
}

/// Alibaba's protocols; `ICMP` on an IPv6 rule is ICMPv6.
fn protocol(name: &str, s: &str, ethertype: Ethertype) -> Result<Protocol, ApiError> {
    match s.trim().to_ascii_uppercase().as_str() {
        "ALL" => Ok(Protocol::All),
        "TCP" => Ok(Protocol::Tcp),
        "UDP" => Ok(Protocol::Udp),
        "ICMP" if ethertype == Ethertype::IPv6 => Ok(Protocol::Icmpv6),
        "ICMP" => Ok(Protocol::Icmp),
        _ => Err(illegal(
            name,
            format!("{s:?}: must be ALL, ICMP, TCP or UDP"),
        )),
    }
}

fn shown_protocol(p: Protocol) -> &'static str {
    match p {
        Protocol::All => "ALL",
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Icmp | Protocol::Icmpv6 => "ICMP",
    }
}

/// How the protocol is stored for the Huawei face's echo: its lower-case name.
fn spelling(p: Protocol) -> String {
    p.upper().to_ascii_lowercase()
}

fn ethertype(name: &str, s: &str) -> Result<Ethertype, ApiError> {
    match s.trim() {
        "IPv4" | "ipv4" | "IPV4" => Ok(Ethertype::IPv4),
        "IPv6" | "ipv6" | "IPV6" => Ok(Ethertype::IPv6),
        _ => Err(illegal(name, format!("{s:?}: must be IPv4 or IPv6"))),
    }
}

fn cidr(name: &str, s: &str) -> Result<IpNet, ApiError> {
    s.trim().parse().map_err(|_| {
        illegal(
            name,
            format!("{s:?} is not a CIDR block such as 10.0.0.0/8"),
        )
    })
}

/// `80/200`, or `-1/-1` for all ports (`None`).
fn port_range(name: &str, s: &str) -> Result<Option<PortRange>, ApiError> {
    if s.trim() == "-1/-1" {
        return Ok(None);
    }
    PortRange::parse_with(s, '/')
        .map(Some)
        .map_err(|e| illegal(name, format!("{e}; -1/-1 means all ports")))
}

fn shown_range(r: Option<PortRange>) -> String {
    match r {
        Some(r) => format!("{}/{}", r.from(), r.to()),
        None => "-1/-1".into(),
    }
}

fn shown_cidr(c: Option<IpNet>, e: Ethertype) -> String {
    match (c, e) {
        (Some(c), _) => c.to_string(),
        (None, Ethertype::IPv4) => "0.0.0.0/0".into(),
        (None, Ethertype::IPv6) => "::/0".into(),
    }
}

/// One rule of `IngressRules.N.*` / `EgressRules.N.*`.
fn rule_input(
    list: &str,
    index: u32,
    fields: &BTreeMap<String, String>,
    direction: Direction,
    filter: FilterId,
) -> Result<RuleCreate, ApiError> {
    let name = |f: &str| format!("{list}.{index}.{f}");
    let get = |f: &str| fields.get(f).map(String::as_str).filter(|v| !v.is_empty());
    let ether = get("IpVersion")
        .map(|v| ethertype(&name("IpVersion"), v))
        .transpose()?
        .unwrap_or(Ethertype::IPv4);
    let proto_raw = get("Protocol").ok_or_else(|| missing(&name("Protocol")))?;
    let proto = protocol(&name("Protocol"), proto_raw, ether)?;
    let act = action(
        &name("Action"),
        get("Action").ok_or_else(|| missing(&name("Action")))?,
    )?;
    let prio_raw = get("Priority").ok_or_else(|| missing(&name("Priority")))?;
    let prio = prio_raw
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|v| RulePriority::new(v).ok())
        .ok_or_else(|| {
            illegal(
                &name("Priority"),
                format!("{prio_raw:?}: must be 1 to 65535"),
            )
        })?;
    Ok(RuleCreate {
        filter_id: filter,
        direction,
        priority: prio,
        action: act,
        matches: RuleMatch {
            ethertype: ether,
            protocol: proto,
            source_cidr: get("SourceCidrBlock")
                .map(|v| cidr(&name("SourceCidrBlock"), v))
                .transpose()?,
            destination_cidr: get("DestinationCidrBlock")
                .map(|v| cidr(&name("DestinationCidrBlock"), v))
                .transpose()?,
            source_port_range: get("SourcePortRange")
                .map(|v| port_range(&name("SourcePortRange"), v))
                .transpose()?
                .flatten(),
            destination_port_range: get("DestinationPortRange")
                .map(|v| port_range(&name("DestinationPortRange"), v))
                .transpose()?
                .flatten(),
        },
        protocol_spelling: spelling(proto),
        description: String::new(),
    })
}

/// Both directions' rules of a request, ingress first, each in index order.
fn rules_input(ctx: &Ctx<'_>, filter: FilterId) -> Result<Vec<RuleCreate>, ApiError> {
    let mut out = Vec::new();
    for (list, direction) in [
        ("IngressRules", Direction::Ingress),
        ("EgressRules", Direction::Egress),
    ] {
        let items = ctx.p.objects(list)?;
        if items.len() > MAX_RULES_PER_REQUEST {
            return Err(illegal(
                list,
                format!("at most {MAX_RULES_PER_REQUEST} rules per direction in one request"),
            ));
        }
        for (index, fields) in &items {
            out.push(rule_input(list, *index, fields, direction, filter)?);
        }
    }
    Ok(out)
}

pub async fn create(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let name = check_name(ctx, "TrafficMirrorFilterName")?.unwrap_or_default();
    let description = check_description(ctx, "TrafficMirrorFilterDescription")?.unwrap_or_default();
    // The filter id is not known yet; the rules get it once the filter exists.
    let mut rules = rules_input(ctx, FilterId(uuid::Uuid::nil()))?;
    let group = tags::parse_group(ctx, "ResourceGroupId")?;
    let tag_list = tags::parse_tags(ctx, "Tag")?;
    let mut w = match Write::begin(ctx, true).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    let f = w
        .service(ctx)?
        .filter_create(FilterCreate { name, description })
        .await
        .map_err(from_service)?;
    for rule in &mut rules {
        rule.filter_id = f.filter.id;
        w.service(ctx)?
            .rule_create(rule.clone())
            .await
            .map_err(from_service)?;
    }
    let canonical = f.filter.id.to_string();
    if let Some(g) = &group {
        w.records()
            .aliyun_set_resource_group(ctx.project(), FILTER, &canonical, g)
            .await
            .map_err(|e| from_service(e.into()))?;
    }
    tags::add_tags(&mut w, ctx.project(), FILTER, &canonical, &tag_list).await?;
    let answer = json!({
        "TrafficMirrorFilterId": ids::show(ResourceKind::Filter, f.filter.id.0),
        "ResourceGroupId": group.as_deref().unwrap_or(tags::DEFAULT_GROUP),
    });
    w.finish(ctx, answer).await
}

pub async fn delete(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let id = filter_id(ctx)?;
    let applied = ctx.st.service.applied().await.map_err(from_service)?;
    let mut w = match Write::begin(ctx, true).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    states::filter_settled(&mut w, ctx, id, None, &applied).await?;
    w.service(ctx)?
        .filter_delete(id)
        .await
        .map_err(from_service)?;
    w.finish(ctx, ok()).await
}

pub async fn update(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let id = filter_id(ctx)?;
    let name = check_name(ctx, "TrafficMirrorFilterName")?;
    let description = check_description(ctx, "TrafficMirrorFilterDescription")?;
    let applied = ctx.st.service.applied().await.map_err(from_service)?;
    let mut w = match Write::begin(ctx, true).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    states::filter_settled(&mut w, ctx, id, None, &applied).await?;
    w.service(ctx)?
        .filter_update(id, FilterUpdate { name, description })
        .await
        .map_err(from_service)?;
    w.finish(ctx, ok()).await
}

pub async fn create_rules(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let id = filter_id(ctx)?;
    let rules = rules_input(ctx, id)?;
    if rules.is_empty() {
        return Err(missing("IngressRules.N or EgressRules.N"));
    }
    let applied = ctx.st.service.applied().await.map_err(from_service)?;
    let mut w = match Write::begin(ctx, true).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    states::filter_settled(&mut w, ctx, id, None, &applied).await?;
    // The filter must exist even when a direction has no rules.
    w.service(ctx)?
        .filter_show(id)
        .await
        .map_err(from_service)?;
    let (mut ingress, mut egress) = (Vec::new(), Vec::new());
    for rule in rules {
        let r = w
            .service(ctx)?
            .rule_create(rule)
            .await
            .map_err(from_service)?;
        let entry = json!({"InstanceId": ids::show(ResourceKind::Rule, r.id.0)});
        match r.direction {
            Direction::Ingress => ingress.push(entry),
            Direction::Egress => egress.push(entry),
        }
    }
    w.finish(ctx, json!({"IngressRules": ingress, "EgressRules": egress}))
        .await
}

pub async fn delete_rules(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let id = filter_id(ctx)?;
    let list = ctx.p.list("TrafficMirrorFilterRuleIds")?;
    if list.is_empty() {
        return Err(missing("TrafficMirrorFilterRuleIds.N"));
    }
    let rules: Vec<RuleId> = list.iter().map(|s| rule_id(s)).collect::<Result<_, _>>()?;
    let applied = ctx.st.service.applied().await.map_err(from_service)?;
    let mut w = match Write::begin(ctx, true).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    w.service(ctx)?
        .filter_show(id)
        .await
        .map_err(from_service)?;
    for (rule, shown) in rules.iter().zip(&list) {
        let r = w
            .service(ctx)?
            .rule_show(*rule)
            .await
            .map_err(from_service)?;
        if r.filter_id != id {
            return Err(not_found(ResourceKind::Rule, shown));
        }
        states::filter_settled(&mut w, ctx, id, Some(*rule), &applied).await?;
        w.service(ctx)?
            .rule_delete(*rule)
            .await
            .map_err(from_service)?;
    }
    w.finish(ctx, ok()).await
}

pub async fn update_rule(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let id = rule_id(ctx.p.required("TrafficMirrorFilterRuleId")?)?;
    let priority = ctx.p.ranged::<RulePriority>("Priority")?;
    let act = ctx
        .p
        .get("RuleAction")
        .map(|v| action("RuleAction", v))
        .transpose()?;
    let source_cidr = ctx
        .p
        .get("SourceCidrBlock")
        .map(|v| cidr("SourceCidrBlock", v))
        .transpose()?;
    let destination_cidr = ctx
        .p
        .get("DestinationCidrBlock")
        .map(|v| cidr("DestinationCidrBlock", v))
        .transpose()?;
    let source_ports = ctx
        .p
        .get("SourcePortRange")
        .map(|v| port_range("SourcePortRange", v))
        .transpose()?;
    let destination_ports = ctx
        .p
        .get("DestinationPortRange")
        .map(|v| port_range("DestinationPortRange", v))
        .transpose()?;
    let applied = ctx.st.service.applied().await.map_err(from_service)?;
    let mut w = match Write::begin(ctx, true).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    {
        let current = w.service(ctx)?.rule_show(id).await.map_err(from_service)?;
        states::filter_settled(&mut w, ctx, current.filter_id, Some(id), &applied).await?;
    }
    let protocol = match ctx.p.get("Protocol") {
        None => None,
        Some(raw) => {
            let current = w.service(ctx)?.rule_show(id).await.map_err(from_service)?;
            let p = protocol("Protocol", raw, current.matches.ethertype)?;
            Some((p, spelling(p)))
        }
    };
    w.service(ctx)?
        .rule_update(
            id,
            RuleUpdate {
                priority,
                action: act,
                ethertype: None,
                protocol,
                source_cidr: source_cidr.map(Some),
                destination_cidr: destination_cidr.map(Some),
                source_port_range: source_ports,
                destination_port_range: destination_ports,
                description: None,
            },
        )
        .await
        .map_err(from_service)?;
    w.finish(ctx, ok()).await
}

/// The state of a filter or rule as Alibaba shows it: like a session's, over the hosts of the
/// sessions that use the filter (docs/aliyun.md).
fn status(states: &HashMap<String, Lifecycle>, id: &str) -> &'static str {
    states
        .get(id)
        .copied()
        .unwrap_or(Lifecycle::Created)
        .as_str()
}

fn rule_view(r: &FilterRule, states: &HashMap<String, Lifecycle>) -> Value {
    let m = &r.matches;
    json!({
        "TrafficMirrorFilterRuleId": ids::show(ResourceKind::Rule, r.id.0),
        "TrafficMirrorFilterId": ids::show(ResourceKind::Filter, r.filter_id.0),
        "TrafficDirection": r.direction.as_str(),
        "Priority": r.priority.get(),
        "Action": shown_action(r.action),
        "Protocol": shown_protocol(m.protocol),
        "SourceCidrBlock": shown_cidr(m.source_cidr, m.ethertype),
        "DestinationCidrBlock": shown_cidr(m.destination_cidr, m.ethertype),
        "SourcePortRange": shown_range(m.source_port_range),
        "DestinationPortRange": shown_range(m.destination_port_range),
        "IpVersion": m.ethertype.as_str(),
        "TrafficMirrorFilterRuleStatus": status(states, &r.id.to_string()),
    })
}

fn view(f: &FilterWithRules, extras: &Extras, states: &HashMap<String, Lifecycle>) -> Value {
    let id = f.filter.id.to_string();
    json!({
        "TrafficMirrorFilterId": ids::show(ResourceKind::Filter, f.filter.id.0),
        "TrafficMirrorFilterName": f.filter.name,
        "TrafficMirrorFilterDescription": f.filter.description,
        "TrafficMirrorFilterStatus": status(states, &id),
        "ResourceGroupId": extras.group(&id),
        "CreationTime": creation_time(f.filter.created_at),
        "Tags": extras.tags_json(&id),
        "IngressRules": f.ingress_rules.iter().map(|r| rule_view(r, states)).collect::<Vec<_>>(),
        "EgressRules": f.egress_rules.iter().map(|r| rule_view(r, states)).collect::<Vec<_>>(),
    })
}

pub async fn list(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let max = ctx.p.int_within("MaxResults", 1..=100)?.unwrap_or(10) as usize;
    let wanted_tags = tags::parse_tags(ctx, "Tags")?;
    let group = ctx.p.get("ResourceGroupId").map(str::to_owned);
    let mut conditions = Vec::new();
    let mut nothing = false;
    let wanted_ids = ctx.p.list("TrafficMirrorFilterIds")?;
    if wanted_ids.len() > 100 {
        return Err(illegal("TrafficMirrorFilterIds", "at most 100 ids"));
    }
    if !wanted_ids.is_empty() {
        let values: Vec<Q> = wanted_ids
            .iter()
            .filter_map(|s| ids::parse(ResourceKind::Filter, s))
            .map(|u| Q::Text(u.hyphenated().to_string()))
            .collect();
        nothing |= values.is_empty();
        conditions.push(Condition {
            field: FilterField::Id,
            values,
        });
    }
    if let Some(name) = ctx.p.get("TrafficMirrorFilterName") {
        conditions.push(Condition {
            field: FilterField::Name,
            values: vec![Q::Text(name.to_owned())],
        });
    }
    conditions.extend(tags::narrowing(
        group.as_deref(),
        &wanted_tags,
        &NarrowingFields {
            group: FilterField::ResourceGroup,
            group_absent_or: FilterField::ResourceGroupAbsentOr,
            tag_key: FilterField::TagKey,
            tag_pair: FilterField::TagPair,
        },
    ));
    let token = ctx.p.get("NextToken");
    let (items, more, total) = if nothing {
        if token.is_some() {
            return Err(unknown_token());
        }
        (Vec::new(), false, 0)
    } else {
        let q = ListQuery {
            conditions,
            marker: token
                .map(|t| marker_of(ResourceKind::Filter, t))
                .transpose()?,
            limit: max as u32,
        };
        let page = ctx
            .st
            .service
            .filter_list(ctx.project(), &q)
            .await
            .map_err(from_list_error)?;
        // A first page with nothing after it is the whole list: its length is the count.
        let total = if token.is_none() && !page.more {
            page.items.len() as u64
        } else {
            ctx.st
                .service
                .filter_count(ctx.project(), &q)
                .await
                .map_err(from_service)?
        };
        (page.items, page.more, total)
    };
    let next = match items.last() {
        Some(last) if more => ids::show(ResourceKind::Filter, last.filter.id.0),
        _ => String::new(),
    };
    let page_ids: Vec<String> = items.iter().map(|f| f.filter.id.to_string()).collect();
    let extras = Extras::load_of(&ctx.st.service, ctx.project(), FILTER, &page_ids).await?;
    let applied = ctx.st.service.applied().await.map_err(from_service)?;
    let wanted: Vec<(FilterId, Vec<RuleId>)> = items
        .iter()
        .map(|f| {
            let rules = f.ingress_rules.iter().chain(&f.egress_rules);
            (f.filter.id, rules.map(|r| r.id).collect())
        })
        .collect();
    let states = ctx
        .st
        .service
        .filter_states(ctx.project(), &wanted, &applied)
        .await
        .map_err(from_service)?;
    Ok(json!({
        "TotalCount": total.to_string(),
        "Count": items.len(),
        "MaxResults": max,
        "NextToken": next,
        "TrafficMirrorFilters": items.iter().map(|f| view(f, &extras, &states)).collect::<Vec<_>>(),
    }))
}
