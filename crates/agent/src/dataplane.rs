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
use crate::kernel::{lower, KernelSelector};
use crate::kernel_pipeline::{KernelPipeline, KernelSource, KernelTable};
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
    /// How frames are captured.
    pub capture: CaptureChoice,
}

/// Which capture back-end the agent uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CaptureChoice {
    /// The eBPF back-end when the kernel offers what it needs, AF_PACKET otherwise.
    #[default]
    Auto,
    /// AF_PACKET rings, one per interface.
    AfPacket,
    /// The eBPF back-end; the agent does not start without it.
    Ebpf,
}

impl CaptureChoice {
    pub const NAMES: [&'static str; 3] = ["auto", "af-packet", "ebpf"];

    pub fn name(self) -> &'static str {
        match self {
            CaptureChoice::Auto => "auto",
            CaptureChoice::AfPacket => "af-packet",
            CaptureChoice::Ebpf => "ebpf",
        }
    }
}

impl std::fmt::Display for CaptureChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for CaptureChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(CaptureChoice::Auto),
            "af-packet" => Ok(CaptureChoice::AfPacket),
            "ebpf" => Ok(CaptureChoice::Ebpf),
            _ => Err(format!(
                "unknown capture back-end {s:?}: one of {}",
                CaptureChoice::NAMES.join(", ")
            )),
        }
    }
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
            capture: CaptureChoice::default(),
        }
    }
}

/// The data plane `tmirror agent` runs.
pub struct Mirrors {
    config: MirrorConfig,
    registry: Arc<Registry>,
    backend: Arc<dyn CaptureBackend>,
    pipelines: HashMap<String, (InterfacePlan, Pipeline)>,
    /// The eBPF back-end, when chosen; interfaces whose plan it cannot take get pipelines.
    kernel: Option<KernelPipeline>,
    /// The interfaces the kernel back-end captures, with the plans handed to it.
    kernel_sources: HashMap<String, (InterfacePlan, KernelSource)>,
}

impl Mirrors {
    /// Chooses the capture back-end (reported in the log and in `/metrics`): the eBPF one
    /// when asked for or when `auto` and the kernel loads and attaches it, else AF_PACKET.
    pub fn new(config: MirrorConfig, registry: Arc<Registry>) -> Result<Mirrors, String> {
        let mut mirrors = Mirrors {
            backend: Arc::new(AfPacket { ring: config.ring }),
            config,
            registry,
            pipelines: HashMap::new(),
            kernel: None,
            kernel_sources: HashMap::new(),
        };
        if config.capture != CaptureChoice::AfPacket {
            match KernelSelector::probe()
                .and_then(|s| KernelPipeline::start(s, mirrors.pipeline_config()))
            {
                Ok(k) => mirrors.kernel = Some(k),
                Err(e) if config.capture == CaptureChoice::Ebpf => {
                    return Err(format!("the eBPF capture back-end is not available here: {e}; use --capture auto or af-packet"));
                }
                Err(e) => {
                    warn!(error = %e, "the eBPF capture back-end is not available; falling back to AF_PACKET");
                }
            }
        }
        let name = mirrors.backend_name();
        info!(backend = name, "capture back-end");
        mirrors.registry.set_backend(name);
        Ok(mirrors)
    }

    /// The capture back-end in use: `ebpf` or `af_packet`.
    pub fn backend_name(&self) -> &'static str {
        if self.kernel.is_some() {
            "ebpf"
        } else {
            self.backend.name()
        }
    }

    /// Interfaces being captured.
    pub fn running(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .pipelines
            .keys()
            .chain(self.kernel_sources.keys())
            .cloned()
            .collect();
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
            if s.target_ip.is_unspecified() {
                // A load-balanced target: this agent does not pick members yet
                // (docs/load-balancers.md, "What is left"); never silently.
                warn!(session = %s.session_id, members = s.members.len(), "load-balancer targets are not supported by this agent yet; the session mirrors nothing on this host");
                return None;
            }
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
        let mut kernel_changed = false;
        self.kernel_sources.retain(|name, (_, source)| {
            let keep = wanted.contains_key(name.as_str());
            if !keep {
                info!(interface = %name, "stopping capture");
                source.counters.set_state("stopped");
                kernel_changed = true;
            }
            keep
        });
        for (name, iface) in wanted {
            if self.kernel.is_some() {
                if matches!(self.kernel_sources.get(name), Some((current, _)) if current == iface) {
                    continue;
                }
                let plan = self.plan(iface);
                let host = iface.capture_side == tmirror_model::CaptureSide::Host;
                match lower(&plan.mirror, host, 0) {
                    Ok(_) => {
                        // Dropping a pipeline of this interface stops its AF_PACKET capture.
                        self.pipelines.remove(name);
                        let source = KernelSource {
                            interface: name.to_string(),
                            plan: Arc::new(plan),
                            counters: self.registry.interface(name),
                        };
                        self.kernel_sources
                            .insert(name.to_string(), (iface.clone(), source));
                        kernel_changed = true;
                        continue;
                    }
                    Err(e) => {
                        if self.kernel_sources.remove(name).is_some() {
                            kernel_changed = true;
                        }
                        warn!(interface = %name, reason = %e, "the plan is beyond the kernel program's limits; this interface is captured with AF_PACKET");
                    }
                }
            }
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
        if let (Some(k), true) = (&self.kernel, kernel_changed) {
            k.update(KernelTable {
                sources: self
                    .kernel_sources
                    .values()
                    .map(|(_, s)| s.clone())
                    .collect(),
            });
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
