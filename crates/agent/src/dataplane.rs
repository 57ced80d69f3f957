//! The capture-and-send data plane: one [`Pipeline`] per source interface of the desired
//! state. Applying a state starts the pipelines of new interfaces, swaps the plan of those
//! whose sessions or rules changed, stops those that are gone, and leaves the rest alone.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tmirror_model::agent::{DesiredState, InterfacePlan, RulePlan};
use tmirror_model::Direction;
use tmirror_packet::{CompiledFilter, MirrorPlan, PlanConfig, RuleSpec, SessionSpec};
use tracing::{info, warn};

use crate::capture::{AfPacket, CaptureBackend};
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

/// The data plane `tmirror agent` runs.
pub struct Mirrors {
    config: MirrorConfig,
    registry: Arc<Registry>,
    backend: Arc<dyn CaptureBackend>,
    pipelines: HashMap<String, (InterfacePlan, Pipeline)>,
}

impl Mirrors {
    pub fn new(config: MirrorConfig, registry: Arc<Registry>) -> Mirrors {
        Mirrors {
            backend: Arc::new(AfPacket { ring: config.ring }),
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

    /// Compiles an interface's sessions into the engine's plan.
    fn plan(&self, iface: &InterfacePlan) -> PipelinePlan {
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
        let mut wanted: HashMap<&str, &InterfacePlan> = HashMap::new();
        // A port without enabled sessions costs nothing: no ring, no thread.
        for iface in state.interfaces.iter().filter(|i| !i.sessions.is_empty()) {
            if wanted.insert(&iface.interface_name, iface).is_some() {
                warn!(interface = %iface.interface_name, port = %iface.port_id, "two ports name the same interface; the last one is mirrored");
            }
        }
        // Dropping a pipeline stops and joins its thread.
        self.pipelines.retain(|name, _| {
            let keep = wanted.contains_key(name.as_str());
            if !keep {
                info!(interface = %name, "stopping capture");
            }
            keep
        });
        let config = self.pipeline_config();
        for (name, iface) in wanted {
            match self.pipelines.get(name) {
                Some((current, _)) if current == iface => {}
                Some(_) => {
                    let plan = self.plan(iface);
                    let (current, pipeline) = self.pipelines.get_mut(name).expect("present");
                    pipeline.update(plan);
                    *current = iface.clone();
                }
                None => {
                    let plan = self.plan(iface);
                    let counters = self.registry.interface(name);
                    let pipeline = Pipeline::start(
                        name.to_string(),
                        plan,
                        config,
                        counters,
                        self.backend.clone(),
                    )
                    .map_err(|e| format!("cannot start the capture thread of {name}: {e}"))?;
                    self.pipelines
                        .insert(name.to_string(), (iface.clone(), pipeline));
                }
            }
        }
        let sessions: Vec<_> = state
            .interfaces
            .iter()
            .flat_map(|i| i.sessions.iter().map(|s| s.session_id))
            .collect();
        let interfaces: Vec<String> = state
            .interfaces
            .iter()
            .map(|i| i.interface_name.clone())
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
