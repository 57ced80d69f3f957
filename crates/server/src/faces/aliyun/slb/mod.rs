//! The Alibaba CLB (SLB API 2014-05-15) subset that stands up a load balancer to mirror to:
//! load balancers, backend servers, their health, and the UDP listener that carries the health
//! check (`docs/load-balancers.md`).
//!
//! It shares the VPC face's endpoint (`POST /`), signatures, error format and ClientToken
//! handling; requests are told apart by `Version` 2014-05-15. The face translates only: what a
//! load balancer is and which members it may hold is the service's (`service::load_balancers`).
//! What SLB has and tmirror does not act on (specs, zones, billing, bandwidth, the listener's
//! scheduler) is kept in the load balancer's `kept.aliyun` document and shown back as given.

mod backends;
mod listeners;
mod load_balancers;

use std::ops::RangeInclusive;

use axum::http::StatusCode;
use serde_json::{Map, Value};
use tmirror_model::{LoadBalancer, LoadBalancerId, ResourceKind};

use super::error::{self, invalid, not_found};
use super::{ids, Ctx};
use crate::http::ApiError;

/// The SLB API version.
pub const VERSION: &str = "2014-05-15";

pub async fn dispatch(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    // The errors of these actions point at SLB's troubleshooting pages, not VPC's.
    actions(ctx).await.map_err(|mut e| {
        e.format = error::SLB_FORMAT;
        e
    })
}

async fn actions(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    match ctx.action.as_str() {
        "CreateLoadBalancer" => load_balancers::create(ctx).await,
        "DescribeLoadBalancers" => load_balancers::list(ctx).await,
        "DescribeLoadBalancerAttribute" => load_balancers::show(ctx).await,
        "DeleteLoadBalancer" => load_balancers::delete(ctx).await,
        "AddBackendServers" => backends::add(ctx).await,
        "RemoveBackendServers" => backends::remove(ctx).await,
        "SetBackendServers" => backends::set(ctx).await,
        "DescribeHealthStatus" => backends::health(ctx).await,
        "CreateLoadBalancerUDPListener" => listeners::create(ctx).await,
        "SetLoadBalancerUDPListenerAttribute" => listeners::update(ctx).await,
        "DescribeLoadBalancerUDPListenerAttribute" => listeners::show(ctx).await,
        "DeleteLoadBalancerListener" => listeners::delete(ctx).await,
        "StartLoadBalancerListener" => listeners::start(ctx, true).await,
        "StopLoadBalancerListener" => listeners::start(ctx, false).await,
        other => Err(error::err(
            StatusCode::NOT_FOUND,
            "InvalidAction.NotFound",
            format!("Specified api {other:?} is not found in version {VERSION} of this endpoint."),
        )),
    }
}

/// The load balancer `LoadBalancerId` names; a malformed id names none.
fn lb_id(ctx: &Ctx<'_>) -> Result<LoadBalancerId, ApiError> {
    let s = ctx.p.required("LoadBalancerId")?;
    ids::parse(ResourceKind::LoadBalancer, s)
        .map(LoadBalancerId)
        .ok_or_else(|| not_found(ResourceKind::LoadBalancer, s))
}

/// The face's spelling of a load balancer's id.
fn shown_id(lb: &LoadBalancer) -> String {
    ids::show(ResourceKind::LoadBalancer, lb.id.0)
}

/// An integer in `range`; SLB answers `InvalidParameter` for a value out of range.
fn int_in(ctx: &Ctx<'_>, name: &str, range: RangeInclusive<i64>) -> Result<Option<i64>, ApiError> {
    match ctx.p.int(name)? {
        Some(v) if !range.contains(&v) => Err(invalid(
            name,
            format!(
                "must be between {} and {}, not {v}",
                range.start(),
                range.end()
            ),
        )),
        other => Ok(other),
    }
}

/// One of `allowed` (case as documented).
fn one_of<'a>(ctx: &'a Ctx<'_>, name: &str, allowed: &[&str]) -> Result<Option<&'a str>, ApiError> {
    match ctx.p.get(name) {
        Some(v) if !allowed.contains(&v) => Err(invalid(
            name,
            format!("{v:?} must be one of {}", allowed.join(", ")),
        )),
        other => Ok(other),
    }
}

/// `kept.aliyun.<part>` of a load balancer (empty when the part was never written, for
/// example for a load balancer made through the Huawei face).
fn kept(lb: &LoadBalancer, part: &str) -> Map<String, Value> {
    lb.kept
        .get("aliyun")
        .and_then(|a| a.get(part))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The load balancer's `kept` document with `kept.aliyun.<part>` replaced (`None` removes it);
/// the other faces' parts are left as they are.
fn with_kept(lb: &LoadBalancer, part: &str, value: Option<Map<String, Value>>) -> Value {
    let mut all = lb.kept.as_object().cloned().unwrap_or_default();
    let mut aliyun = all
        .get("aliyun")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match value {
        Some(v) => aliyun.insert(part.to_owned(), Value::Object(v)),
        None => aliyun.remove(part),
    };
    all.insert("aliyun".into(), Value::Object(aliyun));
    Value::Object(all)
}

/// A kept text field, or `default`.
fn kept_text(part: &Map<String, Value>, key: &str, default: &str) -> String {
    part.get(key)
        .and_then(Value::as_str)
        .unwrap_or(default)
        .to_owned()
}
