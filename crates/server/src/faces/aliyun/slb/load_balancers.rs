//! CreateLoadBalancer, DescribeLoadBalancers, DescribeLoadBalancerAttribute, DeleteLoadBalancer.

use std::net::IpAddr;

use serde_json::{json, Map, Value};
use tmirror_model::LoadBalancer;

use super::super::error::{bad, from_service, invalid, missing};
use super::super::tags::DEFAULT_GROUP;
use super::super::{creation_time, ok, Begun, Ctx, Write};
use super::{backends, int_in, kept, kept_text, lb_id, listeners, one_of, shown_id};
use crate::http::ApiError;
use crate::service::LoadBalancerCreate;

/// Create parameters kept as given and shown back (tmirror does not act on them).
const KEPT_TEXT: &[&str] = &[
    "RegionId",
    "VpcId",
    "VSwitchId",
    "LoadBalancerSpec",
    "MasterZoneId",
    "SlaveZoneId",
    "PayType",
    "InstanceChargeType",
    "InternetChargeType",
    "ResourceGroupId",
    "ModificationProtectionStatus",
    "ModificationProtectionReason",
];

/// SLB's longest name.
const NAME_MAX: usize = 80;

/// SLB's most ids in one DescribeLoadBalancers filter.
const IDS_MAX: usize = 20;

pub async fn create(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    ctx.p.required("RegionId")?;
    // Alibaba mirrors only to internal-facing CLBs; its default (internet) could never be a
    // target, so tmirror's default is intranet and internet is refused.
    let address_type = one_of(ctx, "AddressType", &["internet", "intranet"])?.unwrap_or("intranet");
    if address_type == "internet" {
        return Err(invalid(
            "AddressType",
            "internet-facing load balancers cannot receive mirrored traffic; use intranet",
        ));
    }
    let ip_version = one_of(ctx, "AddressIPVersion", &["ipv4", "ipv6"])?.unwrap_or("ipv4");
    one_of(
        ctx,
        "ModificationProtectionStatus",
        &["NonProtection", "ConsoleProtection"],
    )?;
    let vip = ctx
        .p
        .get("Address")
        .map(|a| {
            a.parse::<IpAddr>()
                .map_err(|_| invalid("Address", format!("{a:?} is not an IP address")))
        })
        .transpose()?;
    if let Some(ip) = vip {
        if ip.is_ipv4() != (ip_version == "ipv4") {
            return Err(invalid(
                "Address",
                format!("{ip} is not an {ip_version} address"),
            ));
        }
    }
    let name = ctx.p.get("LoadBalancerName").unwrap_or_default().to_owned();
    if name.chars().count() > NAME_MAX {
        return Err(invalid(
            "LoadBalancerName",
            format!("must be at most {NAME_MAX} characters"),
        ));
    }
    // Deleting is never blocked by the face: a protection tmirror would not honour is refused
    // rather than kept.
    if one_of(ctx, "DeleteProtection", &["on", "off"])? == Some("on") {
        return Err(invalid(
            "DeleteProtection",
            "tmirror does not offer delete protection; omit it or give off",
        ));
    }
    let mut keep = Map::new();
    for k in KEPT_TEXT {
        if let Some(v) = ctx.p.get(k) {
            keep.insert((*k).into(), v.into());
        }
    }
    keep.insert("AddressType".into(), address_type.into());
    keep.insert("AddressIPVersion".into(), ip_version.into());
    if let Some(b) = int_in(ctx, "Bandwidth", 1..=5120)? {
        keep.insert("Bandwidth".into(), b.into());
    }
    let mut tags = Vec::new();
    for (i, fields) in ctx.p.objects("Tag")? {
        let key = fields
            .get("Key")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| missing(&format!("Tag.{i}.Key")))?;
        let value = fields.get("Value").cloned().unwrap_or_default();
        tags.push(json!({"TagKey": key, "TagValue": value}));
    }
    if tags.len() > 20 {
        return Err(bad("QuotaExceeded.TagNum", "At most 20 tags."));
    }
    keep.insert("Tags".into(), tags.into());

    let mut w = match Write::begin(ctx, false).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    let lb = w
        .service(ctx)?
        .load_balancer_create(LoadBalancerCreate {
            name,
            description: String::new(),
            vip_address: vip,
            admin_state_up: true,
            kept: json!({ "aliyun": { "loadbalancer": keep } }),
        })
        .await
        .map_err(from_service)?;
    let v = view(ctx, &lb);
    let answer = pick(
        &v,
        &[
            "LoadBalancerId",
            "ResourceGroupId",
            "Address",
            "NetworkType",
            "VpcId",
            "VSwitchId",
            "LoadBalancerName",
            "AddressIPVersion",
        ],
    );
    w.finish(ctx, answer).await
}

pub async fn list(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    ctx.p.required("RegionId")?;
    let page = int_in(ctx, "PageNumber", 1..=i64::from(u32::MAX))?.unwrap_or(1);
    let size = int_in(ctx, "PageSize", 1..=100)?.unwrap_or(10);
    let wanted_ids: Option<Vec<&str>> = ctx.p.get("LoadBalancerId").map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    });
    if wanted_ids.as_ref().is_some_and(|w| w.len() > IDS_MAX) {
        return Err(invalid(
            "LoadBalancerId",
            format!("at most {IDS_MAX} ids, separated by commas"),
        ));
    }
    let server = ctx.p.get("ServerId");
    let all = ctx
        .st
        .service
        .load_balancer_list(ctx.project())
        .await
        .map_err(from_service)?;
    // Exact-match filters on fields of the shown load balancer.
    const FIELDS: &[&str] = &[
        "LoadBalancerName",
        "Address",
        "AddressType",
        "VpcId",
        "VSwitchId",
        "NetworkType",
        "ResourceGroupId",
        "LoadBalancerStatus",
        "AddressIPVersion",
        "MasterZoneId",
        "SlaveZoneId",
        "PayType",
        "InternetChargeType",
    ];
    let wanted_tags = tag_filter(ctx)?;
    let member_address = ctx.p.get("ServerIntranetAddress");
    let mut matched = Vec::new();
    for lb in &all {
        let v = view(ctx, lb);
        if let Some(w) = &wanted_ids {
            if !w.contains(&v["LoadBalancerId"].as_str().unwrap_or_default()) {
                continue;
            }
        }
        if FIELDS.iter().any(|f| {
            ctx.p
                .get(f)
                .is_some_and(|want| v[*f].as_str() != Some(want))
        }) {
            continue;
        }
        if let Some(s) = server {
            if !lb.members.iter().any(|m| backends::server_id(m) == s) {
                continue;
            }
        }
        if let Some(a) = member_address {
            if !lb.members.iter().any(|m| m.address.to_string() == a) {
                continue;
            }
        }
        let tags = v["Tags"]["Tag"].as_array().cloned().unwrap_or_default();
        if !wanted_tags.iter().all(|(k, want)| {
            tags.iter().any(|t| {
                t["TagKey"].as_str() == Some(k.as_str())
                    && want
                        .as_deref()
                        .is_none_or(|w| t["TagValue"].as_str() == Some(w))
            })
        }) {
            continue;
        }
        matched.push(v);
    }
    let total = matched.len();
    let skip = usize::try_from((page - 1) * size).unwrap_or(usize::MAX);
    let items: Vec<Value> = matched.into_iter().skip(skip).take(size as usize).collect();
    Ok(json!({
        "LoadBalancers": {"LoadBalancer": items},
        "TotalCount": total,
        "PageNumber": page,
        "PageSize": size,
    }))
}

pub async fn show(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let id = lb_id(ctx)?;
    let lb = ctx
        .st
        .service
        .load_balancer_show(ctx.project(), id)
        .await
        .map_err(from_service)?;
    let mut v = view(ctx, &lb);
    let servers: Vec<Value> = lb
        .members
        .iter()
        .map(|m| {
            json!({
                "ServerId": backends::server_id(m),
                "ServerIp": m.address.to_string(),
                "Type": backends::server_type(m),
                "Weight": m.weight.get(),
                "Description": m.name,
            })
        })
        .collect();
    v["BackendServers"] = json!({ "BackendServer": servers });
    let ports: Vec<u16> = listeners::port(&lb).into_iter().collect();
    v["ListenerPorts"] = json!({ "ListenerPort": ports });
    v["ListenerPortsAndProtocol"] = json!({
        "ListenerPortAndProtocol": ports
            .iter()
            .map(|p| json!({"ListenerPort": p, "ListenerProtocol": "udp"}))
            .collect::<Vec<_>>()
    });
    Ok(v)
}

pub async fn delete(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let id = lb_id(ctx)?;
    let mut w = match Write::begin(ctx, false).await? {
        Begun::Replay(v) => return Ok(v),
        Begun::Open(w) => w,
    };
    w.service(ctx)?
        .load_balancer_delete(id)
        .await
        .map_err(from_service)?;
    w.finish(ctx, ok()).await
}

/// The tags a list must carry: `Tag.N.Key`/`Tag.N.Value`, or `Tags`, a JSON list of
/// `{"TagKey", "TagValue"}` (both spellings are DescribeLoadBalancers'); a tag without a value
/// matches any value.
fn tag_filter(ctx: &Ctx<'_>) -> Result<Vec<(String, Option<String>)>, ApiError> {
    let mut wanted = Vec::new();
    for (i, fields) in ctx.p.objects("Tag")? {
        let key = fields
            .get("Key")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| missing(&format!("Tag.{i}.Key")))?;
        wanted.push((key.clone(), fields.get("Value").cloned()));
    }
    if let Some(raw) = ctx.p.get("Tags") {
        let bad = || {
            invalid(
                "Tags",
                "must be a JSON list of {\"TagKey\", \"TagValue\"} objects",
            )
        };
        let list: Vec<Value> = serde_json::from_str(raw).map_err(|_| bad())?;
        for t in list {
            let key = t.get("TagKey").and_then(Value::as_str).ok_or_else(bad)?;
            let value = match t.get("TagValue") {
                None | Some(Value::Null) => None,
                Some(Value::String(v)) => Some(v.clone()),
                Some(_) => return Err(bad()),
            };
            wanted.push((key.to_owned(), value));
        }
    }
    Ok(wanted)
}

/// A load balancer as DescribeLoadBalancers shows it (DescribeLoadBalancerAttribute adds its
/// backend servers and listeners).
fn view(ctx: &Ctx<'_>, lb: &LoadBalancer) -> Value {
    let k = kept(lb, "loadbalancer");
    // A load balancer made through the Huawei face has no region: it is in every one.
    let region = kept_text(&k, "RegionId", ctx.p.get("RegionId").unwrap_or_default());
    let vpc = kept_text(&k, "VpcId", "");
    let ip_version = match lb.vip_address {
        Some(IpAddr::V6(_)) => "ipv6".to_owned(),
        _ => kept_text(&k, "AddressIPVersion", "ipv4"),
    };
    let mut v = json!({
        "LoadBalancerId": shown_id(lb),
        "LoadBalancerName": lb.name,
        "LoadBalancerStatus": if lb.admin_state_up { "active" } else { "inactive" },
        "Address": lb.vip_address.map(|a| a.to_string()).unwrap_or_default(),
        "AddressType": kept_text(&k, "AddressType", "intranet"),
        "AddressIPVersion": ip_version,
        "RegionId": region,
        "RegionIdAlias": region,
        "NetworkType": if vpc.is_empty() { "classic" } else { "vpc" },
        "VpcId": vpc,
        "VSwitchId": kept_text(&k, "VSwitchId", ""),
        "MasterZoneId": kept_text(&k, "MasterZoneId", ""),
        "SlaveZoneId": kept_text(&k, "SlaveZoneId", ""),
        "LoadBalancerSpec": kept_text(&k, "LoadBalancerSpec", ""),
        "PayType": kept_text(&k, "PayType", "PayOnDemand"),
        "InstanceChargeType": kept_text(&k, "InstanceChargeType", "PayBySpec"),
        "InternetChargeType": kept_text(&k, "InternetChargeType", "paybytraffic"),
        "ResourceGroupId": kept_text(&k, "ResourceGroupId", DEFAULT_GROUP),
        "DeleteProtection": "off",
        "ModificationProtectionStatus": kept_text(&k, "ModificationProtectionStatus", "NonProtection"),
        "ModificationProtectionReason": kept_text(&k, "ModificationProtectionReason", ""),
        "CreateTime": creation_time(lb.created_at),
        "CreateTimeStamp": lb.created_at.0 * 1000,
        "Tags": {"Tag": k.get("Tags").cloned().unwrap_or_else(|| json!([]))},
    });
    if let Some(b) = k.get("Bandwidth") {
        v["Bandwidth"] = b.clone();
    }
    v
}

fn pick(v: &Value, keys: &[&str]) -> Value {
    let mut out = Map::new();
    for k in keys {
        if let Some(x) = v.get(*k) {
            out.insert((*k).into(), x.clone());
        }
    }
    Value::Object(out)
}
