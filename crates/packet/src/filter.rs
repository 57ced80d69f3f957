//! Filters compiled from the model's rules: per direction, in ascending rule priority, first
//! match decides.

use ipnet::IpNet;
use tmirror_model::{
    Direction, Ethertype, FilterRule, FilterWithRules, PortRange, RuleAction, RuleMatch,
    RulePriority,
};

use crate::parse::{IpVersion, Packet};

/// The parts of a rule the data plane needs (a [`FilterRule`] without ids and timestamps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    pub direction: Direction,
    pub priority: RulePriority,
    pub action: RuleAction,
    pub matches: RuleMatch,
}

impl From<&FilterRule> for RuleSpec {
    fn from(r: &FilterRule) -> Self {
        RuleSpec {
            direction: r.direction,
            priority: r.priority,
            action: r.action,
            matches: r.matches.clone(),
        }
    }
}

/// One rule lowered to integer comparisons. Public so that other evaluators (the agent's
/// kernel program) take the engine's own lowering rather than redoing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompiledRule {
    pub accept: bool,
    /// `false` for a rule that can never match (a CIDR of the other address family).
    pub live: bool,
    pub version: IpVersion,
    /// `None`: every protocol.
    pub protocol: Option<u8>,
    pub src_net: u128,
    pub src_mask: u128,
    pub dst_net: u128,
    pub dst_mask: u128,
    /// Whether the rule constrains ports (TCP/UDP rule with at least one range).
    pub ports: bool,
    pub sport: (u16, u16),
    pub dport: (u16, u16),
}

fn cidr(version: IpVersion, net: Option<IpNet>) -> Option<(u128, u128)> {
    match (version, net) {
        (_, None) => Some((0, 0)),
        (IpVersion::V4, Some(IpNet::V4(n))) => {
            let mask = u128::from(u32::from(n.netmask()));
            Some((u128::from(u32::from(n.network())) & mask, mask))
        }
        (IpVersion::V6, Some(IpNet::V6(n))) => {
            let mask = u128::from(n.netmask());
            Some((u128::from(n.network()) & mask, mask))
        }
        _ => None,
    }
}

fn range(r: Option<PortRange>) -> (u16, u16) {
    r.map(|r| (r.from(), r.to())).unwrap_or((0, u16::MAX))
}

impl CompiledRule {
    pub(crate) fn new(action: RuleAction, m: &RuleMatch) -> Self {
        let version = match m.ethertype {
            Ethertype::IPv4 => IpVersion::V4,
            Ethertype::IPv6 => IpVersion::V6,
        };
        let src = cidr(version, m.source_cidr);
        let dst = cidr(version, m.destination_cidr);
        let live = src.is_some() && dst.is_some();
        let (src_net, src_mask) = src.unwrap_or((0, 0));
        let (dst_net, dst_mask) = dst.unwrap_or((0, 0));
        let ports = m.protocol.has_ports()
            && (m.source_port_range.is_some() || m.destination_port_range.is_some());
        let (sport, dport) = if ports {
            (range(m.source_port_range), range(m.destination_port_range))
        } else {
            ((0, u16::MAX), (0, u16::MAX))
        };
        CompiledRule {
            accept: action == RuleAction::Accept,
            live,
            version,
            protocol: m.protocol.number(),
            src_net,
            src_mask,
            dst_net,
            dst_mask,
            ports,
            sport,
            dport,
        }
    }

    #[inline(always)]
    pub(crate) fn matches(&self, p: &Packet) -> bool {
        if !self.live || self.version != p.version {
            return false;
        }
        if let Some(proto) = self.protocol {
            if proto != p.protocol {
                return false;
            }
        }
        if p.src & self.src_mask != self.src_net || p.dst & self.dst_mask != self.dst_net {
            return false;
        }
        if self.ports {
            match p.ports {
                None => return false,
                Some((s, d)) => {
                    if s < self.sport.0 || s > self.sport.1 || d < self.dport.0 || d > self.dport.1
                    {
                        return false;
                    }
                }
            }
        }
        true
    }
}

/// A filter compiled for the data plane: the rules of each direction in ascending priority.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompiledFilter {
    pub(crate) ingress: Vec<CompiledRule>,
    pub(crate) egress: Vec<CompiledRule>,
}

impl CompiledFilter {
    /// Compiles rules of both directions. Rules are ordered by priority (the model keeps
    /// priorities unique per direction; equal priorities keep their input order).
    pub fn new<'a>(rules: impl IntoIterator<Item = &'a RuleSpec>) -> Self {
        let mut ingress: Vec<(RulePriority, CompiledRule)> = Vec::new();
        let mut egress = Vec::new();
        for r in rules {
            let c = CompiledRule::new(r.action, &r.matches);
            match r.direction {
                Direction::Ingress => ingress.push((r.priority, c)),
                Direction::Egress => egress.push((r.priority, c)),
            }
        }
        ingress.sort_by_key(|(p, _)| *p);
        egress.sort_by_key(|(p, _)| *p);
        CompiledFilter {
            ingress: ingress.into_iter().map(|(_, c)| c).collect(),
            egress: egress.into_iter().map(|(_, c)| c).collect(),
        }
    }

    /// Compiles a filter with its rules as the store returns it.
    pub fn from_filter(filter: &FilterWithRules) -> Self {
        Self::from_rules(filter.ingress_rules.iter().chain(&filter.egress_rules))
    }

    /// Compiles the model's stored rules (both directions, any order).
    pub fn from_rules<'a>(rules: impl IntoIterator<Item = &'a FilterRule>) -> Self {
        let specs: Vec<RuleSpec> = rules.into_iter().map(RuleSpec::from).collect();
        Self::new(&specs)
    }

    /// Number of rules of one direction.
    pub fn len(&self, direction: Direction) -> usize {
        self.rules(direction).len()
    }

    /// Whether the filter has no rule in either direction.
    pub fn is_empty(&self) -> bool {
        self.ingress.is_empty() && self.egress.is_empty()
    }

    /// The rules of `direction`, in evaluation order.
    #[inline(always)]
    pub fn rules(&self, direction: Direction) -> &[CompiledRule] {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// The action of the first rule of `direction` that matches, `None` when none does.
    #[inline]
    pub fn evaluate(&self, packet: &Packet, direction: Direction) -> Option<RuleAction> {
        self.rules(direction)
            .iter()
            .find(|r| r.matches(packet))
            .map(|r| {
                if r.accept {
                    RuleAction::Accept
                } else {
                    RuleAction::Reject
                }
            })
    }
}
