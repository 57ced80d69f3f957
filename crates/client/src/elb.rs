//! The Huawei ELB v3 subset tmirror serves (`/v3/{project_id}/elb/…`): what it takes to stand
//! up a load balancer as a mirror target — the load balancer, its UDP pool, members and a
//! health monitor — signed like every other call of this client. Bodies and answers are the
//! face's own (`{"loadbalancer": {…}}`, …); only the fields tmirror acts on are typed.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Client, ClientError};

/// A reference to another resource (`{"id": …}`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct IdRef {
    pub id: String,
}

/// A load balancer (`loadbalancer`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct LoadBalancer {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "up")]
    pub admin_state_up: bool,
    /// `ONLINE`, or `OFFLINE` when disabled.
    #[serde(default)]
    pub operating_status: String,
    /// Its pool, when it has one (tmirror: at most one).
    #[serde(default)]
    pub pools: Vec<IdRef>,
}

fn up() -> bool {
    true
}

/// Changes to a load balancer; `None` keeps the current value.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LbUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Disabled, no member takes flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
}

/// A pool (`pool`): one per load balancer in tmirror.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Pool {
    pub id: String,
    /// Its health monitor, if it has one.
    #[serde(default)]
    pub healthmonitor_id: Option<String>,
}

/// Changes to a member; `None` keeps the current value.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MemberUpdate {
    /// 0-100; 0 takes no new flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u8>,
    /// Disabled, the member takes no flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
}

/// A member (`member`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct LbMember {
    pub id: String,
    pub address: String,
    pub protocol_port: u16,
    pub weight: u8,
    /// `ONLINE`, `OFFLINE`, `INITIAL`, `NO_MONITOR`.
    pub operating_status: String,
}

/// A health monitor to create (`healthmonitor`).
#[derive(Clone, Debug)]
pub struct MonitorCreate {
    pub pool_id: String,
    /// `TCP` or `UDP_CONNECT`.
    pub kind: String,
    /// Seconds between checks.
    pub delay: u32,
    pub timeout: u32,
    /// Successes to `ONLINE`.
    pub max_retries: u32,
    /// Failures to `OFFLINE`.
    pub max_retries_down: u32,
    /// The port checked (default: each member's).
    pub monitor_port: Option<u16>,
}

/// A health monitor (`healthmonitor`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Monitor {
    pub id: String,
    /// `TCP` or `UDP_CONNECT`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub delay: u32,
    #[serde(default)]
    pub timeout: u32,
    #[serde(default)]
    pub max_retries: u32,
    #[serde(default)]
    pub max_retries_down: u32,
    /// `None`: each member's port.
    #[serde(default)]
    pub monitor_port: Option<u16>,
    #[serde(default = "up")]
    pub admin_state_up: bool,
}

/// Changes to a health monitor; `None` keeps the current value. Any change restarts the
/// members' health (`INITIAL`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct MonitorUpdate {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries_down: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_port: Option<u16>,
    /// Disabled, no check runs (members `NO_MONITOR`, taken as healthy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_state_up: Option<bool>,
}

#[derive(Deserialize)]
struct LbReply {
    loadbalancer: LoadBalancer,
}
#[derive(Deserialize)]
struct PoolReply {
    pool: Pool,
}
#[derive(Deserialize)]
struct MemberReply {
    member: LbMember,
}
#[derive(Deserialize)]
struct MemberList {
    members: Vec<LbMember>,
}
#[derive(Deserialize)]
struct MonitorReply {
    healthmonitor: Monitor,
}

impl Client {
    fn elb<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["v3", self.project_id(), "elb"];
        v.extend_from_slice(rest);
        v
    }

    /// `POST /v3/{project_id}/elb/loadbalancers` (201). `availability_zone_list` is required
    /// by the face (as by Huawei) and kept, not acted on.
    pub async fn lb_create(&self, name: &str) -> Result<LoadBalancer, ClientError> {
        let body = json!({"loadbalancer": {"name": name, "availability_zone_list": ["az1"]}});
        let r: LbReply = self
            .call(
                Method::POST,
                &self.elb(&["loadbalancers"]),
                &[],
                Self::json(&body),
            )
            .await?;
        Ok(r.loadbalancer)
    }

    /// `GET /v3/{project_id}/elb/loadbalancers/{id}`.
    pub async fn lb_show(&self, id: &str) -> Result<LoadBalancer, ClientError> {
        let r: LbReply = self
            .call(Method::GET, &self.elb(&["loadbalancers", id]), &[], None)
            .await?;
        Ok(r.loadbalancer)
    }

    /// `PUT /v3/{project_id}/elb/loadbalancers/{id}`.
    pub async fn lb_update(&self, id: &str, u: &LbUpdate) -> Result<LoadBalancer, ClientError> {
        let r: LbReply = self
            .call(
                Method::PUT,
                &self.elb(&["loadbalancers", id]),
                &[],
                Self::json(&json!({ "loadbalancer": u })),
            )
            .await?;
        Ok(r.loadbalancer)
    }

    /// `DELETE /v3/{project_id}/elb/loadbalancers/{id}` (204).
    pub async fn lb_delete(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty(&self.elb(&["loadbalancers", id])).await
    }

    /// `POST /v3/{project_id}/elb/pools` (201): the load balancer's UDP pool (the algorithm
    /// is kept; tmirror always hashes).
    pub async fn pool_create(&self, loadbalancer_id: &str) -> Result<Pool, ClientError> {
        let body = json!({"pool": {
            "loadbalancer_id": loadbalancer_id,
            "protocol": "UDP",
            "lb_algorithm": "SOURCE_IP",
        }});
        let r: PoolReply = self
            .call(Method::POST, &self.elb(&["pools"]), &[], Self::json(&body))
            .await?;
        Ok(r.pool)
    }

    /// `GET /v3/{project_id}/elb/pools/{id}`.
    pub async fn pool_show(&self, id: &str) -> Result<Pool, ClientError> {
        let r: PoolReply = self
            .call(Method::GET, &self.elb(&["pools", id]), &[], None)
            .await?;
        Ok(r.pool)
    }

    /// `DELETE /v3/{project_id}/elb/pools/{id}` (204).
    pub async fn pool_delete(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty(&self.elb(&["pools", id])).await
    }

    /// `POST /v3/{project_id}/elb/pools/{pool_id}/members` (201); `port` default 4789,
    /// `weight` default 1.
    pub async fn member_create(
        &self,
        pool_id: &str,
        address: &str,
        port: Option<u16>,
        weight: Option<u8>,
    ) -> Result<LbMember, ClientError> {
        let mut member = json!({"address": address});
        if let Some(p) = port {
            member["protocol_port"] = json!(p);
        }
        if let Some(w) = weight {
            member["weight"] = json!(w);
        }
        let r: MemberReply = self
            .call(
                Method::POST,
                &self.elb(&["pools", pool_id, "members"]),
                &[],
                Self::json(&json!({ "member": member })),
            )
            .await?;
        Ok(r.member)
    }

    /// `GET /v3/{project_id}/elb/pools/{pool_id}/members`.
    pub async fn member_list(&self, pool_id: &str) -> Result<Vec<LbMember>, ClientError> {
        let r: MemberList = self
            .call(
                Method::GET,
                &self.elb(&["pools", pool_id, "members"]),
                &[],
                None,
            )
            .await?;
        Ok(r.members)
    }

    /// `PUT /v3/{project_id}/elb/pools/{pool_id}/members/{id}`.
    pub async fn member_update(
        &self,
        pool_id: &str,
        id: &str,
        u: &MemberUpdate,
    ) -> Result<LbMember, ClientError> {
        let r: MemberReply = self
            .call(
                Method::PUT,
                &self.elb(&["pools", pool_id, "members", id]),
                &[],
                Self::json(&json!({ "member": u })),
            )
            .await?;
        Ok(r.member)
    }

    /// `DELETE /v3/{project_id}/elb/pools/{pool_id}/members/{id}` (204).
    pub async fn member_delete(&self, pool_id: &str, id: &str) -> Result<(), ClientError> {
        self.call_empty(&self.elb(&["pools", pool_id, "members", id]))
            .await
    }

    /// `POST /v3/{project_id}/elb/healthmonitors` (201).
    pub async fn monitor_create(&self, m: &MonitorCreate) -> Result<Monitor, ClientError> {
        let mut monitor = json!({
            "pool_id": m.pool_id,
            "type": m.kind,
            "delay": m.delay,
            "timeout": m.timeout,
            "max_retries": m.max_retries,
            "max_retries_down": m.max_retries_down,
        });
        if let Some(p) = m.monitor_port {
            monitor["monitor_port"] = json!(p);
        }
        let r: MonitorReply = self
            .call(
                Method::POST,
                &self.elb(&["healthmonitors"]),
                &[],
                Self::json(&json!({ "healthmonitor": monitor })),
            )
            .await?;
        Ok(r.healthmonitor)
    }

    /// `GET /v3/{project_id}/elb/healthmonitors/{id}`.
    pub async fn monitor_show(&self, id: &str) -> Result<Monitor, ClientError> {
        let r: MonitorReply = self
            .call(Method::GET, &self.elb(&["healthmonitors", id]), &[], None)
            .await?;
        Ok(r.healthmonitor)
    }

    /// `PUT /v3/{project_id}/elb/healthmonitors/{id}`.
    pub async fn monitor_update(
        &self,
        id: &str,
        u: &MonitorUpdate,
    ) -> Result<Monitor, ClientError> {
        let r: MonitorReply = self
            .call(
                Method::PUT,
                &self.elb(&["healthmonitors", id]),
                &[],
                Self::json(&json!({ "healthmonitor": u })),
            )
            .await?;
        Ok(r.healthmonitor)
    }

    /// `DELETE /v3/{project_id}/elb/healthmonitors/{id}` (204): no check runs any more.
    pub async fn monitor_delete(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty(&self.elb(&["healthmonitors", id])).await
    }
}
