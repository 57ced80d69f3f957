//! Filter rules: what a filter matches, per direction, in ascending priority.

use ipnet::IpNet;
use tmirror_model::*;
use tmirror_store::{ListQuery, Page, RuleField};

use super::{quota, Service, ServiceResult, Writer};

/// A new rule.
#[derive(Clone, Debug)]
pub struct RuleCreate {
    pub filter_id: FilterId,
    pub direction: Direction,
    pub priority: RulePriority,
    pub action: RuleAction,
    pub matches: RuleMatch,
    /// The protocol as the caller spelled it, echoed back by the Huawei face.
    pub protocol_spelling: String,
    pub description: String,
}

/// Changes to a rule; `None` keeps the current value, `Some(None)` clears an optional one.
/// Direction and filter cannot change.
#[derive(Clone, Debug, Default)]
pub struct RuleUpdate {
    pub priority: Option<RulePriority>,
    pub action: Option<RuleAction>,
    pub ethertype: Option<Ethertype>,
    /// The protocol and its spelling.
    pub protocol: Option<(Protocol, String)>,
    pub source_cidr: Option<Option<IpNet>>,
    pub destination_cidr: Option<Option<IpNet>>,
    pub source_port_range: Option<Option<PortRange>>,
    pub destination_port_range: Option<Option<PortRange>>,
    pub description: Option<String>,
}

/// Cross-field rules of a rule: ICMP goes with IPv4 and ICMPv6 with IPv6, CIDRs belong to the
/// ethertype's family, and only TCP and UDP have ports.
fn check_match(m: &RuleMatch) -> ServiceResult<()> {
    match (m.protocol, m.ethertype) {
        (Protocol::Icmp, Ethertype::IPv6) => {
            return Err(DomainError::invalid(
                Field::Protocol,
                "ICMP rules apply to IPv4; use ICMPV6 for IPv6",
            )
            .into())
        }
        (Protocol::Icmpv6, Ethertype::IPv4) => {
            return Err(DomainError::invalid(
                Field::Protocol,
                "ICMPV6 rules apply to IPv6; use ICMP for IPv4",
            )
            .into())
        }
        _ => {}
    }
    for (field, cidr) in [
        (Field::SourceCidr, m.source_cidr),
        (Field::DestinationCidr, m.destination_cidr),
    ] {
        if let Some(net) = cidr {
            let v4 = matches!(net, IpNet::V4(_));
            if v4 != (m.ethertype == Ethertype::IPv4) {
                return Err(DomainError::invalid(
                    field,
                    format!(
                        "{net} is not an {} CIDR, but the rule's ethertype is {}",
                        if v4 { "IPv6" } else { "IPv4" },
                        m.ethertype.as_str()
                    ),
                )
                .into());
            }
        }
    }
    if !m.protocol.has_ports() {
        for (field, range) in [
            (Field::SourcePortRange, m.source_port_range),
            (Field::DestinationPortRange, m.destination_port_range),
        ] {
            if range.is_some() {
                return Err(DomainError::invalid(
                    field,
                    format!(
                        "only TCP and UDP rules have port ranges; {} covers all ports",
                        m.protocol.upper()
                    ),
                )
                .into());
            }
        }
    }
    Ok(())
}

impl Service {
    pub async fn rule_show(&self, project: &ProjectId, id: RuleId) -> ServiceResult<FilterRule> {
        let mut r = self.store.read().await?;
        r.get_rule(project, id)
            .await?
            .ok_or_else(|| DomainError::not_found(ResourceKind::Rule, id).into())
    }

    pub async fn rule_list(
        &self,
        project: &ProjectId,
        q: &ListQuery<RuleField>,
    ) -> ServiceResult<Page<FilterRule>> {
        let mut r = self.store.read().await?;
        Ok(r.list_rules(project, q).await?)
    }
}

/// In the caller's transaction; [`Service`] runs each in one of its own.
impl Writer<'_> {
    /// [`Service::rule_show`], in the caller's transaction.
    pub async fn rule_show(&mut self, id: RuleId) -> ServiceResult<FilterRule> {
        let project = &self.actor.project.clone();
        self.tx
            .get_rule(project, id)
            .await?
            .ok_or_else(|| DomainError::not_found(ResourceKind::Rule, id).into())
    }

    pub async fn rule_create(&mut self, input: RuleCreate) -> ServiceResult<FilterRule> {
        let project = &self.actor.project.clone();
        check_match(&input.matches)?;
        let limit = self.quota(project, Quota::RulesPerDirection).await?;
        let now = Timestamp::now();
        let rule = FilterRule {
            id: RuleId::new(),
            project_id: project.clone(),
            filter_id: input.filter_id,
            direction: input.direction,
            priority: input.priority,
            action: input.action,
            matches: input.matches,
            protocol_spelling: input.protocol_spelling,
            description: input.description,
            created_at: now,
            updated_at: now,
        };
        let tx = &mut *self.tx;
        if tx.get_filter(project, rule.filter_id).await?.is_none() {
            return Err(DomainError::not_found(ResourceKind::Filter, rule.filter_id).into());
        }
        if tx
            .rule_with_priority(rule.filter_id, rule.direction, rule.priority)
            .await?
            .is_some()
        {
            return Err(DomainError::RulePriorityInUse {
                priority: rule.priority.get(),
                direction: rule.direction.as_str(),
            }
            .into());
        }
        if tx.count_rules(rule.filter_id, rule.direction).await? >= limit {
            return Err(quota(Quota::RulesPerDirection, limit));
        }
        tx.put_rule(&rule).await?;
        Ok(rule)
    }

    /// Merges the update into the stored rule. When the resulting protocol has no ports, port
    /// ranges the update did not mention are cleared (Terraform changes udp → icmpv6 without
    /// sending the port fields and expects them gone); port ranges it does send are an error.
    pub async fn rule_update(
        &mut self,
        id: RuleId,
        input: RuleUpdate,
    ) -> ServiceResult<FilterRule> {
        let project = &self.actor.project.clone();
        let tx = &mut *self.tx;
        let mut rule = tx
            .get_rule(project, id)
            .await?
            .ok_or_else(|| DomainError::not_found(ResourceKind::Rule, id))?;
        let m = &mut rule.matches;
        if let Some(v) = input.ethertype {
            m.ethertype = v;
        }
        if let Some((protocol, spelling)) = input.protocol {
            m.protocol = protocol;
            rule.protocol_spelling = spelling;
        }
        if let Some(v) = input.source_cidr {
            m.source_cidr = v;
        }
        if let Some(v) = input.destination_cidr {
            m.destination_cidr = v;
        }
        if let Some(v) = input.source_port_range {
            m.source_port_range = v;
        } else if !m.protocol.has_ports() {
            m.source_port_range = None;
        }
        if let Some(v) = input.destination_port_range {
            m.destination_port_range = v;
        } else if !m.protocol.has_ports() {
            m.destination_port_range = None;
        }
        check_match(m)?;
        if let Some(v) = input.action {
            rule.action = v;
        }
        if let Some(v) = input.description {
            rule.description = v;
        }
        if let Some(priority) = input.priority {
            if priority != rule.priority {
                if tx
                    .rule_with_priority(rule.filter_id, rule.direction, priority)
                    .await?
                    .is_some()
                {
                    return Err(DomainError::RulePriorityInUse {
                        priority: priority.get(),
                        direction: rule.direction.as_str(),
                    }
                    .into());
                }
                rule.priority = priority;
            }
        }
        rule.updated_at = Timestamp::now();
        tx.put_rule(&rule).await?;
        Ok(rule)
    }

    pub async fn rule_delete(&mut self, id: RuleId) -> ServiceResult<()> {
        let project = &self.actor.project.clone();
        let tx = &mut *self.tx;
        if !tx.delete_rule(project, id).await? {
            return Err(DomainError::not_found(ResourceKind::Rule, id).into());
        }
        Ok(())
    }
}
