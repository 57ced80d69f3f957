//! The UDP listener calls: CreateLoadBalancerUDPListener, SetLoadBalancerUDPListenerAttribute,
//! DescribeLoadBalancerUDPListenerAttribute, DeleteLoadBalancerListener and
//! Start/StopLoadBalancerListener.
//!
//! Alibaba sends mirrored traffic to a CLB's backend servers past its listeners, so a listener
//! matters to tmirror only for its health check: the listener's check *is* the load balancer's
//! health monitor (a UDP check, `UDP_CONNECT`), run while the listener is `running` with
//! `HealthCheck` on. A tmirror load balancer has one health monitor, so it takes one listener.
//! The rest of the listener (ports, bandwidth, scheduler, the check's request and expected
//! answer) is kept in `kept.aliyun.listener` and shown back.

use serde_json::{json, Map, Value};
use tmirror_model::*;

use super::super::error::{bad, from_service, invalid, missing};
use super::super::{ok, Begun, Ctx, Write};
use super::{int_in, kept, lb_id, one_of, shown_id, with_kept};
use crate::http::ApiError;
use crate::service::LoadBalancerUpdate;

/// Alibaba's defaults for a UDP listener's check: every 2 s, 5 s timeout, 3 up, 3 down.
const DEFAULT_INTERVAL: i64 = 2;
const DEFAULT_TIMEOUT: i64 = 5;
const DEFAULT_THRESHOLD: i64 = 3;

/// The listener's port, if the load balancer has a listener.
pub fn port(lb: &LoadBalancer) -> Option<u16> {
    kept(lb, "listener")
        .get("ListenerPort")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
}

/// A listener port the load balancer does not have (tmirror's code, in SLB's style).
pub fn unknown(lb: &LoadBalancer, listener_port: i64) -> ApiError {
    bad(
        "InvalidParameter.ListenerNotFound",
        format!(
            "The load balancer {} has no listener on port {listener_port}.",
            shown_id(lb)
        ),
    )
}

/// The health monitor a listener's settings stand for (`None`: its check is off).
/// Alibaba waits `max(timeout, interval)` for an answer; tmirror's checker waits at most one
/// interval, so the timeout used is `min(timeout, interval)` (the given one is shown back).
fn monitor(l: &Map<String, Value>) -> Option<HealthMonitor> {
    let int = |k: &str, d: i64| l.get(k).and_then(Value::as_i64).unwrap_or(d);
    if l.get("HealthCheck").and_then(Value::as_str) == Some("off") {
        return None;
    }
    let interval = int("HealthCheckInterval", DEFAULT_INTERVAL);
    let timeout = int("HealthCheckConnectTimeout", DEFAULT_TIMEOUT).min(interval);
    Some(HealthMonitor {
        kind: HealthCheckType::UdpConnect,
        port: l
            .get("HealthCheckConnectPort")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok()),
        interval: HealthInterval::new(interval).ok()?,
        timeout: HealthTimeout::new(timeout).ok()?,
        up_threshold: HealthThreshold::new(int("HealthyThreshold", DEFAULT_THRESHOLD)).ok()?,
        down_threshold: HealthThreshold::new(int("UnhealthyThreshold", DEFAULT_THRESHOLD)).ok()?,
        admin_state_up: l.get("Status").and_then(Value::as_str) == Some("running"),
    })
}

/// Copies the listener parameters given in this request into `l`, checked. `create`: the
/// parameters only CreateLoadBalancerUDPListener takes (and requires).
fn apply(ctx: &Ctx<'_>, l: &mut Map<String, Value>, create: bool) -> Result<(), ApiError> {
    if ctx.p.get("VServerGroupId").is_some() || ctx.p.get("MasterSlaveServerGroupId").is_some() {
        return Err(invalid(
            "VServerGroupId",
            "tmirror load balancers have no server groups; the backend servers take the copies",
        ));
    }
    // What a tmirror listener cannot do is refused rather than kept and not done.
    if one_of(ctx, "AclStatus", &["on", "off"])? == Some("on") {
        return Err(invalid(
            "AclStatus",
            "tmirror listeners have no access control lists; mirrored copies bypass listeners",
        ));
    }
    if ctx.p.bool("ProxyProtocolV2Enabled")? == Some(true) {
        return Err(invalid(
            "ProxyProtocolV2Enabled",
            "tmirror forwards no traffic through listeners, so it adds no proxy protocol header",
        ));
    }
    for name in ["VServerGroup", "MasterSlaveServerGroup"] {
        if one_of(ctx, name, &["on", "off"])? == Some("on") {
            return Err(invalid(
                name,
                "tmirror load balancers have no server groups; the backend servers take the copies",
            ));
        }
    }
    let mut put_int = |name: &str, key: &str, range: std::ops::RangeInclusive<i64>| {
        if let Some(v) = int_in(ctx, name, range)? {
            l.insert(key.into(), v.into());
        }
        Ok::<_, ApiError>(())
    };
    if create {
        put_int("BackendServerPort", "BackendServerPort", 1..=65535)?;
        // CreateLoadBalancerUDPListener spells it with a lower-case h (as the SDK sends it).
        put_int("healthCheckInterval", "HealthCheckInterval", 1..=50)?;
    }
    put_int("HealthCheckInterval", "HealthCheckInterval", 1..=50)?;
    put_int(
        "HealthCheckConnectTimeout",
        "HealthCheckConnectTimeout",
        1..=300,
    )?;
    put_int(
        "HealthCheckConnectPort",
        "HealthCheckConnectPort",
        1..=65535,
    )?;
    put_int("HealthyThreshold", "HealthyThreshold", 2..=10)?;
    put_int("UnhealthyThreshold", "UnhealthyThreshold", 2..=10)?;
    if let Some(b) = ctx.p.int("Bandwidth")? {
        if b != -1 && !(1..=5120).contains(&b) {
            return Err(invalid(
                "Bandwidth",
                format!("must be -1 or 1 to 5120, not {b}"),
            ));
        }
        l.insert("Bandwidth".into(), b.into());
    }
    if let Some(s) = one_of(ctx, "Scheduler", &["wrr", "wlc", "rr", "sch", "tch", "qch"])? {
        l.insert("Scheduler".into(), s.into());
    }
    if let Some(s) = one_of(ctx, "HealthCheckSwitch", &["on", "off"])? {
        l.insert("HealthCheck".into(), s.into());
    }
    for (name, key) in [
        ("healthCheckReq", "HealthCheckReq"),
        ("healthCheckExp", "HealthCheckExp"),
        ("Description", "Description"),
    ] {
        if let Some(v) = ctx.p.get(name) {
            if v.chars().count() > 500 {
                return Err(invalid(name, "must be at most 500 characters"));
            }
            l.insert(key.into(), v.into());
        }
    }
    Ok(())
}

/// The listener port of the request, checked against the load balancer's listener.
fn listener_port(ctx: &Ctx<'_>) -> Result<i64, ApiError> {
    int_in(ctx, "ListenerPort", 1..=65535)?.ok_or_else(|| missing("ListenerPort"))
}

/// Writes the listener `l` (or removes it) and the health monitor it stands for.
async fn store(
    w: &mut Write,
    ctx: &Ctx<'_>,
    lb: &LoadBalancer,
    l: Option<Map<String, Value>>,
) -> Result<(), ApiError> {
    let monitor = l.as_ref().and_then(monitor);
    let kept = with_kept(lb, "listener", l);
    w.service(ctx)?
        .load_balancer_update(
            lb.id,
            LoadBalancerUpdate {
                kept: Some(kept),
                ..Default::default()
            },
        )
        .await
        .map_err(from_service)?;
    // Only a change of the check restarts the members' health.
    if monitor != lb.health_monitor {
        w.service(ctx)?
            .health_monitor_set(lb.id, monitor)
            .await
            .map_err(from_service)?;
    }
    Ok(())
}

/// Opens a write and reads the load balancer in it.
async fn begin(ctx: &Ctx<'_>) -> Result<Result<(Write, LoadBalancer), Value>, ApiError> {
    let id = lb_id(ctx)?;
    let mut w = match Write::begin(ctx, false).await? {
        Begun::Replay(v) => return Ok(Err(v)),
        Begun::Open(w) => w,
    };
    let lb = w
        .service(ctx)?
        .load_balancer_show(id)
        .await
        .map_err(from_service)?;
    Ok(Ok((w, lb)))
}

pub async fn create(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let port = listener_port(ctx)?;
    ctx.p.required("Bandwidth")?;
    ctx.p.required("BackendServerPort")?;
    let mut l = Map::new();
    l.insert("ListenerPort".into(), port.into());
    l.insert("Status".into(), "stopped".into());
    l.insert("Scheduler".into(), "wrr".into());
    l.insert("HealthCheck".into(), "on".into());
    apply(ctx, &mut l, true)?;
    let (mut w, lb) = match begin(ctx).await? {
        Ok(open) => open,
        Err(replay) => return Ok(replay),
    };
    match self::port(&lb) {
        Some(p) if i64::from(p) == port => {
            return Err(bad(
                "ListenerAlreadyExists",
                format!(
                    "The load balancer {} already has a listener on port {port}.",
                    shown_id(&lb)
                ),
            ))
        }
        Some(p) => {
            return Err(bad(
                "QuotaExceeded.ListenerNum",
                format!(
                    "The load balancer {} already has its one listener (port {p}): a tmirror load \
                     balancer has one health check, which its listener sets.",
                    shown_id(&lb)
                ),
            ))
        }
        None => {}
    }
    store(&mut w, ctx, &lb, Some(l)).await?;
    w.finish(ctx, ok()).await
}

/// The load balancer's listener on the request's port.
fn existing(ctx: &Ctx<'_>, lb: &LoadBalancer) -> Result<Map<String, Value>, ApiError> {
    let port = listener_port(ctx)?;
    if let Some(p) = ctx.p.get("ListenerProtocol") {
        if !p.eq_ignore_ascii_case("udp") {
            return Err(unknown(lb, port));
        }
    }
    if self::port(lb).map(i64::from) != Some(port) {
        return Err(unknown(lb, port));
    }
    Ok(kept(lb, "listener"))
}

pub async fn update(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let (mut w, lb) = match begin(ctx).await? {
        Ok(open) => open,
        Err(replay) => return Ok(replay),
    };
    let mut l = existing(ctx, &lb)?;
    apply(ctx, &mut l, false)?;
    if ctx.p.bool("DryRun")?.unwrap_or(false) {
        return Err(bad(
            "DryRunOperation",
            "Request validation has been passed with DryRun flag set.",
        ));
    }
    store(&mut w, ctx, &lb, Some(l)).await?;
    w.finish(ctx, ok()).await
}

pub async fn delete(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let (mut w, lb) = match begin(ctx).await? {
        Ok(open) => open,
        Err(replay) => return Ok(replay),
    };
    existing(ctx, &lb)?;
    store(&mut w, ctx, &lb, None).await?;
    w.finish(ctx, ok()).await
}

/// StartLoadBalancerListener (`running`) and StopLoadBalancerListener (`stopped`): the check
/// runs only while the listener runs.
pub async fn start(ctx: &Ctx<'_>, running: bool) -> Result<Value, ApiError> {
    let (mut w, lb) = match begin(ctx).await? {
        Ok(open) => open,
        Err(replay) => return Ok(replay),
    };
    let mut l = existing(ctx, &lb)?;
    l.insert(
        "Status".into(),
        if running { "running" } else { "stopped" }.into(),
    );
    store(&mut w, ctx, &lb, Some(l)).await?;
    w.finish(ctx, ok()).await
}

pub async fn show(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let id = lb_id(ctx)?;
    let lb = ctx
        .st
        .service
        .load_balancer_show(ctx.project(), id)
        .await
        .map_err(from_service)?;
    let l = existing(ctx, &lb)?;
    let get = |k: &str| l.get(k).cloned().unwrap_or(Value::Null);
    let mut v = json!({
        "LoadBalancerId": shown_id(&lb),
        "ListenerPort": get("ListenerPort"),
        "BackendServerPort": get("BackendServerPort"),
        "Bandwidth": l.get("Bandwidth").cloned().unwrap_or(json!(-1)),
        "Status": get("Status"),
        "Scheduler": get("Scheduler"),
        "Description": l.get("Description").cloned().unwrap_or(json!("")),
        "HealthCheck": get("HealthCheck"),
        "AclStatus": "off",
    });
    // The check as it runs: the load balancer's monitor (which the Huawei face may also have
    // set), otherwise the listener's own settings with Alibaba's defaults.
    let int = |k: &str, d: i64| l.get(k).and_then(Value::as_i64).unwrap_or(d);
    match &lb.health_monitor {
        Some(m) => {
            v["HealthCheckInterval"] = m.interval.get().into();
            v["HealthyThreshold"] = m.up_threshold.get().into();
            v["UnhealthyThreshold"] = m.down_threshold.get().into();
            // As given: Alibaba waits max(timeout, interval) whatever it is.
            v["HealthCheckConnectTimeout"] =
                int("HealthCheckConnectTimeout", DEFAULT_TIMEOUT).into();
            if let Some(p) = m.port {
                v["HealthCheckConnectPort"] = p.into();
            }
        }
        None => {
            v["HealthCheckInterval"] = int("HealthCheckInterval", DEFAULT_INTERVAL).into();
            v["HealthyThreshold"] = int("HealthyThreshold", DEFAULT_THRESHOLD).into();
            v["UnhealthyThreshold"] = int("UnhealthyThreshold", DEFAULT_THRESHOLD).into();
            v["HealthCheckConnectTimeout"] =
                int("HealthCheckConnectTimeout", DEFAULT_TIMEOUT).into();
            if let Some(p) = l.get("HealthCheckConnectPort") {
                v["HealthCheckConnectPort"] = p.clone();
            }
        }
    }
    for k in ["HealthCheckReq", "HealthCheckExp"] {
        if let Some(x) = l.get(k) {
            v[k] = x.clone();
        }
    }
    Ok(v)
}
