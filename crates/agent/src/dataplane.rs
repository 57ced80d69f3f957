//! The capture-and-send data plane: one [`Pipeline`] per source interface of the desired
//! state. Applying a state starts the pipelines of new interfaces, swaps the plan of those
//! whose sessions or rules changed, stops those that are gone, and leaves the rest alone.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tmirror_model::agent::{DesiredState, RulePlan, SessionPlan};
use tmirror_model::{CaptureSide, Direction};
use tmirror_packet::{CompiledFilter, MirrorPlan, PlanConfig, RuleSpec, SessionSpec};
use tracing::{info, warn};

use crate::counters::Registry;
use crate::pipeline::{Pipeline, PipelineConfig, PipelinePlan, SendMode, Target};
use crate::sync::Dataplane;
use crate::sys::ring::RingConfig;

/// How the data plane captures and sends.
#[derive(Clone, Copy, Debug)]
pub struct MirrorConfig {
    /// Outer source address of the copies; `None`: the kernel's choice for each target.
    pub underlay_ip: Option<Ipv4Addr>,
    /// MTU of the path to the targets: copies are cut to `underlay_mtu - 36` bytes.
    pub underlay_mtu: u16,
    pub ring: RingConfig,
    /// Copies per `sendmmsg`.
    pub batch: usize,
    /// Send buffer of each pipeline's socket, in bytes.
    pub sndbuf: usize,
    /// How copies leave the host.
    pub send_mode: SendMode,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig {
            underlay_ip: None,
            underlay_mtu: 1500,
            ring: RingConfig::default(),
            batch: 64,
            sndbuf: 4 << 20,
            send_mode: SendMode::default(),
        }
    }
}

/// One capture of the desired state: a port's whole interface, or the frames of one elastic
/// IP on its gateway's external interface (selected in the kernel: never the whole interface).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Capture {
    interface_name: String,
    select: Option<IpAddr>,
    capture_side: CaptureSide,
    sessions: Vec<SessionPlan>,
}

impl Capture {
    /// The name its pipeline and counters go by: the interface, or `interface@address`.
    fn name(&self) -> String {
        match self.select {
            Some(addr) => format!("{}@{addr}", self.interface_name),
            None => self.interface_name.clone(),
        }
    }
}

/// The captures of `state` that have enabled sessions, by name.
fn captures(state: &DesiredState) -> HashMap<String, Capture> {
    let mut wanted = HashMap::new();
    // A port without enabled sessions costs nothing: no ring, no thread.
    for iface in state.interfaces.iter().filter(|i| !i.sessions.is_empty()) {
        let capture = Capture {
            interface_name: iface.interface_name.clone(),
            select: None,
            capture_side: iface.capture_side,
            sessions: iface.sessions.clone(),
        };
        if wanted.insert(capture.name(), capture).is_some() {
            warn!(interface = %iface.interface_name, port = %iface.port_id, "two ports name the same interface; the last one is mirrored");
        }
    }
    for eip in state.addresses.iter().filter(|a| !a.sessions.is_empty()) {
        let capture = Capture {
            interface_name: eip.interface_name.clone(),
            select: Some(eip.address),
            // The external interface seen as the EIP's: what it receives (from the internet,
            // to the EIP) is the EIP's ingress, what it sends its egress.
            capture_side: CaptureSide::Guest,
            sessions: eip.sessions.clone(),
        };
        if wanted.insert(capture.name(), capture).is_some() {
            warn!(interface = %eip.interface_name, address = %eip.address, "two EIPs have the same address; the last one is mirrored");
        }
    }
    wanted
}

/// The data plane `tmirror agent` runs.
pub struct Mirrors {
    config: MirrorConfig,
    registry: Arc<Registry>,
    pipelines: HashMap<String, (Capture, Pipeline)>,
}

impl Mirrors {
    pub fn new(config: MirrorConfig, registry: Arc<Registry>) -> Mirrors {
        Mirrors {
            config,
            registry,
            pipelines: HashMap::new(),
        }
    }

    /// Interfaces with a running pipeline.
    pub fn running(&self) -> Vec<String> {
        let mut v: Vec<String> = self.pipelines.keys().cloned().collect();
        v.sort();
        v
    }

    fn pipeline_config(&self) -> PipelineConfig {
        PipelineConfig {
            ring: self.config.ring,
            batch: self.config.batch,
            max_frame: usize::from(
                self.config
                    .underlay_mtu
                    .max(tmirror_packet::MIN_UNDERLAY_MTU),
            ) + 14,
            sndbuf: self.config.sndbuf,
            send_mode: self.config.send_mode,
        }
    }

    /// Compiles a capture's sessions into the engine's plan.
    fn plan(&self, iface: &Capture) -> PipelinePlan {
        let sessions = iface.sessions.iter().filter_map(|s| {
            let ip = match s.target_ip {
                IpAddr::V4(ip) => ip,
                IpAddr::V6(ip) => {
                    warn!(session = %s.session_id, target = %ip, "IPv6 underlay targets are not supported; the session mirrors nothing on this host");
                    return None;
                }
            };
            let rules: Vec<RuleSpec> = rule_specs(Direction::Ingress, &s.ingress_rules)
                .chain(rule_specs(Direction::Egress, &s.egress_rules))
                .collect();
            Some(SessionSpec {
                id: s.session_id,
                priority: s.priority,
                vni: s.vni,
                packet_length: s.packet_length,
                filter: CompiledFilter::new(&rules),
                target: Target {
                    ip,
                    counters: self.registry.session(s.session_id),
                },
            })
        });
        let mirror = MirrorPlan::new(
            sessions,
            PlanConfig {
                underlay_mtu: self.config.underlay_mtu,
                ..PlanConfig::default()
            },
        );
        PipelinePlan::new(
            mirror,
            iface.capture_side,
            self.config.underlay_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
        )
    }
}

fn rule_specs(direction: Direction, rules: &[RulePlan]) -> impl Iterator<Item = RuleSpec> + '_ {
    rules.iter().map(move |r| RuleSpec {
        direction,
        priority: r.priority,
        action: r.action,
        matches: r.matches.clone(),
    })
}

impl Dataplane for Mirrors {
    fn apply(&mut self, state: &DesiredState) -> Result<(), String> {
        let wanted = captures(state);
        // Dropping a pipeline stops and joins its thread.
        self.pipelines.retain(|name, _| {
            let keep = wanted.contains_key(name.as_str());
            if !keep {
                info!(capture = %name, "stopping capture");
            }
            keep
        });
        let config = self.pipeline_config();
        for (name, capture) in wanted {
            match self.pipelines.get(&name) {
                Some((current, _)) if *current == capture => {}
                Some(_) => {
                    let plan = self.plan(&capture);
                    let (current, pipeline) = self.pipelines.get_mut(&name).expect("present");
                    pipeline.update(plan);
                    *current = capture;
                }
                None => {
                    let plan = self.plan(&capture);
                    let counters = self.registry.interface(&name);
                    let pipeline = Pipeline::start(
                        capture.interface_name.clone(),
                        capture.select,
                        plan,
                        config,
                        counters,
                    )
                    .map_err(|e| format!("cannot start the capture thread of {name}: {e}"))?;
                    self.pipelines.insert(name, (capture, pipeline));
                }
            }
        }
        let sessions: Vec<_> = state
            .interfaces
            .iter()
            .flat_map(|i| i.sessions.iter().map(|s| s.session_id))
            .chain(
                state
                    .addresses
                    .iter()
                    .flat_map(|a| a.sessions.iter().map(|s| s.session_id)),
            )
            .collect();
        let interfaces: Vec<String> = state
            .interfaces
            .iter()
            .map(|i| i.interface_name.clone())
            .chain(
                state
                    .addresses
                    .iter()
                    .map(|a| format!("{}@{}", a.interface_name, a.address)),
            )
            .collect();
        self.registry.retain(&sessions, &interfaces);
        self.registry.generation.store(state.generation, Relaxed);
        Ok(())
    }

    fn counters(&self) -> serde_json::Value {
        self.registry.to_json()
    }

    fn interfaces(&self) -> Vec<String> {
        host_interfaces()
    }

    fn connected(&mut self, answered: bool) {
        self.registry.connected.store(answered, Relaxed);
    }
}

/// The network interfaces of the host (of the agent's network namespace).
pub fn host_interfaces() -> Vec<String> {
    crate::sys::interface_names()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmirror_model::agent::{AddressPlan, InterfacePlan};
    use tmirror_model::{EipId, PacketLength, PortId, SessionId, SessionPriority, Vni};

    fn session(vni: i64) -> SessionPlan {
        SessionPlan {
            session_id: SessionId::new(),
            priority: SessionPriority::new(1).unwrap(),
            vni: Vni::new(vni).unwrap(),
            packet_length: PacketLength::new(96).unwrap(),
            target_ip: "10.0.0.9".parse().unwrap(),
            ingress_rules: Vec::new(),
            egress_rules: Vec::new(),
        }
    }

    #[test]
    fn an_eip_is_captured_on_its_interface_with_its_address_selected() {
        let eip = |address: &str, sessions: Vec<SessionPlan>| AddressPlan {
            eip_id: EipId::new(),
            address: address.parse().unwrap(),
            interface_name: "eth-ext".into(),
            sessions,
        };
        let state = DesiredState {
            protocol_version: 1,
            host_id: "gw-1".into(),
            generation: 3,
            content_hash: String::new(),
            interfaces: vec![InterfacePlan {
                port_id: PortId::new(),
                interface_name: "vm1".into(),
                capture_side: CaptureSide::Host,
                sessions: vec![session(1)],
            }],
            addresses: vec![
                eip("198.51.100.7", vec![session(2)]),
                eip("198.51.100.8", vec![session(3)]),
                eip("198.51.100.9", Vec::new()),
            ],
        };
        let wanted = captures(&state);
        let mut names: Vec<&String> = wanted.keys().collect();
        names.sort();
        assert_eq!(
            names,
            ["eth-ext@198.51.100.7", "eth-ext@198.51.100.8", "vm1"],
            "one capture per address, none without sessions"
        );
        let c = &wanted["eth-ext@198.51.100.7"];
        assert_eq!(c.interface_name, "eth-ext");
        assert_eq!(c.select, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(c.capture_side, CaptureSide::Guest, "received = ingress");
        assert_eq!(c.sessions[0].vni, Vni::new(2).unwrap());
        // A port's interface is captured whole, as before.
        assert_eq!(wanted["vm1"].select, None);
        assert_eq!(wanted["vm1"].capture_side, CaptureSide::Host);
    }
}
