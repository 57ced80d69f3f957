//! What each host agent must mirror, and what the agents reported.
//!
//! A host's desired state is computed from the store: the ports captured on the host
//! ([`captured_on`]: bound to it, or bound to no host with an interface the agent says it has),
//! each with the enabled sessions that use it as a source, in priority order, with their rules
//! and their target's address. Its generation is
//! the store revision read *before* the rows, so the document reflects at least that revision.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tmirror_model::agent::*;
use tmirror_model::*;
use tmirror_store::{AgentRecord, HostRows, StoreResult};
use tokio::sync::watch;

use super::states::captured_on;
use super::{Service, ServiceResult};

/// An agent not seen for this long is not connected.
pub const CONNECTED_WITHIN_SECS: i64 = 90;

fn session_plan(
    s: &Session,
    rules: &[FilterRule],
    target_ip: std::net::IpAddr,
    members: Vec<MemberPlan>,
) -> SessionPlan {
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
        members,
    }
}

/// The members of `lb` that may take flows, as the agents need them.
fn member_plans(lb: &LoadBalancer) -> Vec<MemberPlan> {
    lb.members
        .iter()
        .filter(|m| lb.admin_state_up && m.takes_flows())
        .map(|m| MemberPlan {
            address: m.address,
            port: m.port,
            weight: m.weight.get(),
            healthy: m.operating_status.is_healthy(),
        })
        .collect()
}

/// The sessions' targets a host's rows carry: ports and load balancers, by id.
struct Targets<'a> {
    ports: HashMap<PortId, &'a Port>,
    load_balancers: HashMap<LoadBalancerId, &'a LoadBalancer>,
}

/// The plans of the enabled sessions of `rows` that `source` selects, in ascending priority.
fn session_plans(
    rows: &HostRows,
    targets: &Targets<'_>,
    source: impl Fn(&Session) -> bool,
) -> Vec<SessionPlan> {
    let mut sessions: Vec<&Session> = rows
        .sessions
        .iter()
        .filter(|s| s.enabled && source(s))
        .collect();
    sessions.sort_by_key(|s| s.priority);
    let mut plans = Vec::with_capacity(sessions.len());
    for s in sessions {
        match s.target {
            SessionTarget::Port(id) => {
                // A target without an address cannot receive copies; the service never lets
                // one be chosen, so skipping it only guards against a concurrent port change.
                let target = targets
                    .ports
                    .get(&id)
                    .filter(|t| t.project_id == s.project_id);
                if let Some(ip) = target.and_then(|t| t.primary_ip()) {
                    plans.push(session_plan(s, &rows.rules, ip, Vec::new()));
                }
            }
            SessionTarget::LoadBalancer(id) => {
                // A load balancer without members still goes out, with none: the agent says
                // that it has nowhere to send, and the session's state says why.
                let lb = targets
                    .load_balancers
                    .get(&id)
                    .filter(|l| l.project_id == s.project_id);
                if let Some(lb) = lb {
                    let unspecified = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
                    plans.push(session_plan(s, &rows.rules, unspecified, member_plans(lb)));
                }
            }
        }
    }
    plans
}

/// The document of `host_id` built from `rows` (read for the interfaces `interfaces`).
pub fn document(host_id: &str, interfaces: &[String], rows: &HostRows) -> DesiredState {
    let targets = Targets {
        ports: rows.targets.iter().map(|p| (p.id, p)).collect(),
        load_balancers: rows.load_balancers.iter().map(|l| (l.id, l)).collect(),
    };
    let mut plans = Vec::with_capacity(rows.ports.len());
    for port in rows
        .ports
        .iter()
        .filter(|p| captured_on(p, host_id, interfaces))
    {
        plans.push(InterfacePlan {
            port_id: port.id,
            interface_name: port.interface_name(),
            capture_side: port.binding_profile.capture_side,
            sessions: session_plans(rows, &targets, |s| s.sources.ports().contains(&port.id)),
        });
    }
    plans.sort_by(|a, b| a.interface_name.cmp(&b.interface_name));
    // The EIPs this host is the gateway of, each on its pool's external interface.
    let mut addresses: Vec<AddressPlan> = rows
        .eips
        .iter()
        .map(|(eip, interface)| AddressPlan {
            eip_id: eip.id,
            address: eip.address,
            interface_name: interface.clone(),
            sessions: session_plans(rows, &targets, |s| s.sources.eips().contains(&eip.id)),
        })
        .filter(|a| !a.sessions.is_empty())
        .collect();
    addresses.sort_by(|a, b| (&a.interface_name, a.address).cmp(&(&b.interface_name, b.address)));
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(&plans).expect("plans serialise"));
    if !addresses.is_empty() {
        hasher.update(serde_json::to_vec(&addresses).expect("plans serialise"));
    }
    let content_hash = hex::encode(hasher.finalize());
    DesiredState {
        protocol_version: AGENT_PROTOCOL_VERSION,
        host_id: host_id.to_owned(),
        generation: rows.revision,
        content_hash,
        interfaces: plans,
        addresses,
    }
}

impl Service {
    /// The desired state of `host_id`, whose agent reports `interfaces`.
    pub async fn desired_state(
        &self,
        host_id: &str,
        interfaces: &[String],
    ) -> ServiceResult<DesiredState> {
        // Unbound ports captured nowhere: what the agent reports decides nothing.
        let interfaces = if self.unbound_nowhere {
            &[]
        } else {
            interfaces
        };
        let rows = self.host_rows(host_id, interfaces).await?;
        Ok(document(host_id, interfaces, &rows))
    }

    async fn host_rows(&self, host_id: &str, interfaces: &[String]) -> ServiceResult<HostRows> {
        // A bounded number of queries, whatever the number of ports and sessions.
        Ok(self
            .store
            .agent_data()
            .await?
            .host_rows(host_id, interfaces)
            .await?)
    }

    /// A poll of `host_id` begins: its agent is seen now (in memory), a host never seen gets
    /// a record, and the poll gets its host's wake counter (bumped by every change that
    /// concerns the host).
    pub async fn poll_begins(&self, host_id: &str) -> ServiceResult<watch::Receiver<u64>> {
        let now = Timestamp::now().0;
        let interfaces = self.interfaces_of(host_id, now).await?;
        self.fleet.seen(host_id, now, None, None);
        let wake = self.fleet.watch(host_id, &interfaces);
        self.fleet.catch_up().await;
        Ok(wake)
    }

    /// The interfaces `host_id`'s document is computed with: kept in memory, and read from its
    /// agent's record (created for a host never seen) only the first time or after its agent
    /// reported other ones (see `service::fleet`), not on every poll.
    async fn interfaces_of(&self, host_id: &str, now: i64) -> ServiceResult<Vec<String>> {
        let changes = match self.fleet.known_interfaces(host_id) {
            Ok(interfaces) => return Ok(interfaces),
            Err(changes) => changes,
        };
        let mut data = self.store.agent_data().await?;
        let interfaces = match data.agent(host_id).await? {
            Some(record) => record.interfaces,
            None => {
                // Unless another server registered the agent in the meantime, whose record
                // stays, and is the one read.
                data.add_agent(&new_record(host_id, now)).await?;
                data.agent(host_id)
                    .await?
                    .map(|r| r.interfaces)
                    .unwrap_or_default()
            }
        };
        self.fleet.watch(host_id, &interfaces);
        self.fleet.interfaces_read(host_id, changes);
        Ok(interfaces)
    }

    /// Writes `record`, whose interfaces differ from the stored ones, as a change that every
    /// server dispatches (they keep the interfaces in memory).
    async fn put_agent_interfaces(&self, record: AgentRecord) -> ServiceResult<()> {
        self.transact(|tx| {
            let record = record.clone();
            Box::pin(async move { Ok(tx.put_agent_interfaces(&record).await?) })
        })
        .await
    }

    /// `host_id`'s desired state at wake counter `at`: the document kept since the last
    /// change that concerned the host, or computed now.
    pub async fn desired_state_at(
        &self,
        host_id: &str,
        at: u64,
    ) -> ServiceResult<Arc<DesiredState>> {
        if let Some(doc) = self.fleet.document(host_id, at) {
            return Ok(doc);
        }
        let interfaces = self.interfaces_of(host_id, Timestamp::now().0).await?;
        let doc = Arc::new(self.desired_state(host_id, &interfaces).await?);
        self.fleet
            .keep_document(host_id, &interfaces, at, doc.clone());
        Ok(doc)
    }

    /// Records that `host_id` registered with `interfaces`: written at once, as a change when
    /// they differ from the stored ones (every server computes the host's document with them).
    pub async fn agent_registered(
        &self,
        host_id: &str,
        interfaces: Vec<String>,
    ) -> ServiceResult<()> {
        let now = Timestamp::now().0;
        let mut data = self.store.agent_data().await?;
        let mut record = match data.agent(host_id).await? {
            Some(r) => self.fleet.overlay(r),
            None => new_record(host_id, now),
        };
        record.last_seen = now;
        if record.interfaces == interfaces {
            data.put_agent(&record).await?;
            self.fleet.watch(host_id, &record.interfaces);
            self.fleet.wake_host(host_id);
        } else {
            // Every server, this one included, wakes the host's polls when it dispatches it.
            drop(data);
            record.interfaces = interfaces;
            self.put_agent_interfaces(record.clone()).await?;
            self.fleet.watch(host_id, &record.interfaces);
        }
        Ok(())
    }

    /// Records a status report of `host_id`. Kept in memory and written down in batches,
    /// unless it brings other interfaces (written at once, like a registration).
    pub async fn agent_reported(&self, host_id: &str, report: AgentReport) -> ServiceResult<()> {
        // An agent applies documents the server gave it, whose generations are revisions
        // that were committed: a higher one is forged or broken, and would make every
        // change look applied on that host for ever. (This server's feed may lag another
        // server's commit: the database has the last word.)
        if report.applied_generation > *self.store.revisions().borrow() {
            let current = self.store.agent_data().await?.current_revision().await?;
            if report.applied_generation > current {
                return Err(DomainError::invalid(
                    Field::AppliedGeneration,
                    format!(
                        "{} is above the current revision {current}: report the generation of a desired-state document this control plane sent",
                        report.applied_generation
                    ),
                )
                .into());
            }
        }
        let now = Timestamp::now().0;
        if !report.interfaces.is_empty() && report.interfaces != self.fleet.interfaces(host_id) {
            let record = self.store.agent_data().await?.agent(host_id).await?;
            if record.as_ref().map(|r| &r.interfaces) != Some(&report.interfaces) {
                let mut record = record
                    .map(|r| self.fleet.overlay(r))
                    .unwrap_or_else(|| new_record(host_id, now));
                record.interfaces = report.interfaces.clone();
                // Every server, this one included, wakes the host's polls when it dispatches it.
                self.put_agent_interfaces(record).await?;
            }
            self.fleet.watch(host_id, &report.interfaces);
        }
        self.fleet.seen(
            host_id,
            now,
            Some(report.applied_generation),
            Some(report.counters),
        );
        Ok(())
    }

    /// How many times changes woke `host_id`'s polls on this server.
    pub fn wakeups(&self, host_id: &str) -> u64 {
        self.fleet.wakeups(host_id)
    }

    /// Returns once every change this server knows of woke the polls it concerns.
    pub async fn agents_caught_up(&self) {
        self.fleet.catch_up().await
    }

    /// Every agent the control plane has heard of.
    pub async fn agents(&self) -> StoreResult<Vec<AgentRecord>> {
        let records = self.store.agent_data().await?.agents().await?;
        Ok(records.into_iter().map(|r| self.fleet.overlay(r)).collect())
    }

    /// One agent.
    pub async fn agent(&self, host_id: &str) -> StoreResult<Option<AgentRecord>> {
        let record = self.store.agent_data().await?.agent(host_id).await?;
        Ok(record.map(|r| self.fleet.overlay(r)))
    }
}

fn new_record(host_id: &str, now: i64) -> AgentRecord {
    AgentRecord {
        host_id: host_id.to_owned(),
        registered_at: now,
        last_seen: now,
        applied_generation: 0,
        interfaces: Vec::new(),
        report: serde_json::Value::Null,
    }
}

/// Whether an agent last seen at `last_seen` counts as connected at `now`.
pub fn connected(last_seen: i64, now: i64) -> bool {
    now - last_seen <= CONNECTED_WITHIN_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(project: &ProjectId, ip: &str, host: &str) -> Port {
        Port {
            id: PortId::new(),
            project_id: project.clone(),
            name: String::new(),
            network_id: "n".into(),
            admin_state_up: true,
            mac_address: "fa:16:3e:00:00:01".into(),
            fixed_ips: vec![FixedIp {
                subnet_id: "s".into(),
                ip_address: ip.parse().unwrap(),
            }],
            device_id: String::new(),
            device_owner: String::new(),
            status: "ACTIVE".into(),
            security_groups: Vec::new(),
            host_id: host.into(),
            binding_profile: BindingProfile::default(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    /// An enabled session of `project` from `sources` to the load balancer `lb`.
    fn enabled_session(
        project: &ProjectId,
        sources: SessionSources,
        lb: LoadBalancerId,
    ) -> Session {
        Session {
            id: SessionId::new(),
            project_id: project.clone(),
            name: String::new(),
            description: String::new(),
            filter_id: FilterId::new(),
            sources,
            target: SessionTarget::LoadBalancer(lb),
            vni: Vni::DEFAULT,
            packet_length: PacketLength::DEFAULT,
            priority: SessionPriority::new(1).unwrap(),
            enabled: true,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn member(ip: &str, weight: i64, health: MemberHealth, up: bool) -> LbMember {
        LbMember {
            id: MemberId::new(),
            name: String::new(),
            address: ip.parse().unwrap(),
            port: 4789,
            weight: MemberWeight::new(weight).unwrap(),
            admin_state_up: up,
            operating_status: health,
            port_id: None,
            subnet_id: String::new(),
        }
    }

    /// An `eni` target whose first fixed IP is IPv6 (an IPv6 underlay): the desired state
    /// carries that address as it is, through the agent protocol's JSON too.
    #[test]
    fn a_port_target_with_an_ipv6_address_is_carried_as_such() {
        let p = ProjectId::new();
        let source = port(&p, "10.0.0.1", "hv1");
        let target = port(&p, "fd77::2", "");
        let session = Session {
            id: SessionId::new(),
            project_id: p.clone(),
            name: String::new(),
            description: String::new(),
            filter_id: FilterId::new(),
            sources: SessionSources::Eni(vec![source.id]),
            target: SessionTarget::Port(target.id),
            vni: Vni::DEFAULT,
            packet_length: PacketLength::DEFAULT,
            priority: SessionPriority::new(1).unwrap(),
            enabled: true,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        };
        let rows = HostRows {
            revision: 1,
            ports: vec![source],
            sessions: vec![session],
            targets: vec![target],
            ..HostRows::default()
        };
        let doc = document("hv1", &[], &rows);
        let want: std::net::IpAddr = "fd77::2".parse().unwrap();
        assert_eq!(doc.interfaces[0].sessions[0].target_ip, want);
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["interfaces"][0]["sessions"][0]["target_ip"], "fd77::2");
        let back: DesiredState = serde_json::from_value(json).unwrap();
        assert_eq!(back.interfaces[0].sessions[0].target_ip, want);
    }

    #[test]
    fn a_load_balanced_session_carries_the_members_that_may_take_flows() {
        let p = ProjectId::new();
        let source = port(&p, "10.0.0.1", "hv1");
        let lb = LoadBalancer {
            id: LoadBalancerId::new(),
            project_id: p.clone(),
            name: String::new(),
            description: String::new(),
            vip_address: None,
            admin_state_up: true,
            members: vec![
                member("10.0.0.7", 1, MemberHealth::Online, true),
                member("10.0.0.8", 50, MemberHealth::Offline, true),
                member("10.0.0.9", 0, MemberHealth::Online, true),
                member("10.0.0.10", 1, MemberHealth::Online, false),
            ],
            health_monitor: Some(HealthMonitor::tcp()),
            kept: serde_json::Value::Null,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        };
        let session = enabled_session(&p, SessionSources::Eni(vec![source.id]), lb.id);
        let mut rows = HostRows {
            revision: 3,
            ports: vec![source],
            sessions: vec![session],
            load_balancers: vec![lb.clone()],
            ..HostRows::default()
        };
        let doc = document("hv1", &[], &rows);
        let plan = &doc.interfaces[0].sessions[0];
        assert!(plan.target_ip.is_unspecified());
        // Weight 0 and disabled members take no flows and are left out; health is carried.
        let shown: Vec<(String, u8, bool)> = plan
            .members
            .iter()
            .map(|m| (m.address.to_string(), m.weight, m.healthy))
            .collect();
        assert_eq!(
            shown,
            [("10.0.0.7".into(), 1, true), ("10.0.0.8".into(), 50, false)]
        );

        // A health verdict changes the document (and so its hash: the agents apply it).
        rows.load_balancers[0].members[1].operating_status = MemberHealth::Online;
        let again = document("hv1", &[], &rows);
        assert!(again.interfaces[0].sessions[0].members[1].healthy);
        assert_ne!(again.content_hash, doc.content_hash);

        // Another project's load balancer is never a target.
        rows.load_balancers[0].project_id = ProjectId::new();
        assert!(document("hv1", &[], &rows).interfaces[0]
            .sessions
            .is_empty());
    }

    #[test]
    fn an_eip_session_aimed_at_a_load_balancer_carries_its_members_on_the_gateway() {
        let p = ProjectId::new();
        let lb = LoadBalancer {
            id: LoadBalancerId::new(),
            project_id: p.clone(),
            name: String::new(),
            description: String::new(),
            vip_address: None,
            admin_state_up: true,
            members: vec![member("10.0.0.7", 1, MemberHealth::Online, true)],
            health_monitor: None,
            kept: serde_json::Value::Null,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        };
        let eip = Eip {
            id: EipId::new(),
            project_id: p.clone(),
            pool_id: "5_bgp".into(),
            address: "198.51.100.7".parse().unwrap(),
            name: String::new(),
            port_id: None,
            bandwidth: Bandwidth::default(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        };
        let session = enabled_session(&p, SessionSources::Eip(vec![eip.id]), lb.id);
        let rows = HostRows {
            revision: 3,
            sessions: vec![session],
            load_balancers: vec![lb],
            eips: vec![(eip.clone(), "eth-ext".into())],
            ..HostRows::default()
        };
        let doc = document("gw1", &[], &rows);
        assert!(doc.interfaces.is_empty());
        assert_eq!(doc.addresses.len(), 1);
        let a = &doc.addresses[0];
        assert_eq!((a.eip_id, a.interface_name.as_str()), (eip.id, "eth-ext"));
        assert!(a.sessions[0].target_ip.is_unspecified());
        assert_eq!(a.sessions[0].members.len(), 1);
    }
}
