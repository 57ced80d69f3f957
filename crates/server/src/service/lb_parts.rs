//! A load balancer's listener, pool and health monitor as the ELB API has them: parts it holds
//! at most one of ([`LbPart`]), kept as documents in the load balancer's `kept` value under
//! `huawei` (the face that introduced them; the Alibaba listener is the health check, kept
//! apart). The face parses and renders; the rules are decided here, each check and its write
//! in one transaction (`docs/load-balancers.md`):
//!
//! - one listener and one pool per load balancer (a second is a conflict);
//! - listeners and pools are UDP: the copies are VXLAN over UDP;
//! - a listener's default pool is its own load balancer's pool, or none; a pool made for a
//!   listener becomes its default pool, and deleting the pool leaves the listener with none;
//! - a pool with members is not deleted; deleting it removes the monitor;
//! - a monitor belongs to the pool: one per pool, none without a pool.
//!
//! The documents' own keys (`protocol`, `protocol_port`, `default_pool_id`) are the fields the
//! rules are about; everything else in them is the face's, kept and shown back as given.

use serde_json::{json, Map, Value};
use tmirror_model::*;

use super::{ServiceResult, Writer};

/// The only protocol of listeners and pools.
const UDP: &str = "UDP";

fn key(part: LbPart) -> &'static str {
    match part {
        LbPart::Listener => "listener",
        LbPart::Pool => "pool",
        LbPart::Monitor => "healthmonitor",
    }
}

/// The kept document of `lb`'s `part`, if it has one (the monitor's: its fields tmirror does
/// not act on; whether there is a monitor is `lb.health_monitor`).
pub fn part_doc(lb: &LoadBalancer, part: LbPart) -> Option<&Map<String, Value>> {
    kept_doc(lb, key(part))
}

/// `kept.huawei.<name>` of `lb`: a part's document, or the load balancer's own kept fields.
pub fn kept_doc<'a>(lb: &'a LoadBalancer, name: &str) -> Option<&'a Map<String, Value>> {
    lb.kept.get("huawei")?.get(name)?.as_object()
}

/// `lb`'s kept value with `kept.huawei.<name>` set to `doc` (or removed, for `None`).
pub fn with_kept_doc(lb: &LoadBalancer, name: &str, doc: Option<Map<String, Value>>) -> Value {
    let mut all = lb.kept.as_object().cloned().unwrap_or_default();
    let mut huawei = all
        .get("huawei")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match doc {
        Some(v) => huawei.insert(name.to_owned(), Value::Object(v)),
        None => huawei.remove(name),
    };
    all.insert("huawei".into(), Value::Object(huawei));
    Value::Object(all)
}

/// A listener's default pool as the caller names it.
#[derive(Clone, Debug)]
pub enum DefaultPool {
    /// None (`null`).
    None,
    /// The pool with this id, as written (an id that is no UUID names no load balancer).
    Pool {
        owner: Option<LoadBalancerId>,
        written: String,
    },
}

/// A new listener of a load balancer.
#[derive(Clone, Debug)]
pub struct ListenerCreate {
    pub protocol: String,
    pub port: i64,
    /// `None`: no default pool.
    pub default_pool: Option<DefaultPool>,
    /// The face's other fields, kept and shown back.
    pub kept: Map<String, Value>,
}

/// Changes to a listener: its kept fields are merged over the current ones.
#[derive(Clone, Debug, Default)]
pub struct ListenerUpdate {
    /// `None` keeps the current default pool.
    pub default_pool: Option<DefaultPool>,
    pub kept: Map<String, Value>,
}

/// A new pool, named by its load balancer, its listener (the listener's load balancer), or
/// both (which must agree).
#[derive(Clone, Debug)]
pub struct PoolCreate {
    pub load_balancer: Option<LoadBalancerId>,
    /// The load balancer of the listener named, and the listener's id as written.
    pub listener: Option<(LoadBalancerId, String)>,
    pub protocol: String,
    pub kept: Map<String, Value>,
}

fn udp_only(protocol: &str, what: &str) -> ServiceResult<()> {
    if protocol != UDP {
        return Err(DomainError::invalid(
            Field::Protocol,
            format!("mirrored copies are VXLAN over UDP; the {what} must be UDP, not {protocol:?}"),
        )
        .into());
    }
    Ok(())
}

/// Checks `choice` against `lb` and writes it into the listener document `doc`.
fn set_default_pool(
    lb: &LoadBalancer,
    choice: &DefaultPool,
    doc: &mut Map<String, Value>,
) -> ServiceResult<()> {
    let value = match choice {
        DefaultPool::None => Value::Null,
        DefaultPool::Pool { owner, written } => {
            if *owner != Some(lb.id) || part_doc(lb, LbPart::Pool).is_none() {
                return Err(DomainError::invalid(
                    Field::DefaultPool,
                    format!("{written:?} is not a pool of load balancer {}", lb.id),
                )
                .into());
            }
            json!(LbPart::Pool.id_of(lb.id).to_string())
        }
    };
    doc.insert("default_pool_id".into(), value);
    Ok(())
}

fn already(lb: &LoadBalancer, part: LbPart, what: &str) -> super::ServiceError {
    DomainError::Conflict(format!(
        "load balancer {} already has its {what} {}: a tmirror load balancer has one",
        lb.id,
        part.id_of(lb.id)
    ))
    .into()
}

/// A load balancer's part that does not exist: named as the load balancer (the face names it
/// by the part's id).
fn missing(lb: &LoadBalancer) -> super::ServiceError {
    DomainError::not_found(ResourceKind::LoadBalancer, lb.id).into()
}

impl Writer<'_> {
    /// Writes `kept` as `lb`'s kept value.
    async fn keep(&mut self, lb: LoadBalancerId, kept: Value) -> ServiceResult<LoadBalancer> {
        self.load_balancer_update(
            lb,
            super::LoadBalancerUpdate {
                kept: Some(kept),
                ..Default::default()
            },
        )
        .await
    }

    pub async fn listener_create(
        &mut self,
        lb: LoadBalancerId,
        input: ListenerCreate,
    ) -> ServiceResult<LoadBalancer> {
        // The request is checked before the state: a bad one is refused whatever exists.
        udp_only(&input.protocol, "listener")?;
        if !(1..=65535).contains(&input.port) {
            return Err(DomainError::invalid(
                Field::ListenerPort,
                format!("1 to 65535, not {}", input.port),
            )
            .into());
        }
        let current = self.load_balancer_show(lb).await?;
        if part_doc(&current, LbPart::Listener).is_some() {
            return Err(already(&current, LbPart::Listener, "listener"));
        }
        let mut doc = input.kept;
        doc.insert("protocol".into(), json!(UDP));
        doc.insert("protocol_port".into(), json!(input.port));
        if let Some(choice) = &input.default_pool {
            set_default_pool(&current, choice, &mut doc)?;
        }
        let kept = with_kept_doc(&current, key(LbPart::Listener), Some(doc));
        self.keep(lb, kept).await
    }

    pub async fn listener_update(
        &mut self,
        lb: LoadBalancerId,
        input: ListenerUpdate,
    ) -> ServiceResult<LoadBalancer> {
        let current = self.load_balancer_show(lb).await?;
        let mut doc = part_doc(&current, LbPart::Listener)
            .cloned()
            .ok_or_else(|| missing(&current))?;
        doc.extend(input.kept);
        if let Some(choice) = &input.default_pool {
            set_default_pool(&current, choice, &mut doc)?;
        }
        let kept = with_kept_doc(&current, key(LbPart::Listener), Some(doc));
        self.keep(lb, kept).await
    }

    pub async fn listener_delete(&mut self, lb: LoadBalancerId) -> ServiceResult<LoadBalancer> {
        let current = self.load_balancer_show(lb).await?;
        if part_doc(&current, LbPart::Listener).is_none() {
            return Err(missing(&current));
        }
        let kept = with_kept_doc(&current, key(LbPart::Listener), None);
        self.keep(lb, kept).await
    }

    pub async fn pool_create(&mut self, input: PoolCreate) -> ServiceResult<LoadBalancer> {
        udp_only(&input.protocol, "pool")?;
        let lb = match (input.load_balancer, &input.listener) {
            (Some(lb), None) => lb,
            (None, Some((owner, _))) | (Some(_), Some((owner, _))) => *owner,
            (None, None) => {
                return Err(DomainError::invalid(
                    Field::Listener,
                    "a pool is made for a load balancer or a listener; name one",
                )
                .into())
            }
        };
        let current = self.load_balancer_show(lb).await?;
        if let Some((_, written)) = &input.listener {
            if part_doc(&current, LbPart::Listener).is_none() {
                return Err(missing(&current));
            }
            if input.load_balancer.is_some_and(|named| named != lb) {
                return Err(DomainError::invalid(
                    Field::Listener,
                    format!(
                        "listener {written} is not of load balancer {}",
                        input.load_balancer.expect("named")
                    ),
                )
                .into());
            }
        }
        if part_doc(&current, LbPart::Pool).is_some() {
            return Err(already(&current, LbPart::Pool, "pool"));
        }
        let mut doc = input.kept;
        doc.insert("protocol".into(), json!(UDP));
        let mut kept = with_kept_doc(&current, key(LbPart::Pool), Some(doc));
        // A pool made for a listener is its default pool (ELB's rule).
        if input.listener.is_some() {
            if let Some(l) = kept["huawei"][key(LbPart::Listener)].as_object_mut() {
                l.insert(
                    "default_pool_id".into(),
                    json!(LbPart::Pool.id_of(lb).to_string()),
                );
            }
        }
        self.keep(lb, kept).await
    }

    /// Removes the pool and its monitor, and the listener's default pool; refused while the
    /// pool has members (ELB's rule; tmirror's pool is a view of the load balancer's members).
    pub async fn pool_delete(&mut self, lb: LoadBalancerId) -> ServiceResult<LoadBalancer> {
        let current = self.load_balancer_show(lb).await?;
        if part_doc(&current, LbPart::Pool).is_none() {
            return Err(missing(&current));
        }
        if !current.members.is_empty() {
            return Err(DomainError::Conflict(format!(
                "pool {} still has {} members: remove them first",
                LbPart::Pool.id_of(lb),
                current.members.len()
            ))
            .into());
        }
        let current = self.health_monitor_set(lb, None).await?;
        let mut kept = with_kept_doc(&current, key(LbPart::Pool), None);
        // The listener is left without a default pool, not pointing at a pool that is gone.
        if let Some(l) = kept["huawei"][key(LbPart::Listener)].as_object_mut() {
            l.insert("default_pool_id".into(), Value::Null);
        }
        self.keep(lb, kept).await
    }

    /// Gives the pool of `lb` its health monitor, with the face's other fields `kept`: one per
    /// pool, none without a pool.
    pub async fn monitor_create(
        &mut self,
        lb: LoadBalancerId,
        monitor: HealthMonitor,
        kept: Map<String, Value>,
    ) -> ServiceResult<LoadBalancer> {
        let current = self.load_balancer_show(lb).await?;
        if part_doc(&current, LbPart::Pool).is_none() {
            return Err(missing(&current));
        }
        if current.health_monitor.is_some() {
            return Err(DomainError::Conflict(format!(
                "pool {} already has its health monitor {}",
                LbPart::Pool.id_of(lb),
                LbPart::Monitor.id_of(lb)
            ))
            .into());
        }
        let all = with_kept_doc(&current, key(LbPart::Monitor), Some(kept));
        self.keep(lb, all).await?;
        self.health_monitor_set(lb, Some(monitor)).await
    }
}
