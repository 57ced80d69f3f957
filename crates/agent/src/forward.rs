//! Where selected copies leave: encapsulation into the outer headers of their target and
//! batched sends, through the AF_PACKET socket when the target's next hop is known, the raw
//! socket otherwise. Keyed by destination, not by session or plan: one forwarder serves any
//! number of interfaces and plans (the kernel back-end drains every interface in one thread),
//! and sessions sharing a target share its next hop.

use std::collections::HashMap;
use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tmirror_packet::{Mirror, OuterIpv4, OuterTemplate, OUTER_IPV4_OVERHEAD};
use tracing::warn;

use crate::counters::{InterfaceCounters, SessionCounters};
use crate::pipeline::{PipelineConfig, PipelinePlan, SendMode};
use crate::sys::nexthop;
use crate::sys::packet_send::PacketSender;
use crate::sys::raw_send::{Batch, RawSender};
use crate::target::{Destination, Target};

/// How often the next hops of the AF_PACKET path are looked up again. Each time, one copy per
/// target goes by the raw socket, so that the kernel keeps confirming (or re-resolving) the
/// neighbour whose MAC address the other copies carry.
const RESOLVE_EVERY: Duration = Duration::from_secs(1);

/// The layer-2 way to one target.
struct Hop {
    template: OuterTemplate,
    ifindex: u32,
    /// The next copy takes the raw path (see [`RESOLVE_EVERY`]).
    probe: bool,
}

/// What a batched copy is counted on once sent: its session, its load-balancer member if
/// any, its source interface.
type Owner = (
    Arc<SessionCounters>,
    Option<Arc<AtomicU64>>,
    Arc<InterfaceCounters>,
);

/// The senders and the copies waiting in them.
pub(crate) struct Forwarder {
    raw: RawSender,
    /// Copies for the raw socket: IPv4 datagrams.
    datagrams: Batch,
    datagram_owners: Vec<Owner>,
    packet: Option<PacketSender>,
    /// Copies for the AF_PACKET socket: Ethernet frames.
    frames: Batch,
    frame_owners: Vec<Owner>,
    /// Per target (address and outer UDP port): its layer-2 way, `None` while not
    /// resolvable. Emptied every [`RESOLVE_EVERY`]; a target is looked up on its first copy
    /// after that.
    hops: HashMap<(Ipv4Addr, u16), Option<Hop>>,
    /// The configured outer source address (unspecified: the kernel's choice).
    underlay_ip: Ipv4Addr,
    resolved_at: Instant,
}

impl Forwarder {
    pub(crate) fn open(config: &PipelineConfig) -> io::Result<Forwarder> {
        let raw = RawSender::open(config.sndbuf, config.batch)?;
        let bypass = match config.send_mode {
            SendMode::Raw => None,
            SendMode::Packet => Some(false),
            SendMode::PacketBypass => Some(true),
        };
        let packet = match bypass.map(|b| PacketSender::open(config.sndbuf, config.batch, b)) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                warn!(error = %e, "cannot open the AF_PACKET sender; copies take the raw socket");
                None
            }
        };
        Ok(Forwarder {
            raw,
            datagrams: Batch::new(config.batch, config.max_frame),
            datagram_owners: Vec::with_capacity(config.batch),
            packet,
            frames: Batch::new(config.batch, config.max_frame),
            frame_owners: Vec::with_capacity(config.batch),
            hops: HashMap::new(),
            underlay_ip: Ipv4Addr::UNSPECIFIED,
            resolved_at: Instant::now(),
        })
    }

    /// Forgets the next hops when [`RESOLVE_EVERY`] passed or the outer source address of
    /// `plan` differs from the one they were resolved for.
    pub(crate) fn tick(&mut self, plan: &PipelinePlan) {
        if self.resolved_at.elapsed() >= RESOLVE_EVERY || plan.underlay_ip != self.underlay_ip {
            self.hops.clear();
            self.underlay_ip = plan.underlay_ip;
            self.resolved_at = Instant::now();
        }
    }

    /// Whether the next copy to `ip`, UDP `port`, goes as a frame through the AF_PACKET
    /// socket.
    fn by_frame(&mut self, ip: Ipv4Addr, port: u16) -> bool {
        if self.packet.is_none() {
            return false;
        }
        let src = Some(self.underlay_ip).filter(|ip| !ip.is_unspecified());
        let hop = self.hops.entry((ip, port)).or_insert_with(|| {
            nexthop::resolve(ip, src).map(|h| {
                let mut outer = OuterIpv4::new(h.src_mac, h.dst_mac, h.src_ip, ip);
                outer.dst_port = port;
                Hop {
                    template: outer.template(),
                    ifindex: h.ifindex,
                    probe: true,
                }
            })
        });
        match hop {
            Some(h) => !std::mem::take(&mut h.probe),
            None => false,
        }
    }

    /// Encapsulates the copy `m` decided of `data` (the frame as on the wire) for `to` (its
    /// session's destination for the copy's flow) and batches it; it is counted on its
    /// session, its member and on `iface` once sent.
    pub(crate) fn forward(
        &mut self,
        to: &Destination,
        m: &Mirror<'_, Target>,
        data: &[u8],
        iface: &Arc<InterfaceCounters>,
    ) {
        let ip = to.ip;
        let l2 = self.by_frame(ip, to.port);
        // Copies leave in the order they were captured, also across the two paths.
        let other = if l2 { &self.datagrams } else { &self.frames };
        if !other.is_empty() {
            self.flush();
        }
        let hop = if l2 {
            self.hops.get(&(ip, to.port)).and_then(Option::as_ref)
        } else {
            None
        };
        let (batch, owners, template) = match hop {
            Some(h) => (&mut self.frames, &mut self.frame_owners, &h.template),
            None => (&mut self.datagrams, &mut self.datagram_owners, &to.outer),
        };
        match m.encapsulate_frame(template, data, batch.slot()) {
            Ok(n) => {
                debug_assert!(n >= OUTER_IPV4_OVERHEAD);
                let tag = owners.len() as u32;
                owners.push((
                    m.session.target.counters.clone(),
                    to.sent.clone(),
                    iface.clone(),
                ));
                match hop {
                    Some(h) => batch.commit_frame(n, h.ifindex, tag),
                    // The raw socket takes the IPv4 datagram; the kernel adds Ethernet.
                    None => batch.commit(14, n - 14, ip, tag),
                }
            }
            Err(_) => {
                iface.send_drops.fetch_add(1, Relaxed);
            }
        }
        if batch.is_full() {
            self.flush();
        }
    }

    /// Sends what is batched and counts each copy on its session, or as a send drop.
    pub(crate) fn flush(&mut self) {
        if !self.frames.is_empty() {
            if let Some(p) = &mut self.packet {
                p.send(&mut self.frames);
            }
            count(&mut self.frames, &mut self.frame_owners);
        }
        if !self.datagrams.is_empty() {
            self.raw.send(&mut self.datagrams);
            count(&mut self.datagrams, &mut self.datagram_owners);
        }
    }
}

fn count(batch: &mut Batch, owners: &mut Vec<Owner>) {
    for (tag, len, sent) in batch.entries() {
        let (session, member, iface) = &owners[tag as usize];
        if sent {
            session.packets.fetch_add(1, Relaxed);
            if let Some(m) = member {
                m.fetch_add(1, Relaxed);
            }
            session
                .bytes
                .fetch_add((len - (OUTER_IPV4_OVERHEAD - 14)) as u64, Relaxed);
            iface.mirrored.fetch_add(1, Relaxed);
        } else {
            iface.send_drops.fetch_add(1, Relaxed);
        }
    }
    batch.clear();
    owners.clear();
}
