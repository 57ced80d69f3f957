//! What each host agent must mirror, and what the agents reported.
//!
//! A host's desired state is computed from the store: the ports captured on the host
//! ([`captured_on`]: bound to it, or bound to no host with an interface the agent says it has),
//! each with the enabled sessions that use it as a source, in priority order, with their rules
//! and their target's address. Its generation is
//! the store revision read *before* the rows, so the document reflects at least that revision.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use tmirror_model::agent::*;
use tmirror_model::*;
use tmirror_store::{AgentRecord, HostRows, StoreResult};

use super::states::captured_on;
use super::{Service, ServiceResult};

/// An agent not seen for this long is not connected.
pub const CONNECTED_WITHIN_SECS: i64 = 90;

fn session_plan(s: &Session, rules: &[FilterRule], target_ip: std::net::IpAddr) -> SessionPlan {
    let plan = |d: Direction| -> Vec<RulePlan> {
        let mut v: Vec<RulePlan> = rules
            .iter()
            .filter(|r| r.filter_id == s.filter_id && r.direction == d)
            .map(|r| RulePlan {
                rule_id: r.id,
                priority: r.priority,
                action: r.action,
                matches: r.matches.clone(),
            })
            .collect();
        v.sort_by_key(|r| r.priority);
        v
    };
    SessionPlan {
        session_id: s.id,
        priority: s.priority,
        vni: s.vni,
        packet_length: s.packet_length,
        target_ip,
        ingress_rules: plan(Direction::Ingress),
        egress_rules: plan(Direction::Egress),
    }
}

/// The document of `host_id` built from `rows` (read for the interfaces `interfaces`).
pub fn document(host_id: &str, interfaces: &[String], rows: &HostRows) -> DesiredState {
    let targets: HashMap<PortId, &Port> = rows.targets.iter().map(|p| (p.id, p)).collect();
    let mut plans = Vec::with_capacity(rows.ports.len());
    for port in rows
        .ports
        .iter()
        .filter(|p| captured_on(p, host_id, interfaces))
    {
        let mut sessions: Vec<&Session> = rows
            .sessions
            .iter()
            .filter(|s| s.enabled && s.sources.contains(&port.id))
            .collect();
        sessions.sort_by_key(|s| s.priority);
        let mut session_plans = Vec::with_capacity(sessions.len());
        for s in sessions {
            // A target without an address cannot receive copies; the service never lets
            // one be chosen, so skipping it only guards against a concurrent port change.
            let target = targets
                .get(&s.target_id)
                .filter(|t| t.project_id == s.project_id);
            if let Some(ip) = target.and_then(|t| t.primary_ip()) {
                session_plans.push(session_plan(s, &rows.rules, ip));
            }
        }
        plans.push(InterfacePlan {
            port_id: port.id,
            interface_name: port.interface_name(),
            capture_side: port.binding_profile.capture_side,
            sessions: session_plans,
        });
    }
    plans.sort_by(|a, b| a.interface_name.cmp(&b.interface_name));
    let content_hash = hex::encode(Sha256::digest(
        serde_json::to_vec(&plans).expect("plans serialise"),
    ));
    DesiredState {
        protocol_version: AGENT_PROTOCOL_VERSION,
        host_id: host_id.to_owned(),
        generation: rows.revision,
        content_hash,
        interfaces: plans,
    }
}

impl Service {
    /// The desired state of `host_id`, whose agent reports `interfaces`.
    pub async fn desired_state(
        &self,
        host_id: &str,
        interfaces: &[String],
    ) -> ServiceResult<DesiredState> {
        let rows = self.host_rows(host_id, interfaces).await?;
        Ok(document(host_id, interfaces, &rows))
    }

    async fn host_rows(&self, host_id: &str, interfaces: &[String]) -> ServiceResult<HostRows> {
        let mut agents = self.store.agent_data().await?;
        let revision = agents.current_revision().await?;
        let mut ports = agents.ports_on_host(host_id).await?;
        ports.extend(agents.unbound_ports().await?);
        ports.retain(|p| captured_on(p, host_id, interfaces));
        drop(agents);
        let mut r = self.store.read().await?;
        let mut sessions: Vec<Session> = Vec::new();
        for port in &ports {
            for id in r.sessions_with_source(port.id).await? {
                if sessions.iter().any(|s| s.id == id) {
                    continue;
                }
                if let Some(s) = r.get_session(&port.project_id, id).await? {
                    if s.enabled {
                        sessions.push(s);
                    }
                }
            }
        }
        let filters: Vec<FilterId> = sessions.iter().map(|s| s.filter_id).collect();
        let rules = r.rules_of_filters(&filters).await?;
        let mut targets = Vec::new();
        for s in &sessions {
            targets.extend(r.get_port(&s.project_id, s.target_id).await?);
        }
        Ok(HostRows {
            revision,
            ports,
            sessions,
            rules,
            targets,
        })
    }

    /// Records that `host_id` was seen, with its interfaces and (if given) a status report.
    pub async fn agent_seen(
        &self,
        host_id: &str,
        interfaces: Option<Vec<String>>,
        report: Option<AgentReport>,
    ) -> ServiceResult<AgentRecord> {
        let mut data = self.store.agent_data().await?;
        let now = Timestamp::now().0;
        let mut record = data.agent(host_id).await?.unwrap_or(AgentRecord {
            host_id: host_id.to_owned(),
            registered_at: now,
            last_seen: now,
            applied_generation: 0,
            interfaces: Vec::new(),
            report: serde_json::Value::Null,
        });
        record.last_seen = now;
        if let Some(i) = interfaces {
            record.interfaces = i;
        }
        if let Some(r) = report {
            // An agent applies documents the server gave it, whose generations are revisions
            // that were committed: a higher one is forged or broken, and would make every
            // change look applied on that host for ever.
            let current = data.current_revision().await?;
            if r.applied_generation > current {
                return Err(DomainError::invalid(
                    Field::AppliedGeneration,
                    format!(
                        "{} is above the current revision {current}: report the generation of a desired-state document this control plane sent",
                        r.applied_generation
                    ),
                )
                .into());
            }
            record.applied_generation = record.applied_generation.max(r.applied_generation);
            if !r.interfaces.is_empty() {
                record.interfaces = r.interfaces;
            }
            record.report = r.counters;
        }
        data.put_agent(&record).await?;
        Ok(record)
    }

    /// Every agent the control plane has heard of.
    pub async fn agents(&self) -> StoreResult<Vec<AgentRecord>> {
        self.store.agent_data().await?.agents().await
    }

    /// One agent.
    pub async fn agent(&self, host_id: &str) -> StoreResult<Option<AgentRecord>> {
        self.store.agent_data().await?.agent(host_id).await
    }
}

/// Whether an agent last seen at `last_seen` counts as connected at `now`.
pub fn connected(last_seen: i64, now: i64) -> bool {
    now - last_seen <= CONNECTED_WITHIN_SECS
}
