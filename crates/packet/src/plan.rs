//! The mirror plan of one source interface: its enabled sessions in ascending session
//! priority, each with a compiled filter, and the decision which one (if any) mirrors a frame.

use tmirror_model::{Direction, PacketLength, SessionId, SessionPriority, Vni};

use crate::classify::Classifier;
use crate::filter::CompiledFilter;
use crate::parse::{parse_captured, Packet, ParseError};
use crate::vxlan::{encapsulate_payload, flow_hash, source_port, EncapError, OuterTemplate};

/// One enabled session of the source, as the caller hands it to [`MirrorPlan::new`].
/// `T` is the caller's opaque target (an index into its sender table, an address, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSpec<T> {
    pub id: SessionId,
    pub priority: SessionPriority,
    pub vni: Vni,
    pub packet_length: PacketLength,
    pub filter: CompiledFilter,
    pub target: T,
}

impl<T> SessionSpec<T> {
    /// The data-plane view of a model session and its filter. The caller checks that the
    /// session is enabled and that `filter` is the session's filter.
    pub fn from_session(
        session: &tmirror_model::Session,
        filter: &tmirror_model::FilterWithRules,
        target: T,
    ) -> Self {
        SessionSpec {
            id: session.id,
            priority: session.priority,
            vni: session.vni,
            packet_length: session.packet_length,
            filter: CompiledFilter::from_filter(filter),
            target,
        }
    }
}

/// Plan-wide settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanConfig {
    /// MTU of the underlay path to the targets. The outer IPv4 datagram is 36 bytes plus the
    /// inner frame, so copies are clamped to `underlay_mtu - 36` bytes (1464 for 1500): a copy
    /// is shortened, never fragmented and never dropped for size. Values below
    /// [`MIN_UNDERLAY_MTU`] are raised to it.
    pub underlay_mtu: u16,
    /// How rules are evaluated; [`Evaluation::Auto`] picks by rule count.
    pub evaluation: Evaluation,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            underlay_mtu: 1500,
            evaluation: Evaluation::Auto,
        }
    }
}

/// Rule evaluation strategy (both give identical decisions; the differential test checks it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evaluation {
    /// Linear first-match scan of each session's rules in priority order.
    Linear,
    /// Per-field interval lookups combined as rule bit sets: cost grows with the logarithm of
    /// the number of distinct field values, not with the number of rules.
    Bitset,
    /// Per direction, whichever a cost model fitted to this machine's measurements predicts
    /// cheaper: the scan for few or mostly distinct rules (the clouds' quotas keep most plans
    /// there), bit sets for many rules or many rules sharing one address pair.
    Auto,
}

/// Smallest underlay MTU honoured (IPv4's minimum, RFC 791); smaller values are raised to it,
/// so a copy always keeps at least 32 bytes.
pub const MIN_UNDERLAY_MTU: u16 = 68;

/// Outer IPv4 + UDP + VXLAN bytes counted against the underlay MTU. An IPv6 target's copies
/// lose 20 bytes more ([`OuterTemplate::with_mtu`]): only the sender knows a copy's family.
pub const MTU_OVERHEAD: usize = 36;

/// What happens to one frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'a, T> {
    /// Mirrored by exactly this session.
    Mirror(Mirror<'a, T>),
    /// An IP packet no session accepted.
    NotMirrored,
    /// Not IPv4/IPv6 (ARP, LLDP, ...): never mirrored.
    NotIp,
    /// Claims to be IP but is malformed: never mirrored.
    Malformed,
}

impl<T> Clone for Verdict<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Verdict<'_, T> {}

impl<'a, T> Verdict<'a, T> {
    /// The mirror decision, if any.
    pub fn mirror(self) -> Option<Mirror<'a, T>> {
        match self {
            Verdict::Mirror(m) => Some(m),
            _ => None,
        }
    }
}

/// A positive decision: which session mirrors the frame, and how much of it.
#[derive(Debug, PartialEq, Eq)]
pub struct Mirror<'a, T> {
    /// Index of the session in [`MirrorPlan::sessions`] (and in [`Counters::mirrored`]).
    pub index: usize,
    pub session: &'a SessionSpec<T>,
    /// The parsed packet.
    pub packet: Packet,
    /// Bytes of the inner frame to copy: `min(frame length, packet_length, MTU limit)`.
    pub copy_len: usize,
    /// Whether the MTU limit, not `packet_length` or the frame, set `copy_len`.
    pub clamped: bool,
    /// [`flow_hash`] of the packet (pick a load-balancer member with it).
    pub flow_hash: u32,
}

impl<T> Clone for Mirror<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Mirror<'_, T> {}

impl<T> Mirror<'_, T> {
    /// The outer UDP source port (49152–65535) for this flow.
    #[inline]
    pub fn source_port(&self) -> u16 {
        source_port(self.flow_hash)
    }

    /// The truncated inner frame (`frame` must be the frame that was decided).
    #[inline]
    pub fn inner<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        &frame[..self.copy_len.min(frame.len())]
    }

    /// Writes the VXLAN payload (header + truncated frame) for a UDP socket into `out`.
    #[inline]
    pub fn encapsulate_payload(&self, frame: &[u8], out: &mut [u8]) -> Result<usize, EncapError> {
        encapsulate_payload(self.session.vni, self.inner(frame), out)
    }

    /// Writes the complete outer Ethernet/IP/UDP/VXLAN frame for a raw sender into `out`: the
    /// flow's UDP source port, and for an IPv6 header its flow label.
    #[inline]
    pub fn encapsulate_frame(
        &self,
        outer: &OuterTemplate,
        frame: &[u8],
        out: &mut [u8],
    ) -> Result<usize, EncapError> {
        outer.encapsulate_flow(self.flow_hash, self.session.vni, self.inner(frame), out)
    }
}

/// Bytes of a frame a capture keeps at least, whatever the sessions copy: room for Ethernet,
/// two VLAN tags, IPv6 with extension headers and the transport header.
pub const SNAP_HEADROOM: usize = 256;

/// The compiled plan of one source interface. Immutable and `Sync`: share it between capture
/// threads and rebuild it when the configuration changes.
#[derive(Clone, Debug)]
pub struct MirrorPlan<T> {
    sessions: Vec<SessionSpec<T>>,
    max_copy: usize,
    classifier: Classifier,
}

impl<T> MirrorPlan<T> {
    /// Builds the plan from the source's enabled sessions (any order; they are sorted by
    /// ascending session priority, ties keeping input order).
    pub fn new(sessions: impl IntoIterator<Item = SessionSpec<T>>, config: PlanConfig) -> Self {
        let mut sessions: Vec<SessionSpec<T>> = sessions.into_iter().collect();
        sessions.sort_by_key(|s| s.priority);
        let mtu = config.underlay_mtu.max(MIN_UNDERLAY_MTU);
        let max_copy = usize::from(mtu) - MTU_OVERHEAD;
        let filters: Vec<&CompiledFilter> = sessions.iter().map(|s| &s.filter).collect();
        let classifier = Classifier::new(&filters, config.evaluation);
        MirrorPlan {
            sessions,
            max_copy,
            classifier,
        }
    }

    /// The sessions in evaluation order.
    pub fn sessions(&self) -> &[SessionSpec<T>] {
        &self.sessions
    }

    /// Whether `direction` is evaluated with bit sets (otherwise a linear scan).
    pub fn uses_bitsets(&self, direction: Direction) -> bool {
        self.classifier.is_bitset(direction)
    }

    /// The largest copy the MTU allows.
    pub fn max_copy_len(&self) -> usize {
        self.max_copy
    }

    /// How many bytes of each frame a capture must keep so that every decision and every copy
    /// is the same as with whole frames: the longest copy any session makes, and at least
    /// [`SNAP_HEADROOM`] for the headers the filters read (VLAN tags, IPv6 extension headers).
    pub fn snap_len(&self) -> usize {
        self.sessions
            .iter()
            .map(|s| usize::from(s.packet_length.get()).min(self.max_copy))
            .max()
            .unwrap_or(0)
            .max(SNAP_HEADROOM)
    }

    /// Index of the session that mirrors an already parsed packet: the first in priority
    /// order whose filter accepts it (a reject or no match moves on to the next session).
    #[inline]
    pub fn decide_packet(&self, packet: &Packet, direction: Direction) -> Option<usize> {
        self.classifier.decide(packet, direction)
    }

    /// Parses `frame` (as captured, Ethernet first) and decides its fate.
    #[inline]
    pub fn decide(&self, frame: &[u8], direction: Direction) -> Verdict<'_, T> {
        self.decide_captured(frame, frame.len(), direction)
    }

    /// [`decide`](Self::decide) for the first bytes of a frame that was `wire_len` bytes long
    /// (a capture with a snap length, see [`parse_captured`](crate::parse_captured)). The copy
    /// is `min(wire_len, packet_length, MTU limit)` bytes, and never more than was captured:
    /// capture at least [`snap_len`](Self::snap_len) bytes for copies as long as the frame's.
    #[inline]
    pub fn decide_captured(
        &self,
        frame: &[u8],
        wire_len: usize,
        direction: Direction,
    ) -> Verdict<'_, T> {
        let wire_len = wire_len.max(frame.len());
        let packet = match parse_captured(frame, wire_len) {
            Ok(p) => p,
            Err(ParseError::NotIp) => return Verdict::NotIp,
            Err(ParseError::Malformed) => return Verdict::Malformed,
        };
        match self.decide_packet(&packet, direction) {
            None => Verdict::NotMirrored,
            Some(index) => {
                let session = &self.sessions[index];
                let wanted = wire_len.min(usize::from(session.packet_length.get()));
                let copy_len = wanted.min(self.max_copy).min(frame.len());
                Verdict::Mirror(Mirror {
                    index,
                    session,
                    packet,
                    copy_len,
                    clamped: copy_len < wanted,
                    flow_hash: flow_hash(&packet),
                })
            }
        }
    }

    /// [`decide`](Self::decide) and count the outcome.
    #[inline]
    pub fn decide_counted(
        &self,
        frame: &[u8],
        direction: Direction,
        counters: &mut Counters,
    ) -> Verdict<'_, T> {
        let v = self.decide(frame, direction);
        counters.record(&v);
        v
    }
}

/// Counters of one capture thread, for the agent to export. Plain integers, no atomics: each
/// thread owns its own and the agent sums them.
///
/// `frames_seen == mirrored().sum() + not_mirrored + non_ip + unparseable`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub frames_seen: u64,
    /// IP packets no session accepted.
    pub not_mirrored: u64,
    /// Frames that are not IP (ARP, LLDP, ...).
    pub non_ip: u64,
    /// Frames that claim to be IP but are malformed.
    pub unparseable: u64,
    /// Copies shortened to fit the underlay MTU (also counted in `mirrored`).
    pub clamped: u64,
    mirrored: Vec<u64>,
    mirrored_bytes: Vec<u64>,
}

impl Counters {
    /// Counters for a plan (one slot per session).
    pub fn for_plan<T>(plan: &MirrorPlan<T>) -> Self {
        Counters::with_sessions(plan.sessions().len())
    }

    /// Counters with `n` session slots.
    pub fn with_sessions(n: usize) -> Self {
        Counters {
            mirrored: vec![0; n],
            mirrored_bytes: vec![0; n],
            ..Counters::default()
        }
    }

    /// Copies per session, in [`MirrorPlan::sessions`] order.
    pub fn mirrored(&self) -> &[u64] {
        &self.mirrored
    }

    /// Inner-frame bytes copied per session (after truncation), in session order.
    pub fn mirrored_bytes(&self) -> &[u64] {
        &self.mirrored_bytes
    }

    /// Counts one verdict.
    #[inline]
    pub fn record<T>(&mut self, v: &Verdict<'_, T>) {
        self.frames_seen += 1;
        match v {
            Verdict::Mirror(m) => {
                if let Some(c) = self.mirrored.get_mut(m.index) {
                    *c += 1;
                }
                if let Some(c) = self.mirrored_bytes.get_mut(m.index) {
                    *c += m.copy_len as u64;
                }
                self.clamped += u64::from(m.clamped);
            }
            Verdict::NotMirrored => self.not_mirrored += 1,
            Verdict::NotIp => self.non_ip += 1,
            Verdict::Malformed => self.unparseable += 1,
        }
    }
}
