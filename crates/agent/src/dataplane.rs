//! The capture-and-send data plane: one capture per source interface of the desired state,
//! and one per (external interface, address) of its elastic IPs. Captures go to the eBPF
//! back-end when the agent has it and the capture is a whole interface whose plan fits it;
//! the others get a [`Pipeline`] over the AF_PACKET back-end (an address's pipeline selects
//! its frames with a socket filter). Applying a state starts the captures of new sources,
//! swaps the plan of those whose sessions or rules changed, stops those that are gone, and
//! leaves the rest alone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tmirror_model::agent::{DesiredState, RulePlan, SessionPlan};
use tmirror_model::{CaptureSide, Direction, SessionId};
use tmirror_packet::{CompiledFilter, MirrorPlan, PlanConfig, RuleSpec, SessionSpec, VXLAN_PORT};
use tracing::{debug, info, warn};

use crate::capture::{AfPacket, CaptureBackend};
use crate::counters::{InterfaceCounters, Registry};
use crate::kernel::{lower, KernelSelector};
use crate::kernel_pipeline::{KernelPipeline, KernelSource, KernelTable};
use crate::pipeline::{Pipeline, PipelineConfig, PipelinePlan, SendMode, Underlay};
use crate::sync::Dataplane;
use crate::sys::ring::RingConfig;
use crate::target::{self, Balance, Destination, Destinations, Target};

/// How the data plane captures and sends.
#[derive(Clone, Copy, Debug)]
pub struct MirrorConfig {
    /// Outer source address of the copies per family; unset: the kernel's choice per target.
    pub underlay: Underlay,
    /// MTU of the path to the targets: copies are cut to `underlay_mtu - 36` bytes (IPv4
    /// targets) or `underlay_mtu - 56` (IPv6 targets).
    pub underlay_mtu: u16,
    pub ring: RingConfig,
    /// Bytes of the eBPF back-end's one ring, shared by all interfaces (a power of two).
    pub kernel_ring_bytes: usize,
    /// Interfaces the eBPF back-end captures at most; those beyond go to AF_PACKET.
    pub kernel_interfaces: u32,
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
            underlay: Underlay::default(),
            underlay_mtu: 1500,
            ring: RingConfig::default(),
            kernel_ring_bytes: crate::sys::bpf::RING_BYTES,
            kernel_interfaces: crate::sys::bpf::KERNEL_INTERFACES,
            batch: 64,
            sndbuf: 4 << 20,
            send_mode: SendMode::default(),
            capture: CaptureChoice::default(),
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
    /// Whether the eBPF back-end may capture it: its program takes whole interfaces and does
    /// not evaluate address selectors yet, so a capture of one address never goes there.
    fn kernel_may_take(&self) -> bool {
        self.select.is_none()
    }

    /// The name its pipeline and counters go by: the interface, or `interface@address`.
    fn name(&self) -> String {
        match self.select {
            Some(addr) => format!("{}@{addr}", self.interface_name),
            None => self.interface_name.clone(),
        }
    }
}

/// The captures of `state` that have enabled sessions, by name. In name order: when the
/// kernel program has room for fewer interfaces than are new, the ones it takes do not
/// depend on a hash's order from one agent, or one apply, to the next.
fn captures(state: &DesiredState) -> BTreeMap<String, Capture> {
    let mut wanted = BTreeMap::new();
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
    backend: Arc<dyn CaptureBackend>,
    pipelines: HashMap<String, (Capture, Pipeline)>,
    /// The eBPF back-end, when chosen; captures whose plan it cannot take, and those that
    /// select an address (it does not evaluate selectors yet), get pipelines.
    kernel: Option<KernelPipeline>,
    /// The interfaces the kernel back-end captures, with the plans handed to it.
    kernel_sources: HashMap<String, (Capture, KernelSource)>,
    /// Why each interface the kernel back-end could not take is captured with AF_PACKET, as
    /// last said in a warning: said again only when the reason changes.
    af_packet_reasons: HashMap<String, String>,
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
            af_packet_reasons: HashMap::new(),
        };
        if config.capture != CaptureChoice::AfPacket {
            match KernelSelector::probe(config.kernel_ring_bytes, config.kernel_interfaces)
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

    /// Compiles a capture's sessions into the engine's plan.
    fn plan(&self, iface: &Capture) -> PipelinePlan {
        let sessions = iface.sessions.iter().map(|s| {
            let counters = self.registry.session(s.session_id);
            let to = if s.target_ip.is_unspecified() {
                // A load balancer: its members, chosen per flow (its state is logged and
                // exported once per desired state, by `balance`).
                Destinations::Members(target::members(&s.members, &counters))
            } else {
                Destinations::One(Destination::new(s.target_ip, VXLAN_PORT))
            };
            let rules: Vec<RuleSpec> = rule_specs(Direction::Ingress, &s.ingress_rules)
                .chain(rule_specs(Direction::Egress, &s.egress_rules))
                .collect();
            SessionSpec {
                id: s.session_id,
                priority: s.priority,
                vni: s.vni,
                packet_length: s.packet_length,
                filter: CompiledFilter::new(&rules),
                target: Target { to, counters },
            }
        });
        let mirror = MirrorPlan::new(
            sessions,
            PlanConfig {
                underlay_mtu: self.config.underlay_mtu,
                ..PlanConfig::default()
            },
        );
        PipelinePlan::new(mirror, iface.capture_side, self.config.underlay)
    }

    /// Records each load-balanced session's state (healthy members, failing open, no member)
    /// on its counters, and logs when it changes: once per change, never per copy.
    fn balance(&self, state: &DesiredState) {
        let sessions = state
            .interfaces
            .iter()
            .flat_map(|i| &i.sessions)
            .chain(state.addresses.iter().flat_map(|a| &a.sessions));
        let mut done = HashSet::new();
        for s in sessions {
            if !done.insert(s.session_id) {
                continue;
            }
            let balance = if s.target_ip.is_unspecified() {
                Balance::of(&s.members)
            } else {
                Balance::Port
            };
            let addresses: Vec<SocketAddr> = s.members.iter().map(target::member_address).collect();
            let before = self
                .registry
                .session(s.session_id)
                .set_balance(balance, &addresses);
            log_balance(s.session_id, before, balance);
        }
    }
}

/// Says when a load-balanced session starts or stops failing open, or has no member.
fn log_balance(session: SessionId, before: Balance, now: Balance) {
    if before == now {
        return;
    }
    match now {
        Balance::Port => {}
        Balance::NoMember => {
            warn!(session = %session, "the session's load balancer has no member that may take flows; the session mirrors nothing")
        }
        Balance::FailOpen { members } => {
            warn!(session = %session, members, "no member of the session's load balancer is healthy; failing open: flows are spread over all members")
        }
        Balance::Healthy { healthy, members } => match before {
            Balance::FailOpen { .. } | Balance::NoMember => {
                info!(session = %session, healthy, members, "the session's load balancer has healthy members again; no longer failing open")
            }
            _ => {
                info!(session = %session, healthy, members, "load-balanced session: flows go to the healthy members")
            }
        },
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

/// The state of a capture whose thread has not opened it yet.
const STARTING: &str = "";
/// How long [`Mirrors::apply`] waits for the captures it starts to open (and the kernel
/// back-end to install new plans).
const OPEN_WAIT: Duration = Duration::from_secs(2);

/// Waits, at most [`OPEN_WAIT`], until every one of these captures has left its starting
/// state (capturing, or waiting for its interface): the agent reports a state applied, and
/// the control plane shows it so (the delivery view, Alibaba's `Created`), only once its
/// copies are taken — not while a capture thread is still opening its ring. Slower than that
/// (a loaded host), the state is reported anyway and the capture follows.
fn wait_until_opened(opening: &[Arc<InterfaceCounters>]) {
    let deadline = Instant::now() + OPEN_WAIT;
    while opening.iter().any(|c| c.state() == "starting") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
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
        self.af_packet_reasons
            .retain(|name, _| wanted.contains_key(name.as_str()));
        let config = self.pipeline_config();
        let mut kernel_changed = false;
        // The captures this call starts: their threads open them (or install them in the
        // kernel) after it returns, and the state is not applied until they have.
        let mut opening: Vec<Arc<InterfaceCounters>> = Vec::new();
        // Interfaces no longer captured at all: "stopped" once the kernel worker has the
        // table without them (until then it may still mark them captured).
        let mut leaving: Vec<Arc<InterfaceCounters>> = Vec::new();
        self.kernel_sources.retain(|name, (_, source)| {
            let keep = wanted.contains_key(name.as_str());
            if !keep {
                info!(interface = %name, "stopping capture");
                leaving.push(source.counters.clone());
                kernel_changed = true;
            }
            keep
        });
        // A capture thread that could not be started: the rest of the state is applied all
        // the same (the kernel's table above all), and the error returned at the end.
        let mut failed: Option<String> = None;
        for (name, capture) in wanted {
            // The kernel program captures whole interfaces: a capture that selects an address
            // (an EIP on its gateway) always goes through AF_PACKET, whose socket filter keeps
            // only that address's frames (docs/dataplane.md).
            if self.kernel.is_some() && capture.kernel_may_take() {
                if matches!(self.kernel_sources.get(&name), Some((current, _)) if *current == capture)
                {
                    continue;
                }
                let plan = self.plan(&capture);
                let host = capture.capture_side == CaptureSide::Host;
                let room = self.kernel_sources.contains_key(&name)
                    || self.kernel_sources.len() < self.config.kernel_interfaces as usize;
                let lowered = if room {
                    lower(&plan.mirror, host, 0).map_err(|e| e.to_string())
                } else {
                    Err(format!(
                        "the kernel program captures {} interfaces already \
                         (--kernel-max-interfaces)",
                        self.config.kernel_interfaces
                    ))
                };
                match lowered {
                    Ok(_) => {
                        // Dropping a pipeline of this interface stops its AF_PACKET capture.
                        self.pipelines.remove(&name);
                        self.af_packet_reasons.remove(&name);
                        let source = KernelSource {
                            interface: capture.interface_name.clone(),
                            plan: Arc::new(plan),
                            counters: self.registry.interface(&name),
                        };
                        self.kernel_sources.insert(name, (capture, source));
                        kernel_changed = true;
                        continue;
                    }
                    Err(e) => {
                        if self.kernel_sources.remove(&name).is_some() {
                            kernel_changed = true;
                        }
                        // Said when the interface goes to AF_PACKET or its reason changes,
                        // not at every apply that finds it there still.
                        if self.af_packet_reasons.get(&name) == Some(&e) {
                            debug!(interface = %name, reason = %e, "still captured with AF_PACKET");
                        } else {
                            warn!(interface = %name, reason = %e, "beyond the kernel program's limits; this interface is captured with AF_PACKET");
                            self.af_packet_reasons.insert(name.clone(), e);
                        }
                    }
                }
            }
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
                    counters.set_state(STARTING);
                    opening.push(counters.clone());
                    let started = Pipeline::start(
                        capture.interface_name.clone(),
                        capture.select,
                        plan,
                        config,
                        counters.clone(),
                        self.backend.clone(),
                    );
                    match started {
                        Ok(pipeline) => {
                            self.pipelines.insert(name, (capture, pipeline));
                        }
                        Err(e) => {
                            counters.set_state("stopped");
                            failed.get_or_insert(format!(
                                "cannot start the capture thread of {name}: {e}"
                            ));
                        }
                    }
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
            // As for AF_PACKET captures below: applied once the kernel selects by it.
            if !k.wait_installed(OPEN_WAIT) {
                warn!("the kernel back-end has not installed the new plans within 2 s; reporting the state applied anyway");
            }
        }
        for counters in leaving {
            counters.set_state("stopped");
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
        self.balance(state);
        wait_until_opened(&opening);
        if let Some(e) = failed {
            return Err(e);
        }
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
    use std::net::Ipv4Addr;
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
            members: Vec::new(),
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
        assert!(
            !c.kernel_may_take(),
            "never the whole interface in the kernel"
        );
        // A port's interface is captured whole, as before.
        assert_eq!(wanted["vm1"].select, None);
        assert!(wanted["vm1"].kernel_may_take());
        assert_eq!(wanted["vm1"].capture_side, CaptureSide::Host);
    }

    #[test]
    fn a_load_balanced_session_sends_to_its_members_and_its_state_is_recorded() {
        use tmirror_model::agent::MemberPlan;
        let registry = Arc::new(Registry::default());
        let config = MirrorConfig {
            capture: CaptureChoice::AfPacket,
            ..MirrorConfig::default()
        };
        let mirrors = Mirrors::new(config, registry.clone()).unwrap();
        let member = |last: u8, port: u16, healthy: bool| MemberPlan {
            address: IpAddr::V4(Ipv4Addr::new(192, 168, 77, last)),
            port,
            weight: 1,
            healthy,
        };
        let mut lb = session(7);
        lb.target_ip = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        lb.members = vec![member(11, 4789, true), member(12, 6081, true)];
        let mut empty = session(8);
        empty.target_ip = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let mut state = DesiredState {
            protocol_version: 1,
            host_id: "hv".into(),
            generation: 1,
            content_hash: String::new(),
            interfaces: vec![InterfacePlan {
                port_id: PortId::new(),
                interface_name: "tap1".into(),
                capture_side: CaptureSide::Host,
                sessions: vec![lb.clone(), empty.clone(), session(9)],
            }],
            addresses: Vec::new(),
        };
        let plan = mirrors.plan(&captures(&state)["tap1"]);
        let sessions = plan.mirror.sessions();
        assert_eq!(
            sessions.len(),
            3,
            "an empty load balancer keeps its session"
        );
        let Destinations::Members(m) = &sessions[0].target.to else {
            panic!("members expected")
        };
        let ends: Vec<(IpAddr, u16)> = m.iter().map(|m| (m.target.ip, m.target.port)).collect();
        assert_eq!(
            ends,
            [
                (IpAddr::V4(Ipv4Addr::new(192, 168, 77, 11)), 4789),
                (IpAddr::V4(Ipv4Addr::new(192, 168, 77, 12)), 6081)
            ]
        );
        assert!(sessions[1].target.destination(1).is_none(), "no member");
        assert!(matches!(sessions[2].target.to, Destinations::One(_)));

        mirrors.balance(&state);
        let balance = |id| registry.session(id).balance();
        assert_eq!(
            balance(lb.session_id),
            Balance::Healthy {
                healthy: 2,
                members: 2
            }
        );
        assert_eq!(balance(empty.session_id), Balance::NoMember);
        assert_eq!(
            balance(state.interfaces[0].sessions[2].session_id),
            Balance::Port
        );

        // Both unhealthy: failing open; the member dropped from the session is forgotten.
        state.interfaces[0].sessions[0].members = vec![member(11, 4789, false)];
        mirrors.balance(&state);
        assert_eq!(balance(lb.session_id), Balance::FailOpen { members: 1 });
        let known: Vec<_> = registry
            .session(lb.session_id)
            .members()
            .into_iter()
            .map(|(a, _)| a.to_string())
            .collect();
        assert_eq!(known, ["192.168.77.11:4789"]);
    }
}
