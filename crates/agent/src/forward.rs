//! Where selected copies leave: encapsulation into the outer headers of their target and
//! batched sends, through the AF_PACKET socket when the target's next hop is known, the raw
//! socket otherwise. Keyed by destination, not by session or plan: one forwarder serves any
//! number of interfaces and plans (the kernel back-end drains every interface in one thread),
//! and sessions sharing a target share its next hop.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tmirror_packet::{Mirror, OuterIpv4, OuterIpv6, OuterTemplate};
use tracing::{info, warn};

use crate::counters::{InterfaceCounters, SessionCounters};
use crate::pipeline::{PipelineConfig, PipelinePlan, SendMode, Underlay};
use crate::sys::nexthop::{self, Netlink, Way};
use crate::sys::packet_send::PacketSender;
use crate::sys::raw_send::{Batch, RawSender};
use crate::target::{Destination, Target};

/// How often the next hops of the AF_PACKET path are looked up again. Each time, one copy per
/// target goes by the raw socket, so that the kernel keeps confirming (or re-resolving) the
/// neighbour whose MAC address the other copies carry.
const RESOLVE_EVERY: Duration = Duration::from_secs(1);

/// How long an unreachable target is remembered without copies to it (a target no session
/// uses any more is not kept for good).
const FORGET_UNREACHABLE: Duration = Duration::from_secs(60);

/// The layer-2 way to one target.
struct Hop {
    template: OuterTemplate,
    ifindex: u32,
    /// The next copy takes the raw path (see [`RESOLVE_EVERY`]).
    probe: bool,
}

/// How copies to one target leave, as last looked up.
struct Dest {
    /// Complete frames by the AF_PACKET socket, when the next hop is known.
    frame: Option<Hop>,
    /// Outer headers for the raw socket (its Ethernet part unused); `None` for an IPv6 target
    /// with no source address known (the raw IPv6 socket does not fill one in, and the UDP
    /// checksum covers it): its copies are dropped and counted until there is one.
    raw: Option<OuterTemplate>,
    /// The next hop does not answer ARP or NDP: the kernel would drop the copies and tell the
    /// raw socket they were sent. They are counted as send drops, but for the first after
    /// each look-up, which goes out to make the kernel try to resolve the hop again.
    unreachable: bool,
    /// The copy that tries again is still to go (see `unreachable`).
    retry: bool,
}

/// What a batched copy is counted on once sent: its session, its load-balancer member if any,
/// its source interface, and its inner bytes.
struct Owner {
    session: Arc<SessionCounters>,
    member: Option<Arc<AtomicU64>>,
    iface: Arc<InterfaceCounters>,
    inner: usize,
}

/// One way out: a batch and who its copies belong to.
struct Lane {
    batch: Batch,
    owners: Vec<Owner>,
}

impl Lane {
    fn new(config: &PipelineConfig) -> Lane {
        Lane {
            batch: Batch::new(config.batch, config.max_frame),
            owners: Vec::with_capacity(config.batch),
        }
    }
}

/// Which lane a copy takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Frame,
    Raw4,
    Raw6,
}

/// The senders and the copies waiting in them.
pub(crate) struct Forwarder {
    raw4: RawSender,
    /// `None` when the host has no IPv6 (copies to IPv6 targets by the raw path are dropped).
    raw6: Option<RawSender>,
    packet: Option<PacketSender>,
    /// The kernel's routes and neighbours; `None` if the netlink socket cannot be opened.
    netlink: Option<Netlink>,
    /// Copies for the AF_PACKET socket (Ethernet frames), the raw IPv4 and the raw IPv6 socket
    /// (IP datagrams).
    frames: Lane,
    datagrams4: Lane,
    datagrams6: Lane,
    /// Targets whose next hop failed to resolve, not seen resolved since, with when they were
    /// last looked up: a hop the kernel is resolving again (after a copy that tries again) is
    /// still taken as unreachable. Forgotten after [`FORGET_UNREACHABLE`] without a copy.
    unreachable: HashMap<IpAddr, Instant>,
    /// Per target (address and outer UDP port: a load balancer's members may listen on other
    /// ports than 4789): how its copies leave. Emptied every [`RESOLVE_EVERY`]; a target is
    /// looked up on its first copy after that.
    dests: HashMap<(IpAddr, u16), Dest>,
    /// The configured outer source addresses the targets were resolved with.
    underlay: Underlay,
    /// Largest outer IP datagram (the underlay MTU).
    mtu: u16,
    resolved_at: Instant,
}

impl Forwarder {
    pub(crate) fn open(config: &PipelineConfig) -> io::Result<Forwarder> {
        let raw4 = RawSender::open(config.sndbuf, config.batch, false)?;
        let raw6 = match RawSender::open(config.sndbuf, config.batch, true) {
            Ok(r) => Some(r),
            Err(e) => {
                warn!(error = %e, "cannot open the raw IPv6 sender; copies to IPv6 targets take the AF_PACKET path only");
                None
            }
        };
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
        let netlink = match Netlink::open() {
            Ok(n) => Some(n),
            Err(e) => {
                warn!(error = %e, "cannot open a netlink socket; copies take the raw socket");
                None
            }
        };
        Ok(Forwarder {
            raw4,
            raw6,
            packet,
            netlink,
            unreachable: HashMap::new(),
            frames: Lane::new(config),
            datagrams4: Lane::new(config),
            datagrams6: Lane::new(config),
            dests: HashMap::new(),
            underlay: Underlay::default(),
            mtu: config
                .max_frame
                .saturating_sub(14)
                .min(usize::from(u16::MAX)) as u16,
            resolved_at: Instant::now(),
        })
    }

    /// Forgets the next hops when [`RESOLVE_EVERY`] passed or the outer source addresses of
    /// `plan` differ from the ones they were resolved for.
    pub(crate) fn tick(&mut self, plan: &PipelinePlan) {
        if self.resolved_at.elapsed() >= RESOLVE_EVERY || plan.underlay != self.underlay {
            // A socket that could not be opened (descriptors or memory short for a moment)
            // is tried again, rather than leave every copy to the raw path for good.
            if self.netlink.is_none() {
                if let Ok(n) = Netlink::open() {
                    info!("netlink socket open: copies follow the kernel's routes again");
                    self.netlink = Some(n);
                }
            }
            self.dests.clear();
            self.unreachable
                .retain(|_, seen| seen.elapsed() < FORGET_UNREACHABLE);
            self.underlay = plan.underlay;
            self.resolved_at = Instant::now();
        }
    }

    /// Looks up how copies to `ip`, UDP `port`, leave now.
    fn lookup(&mut self, ip: IpAddr, port: u16) -> Dest {
        let src = self.underlay.source_for(ip);
        let way = match &mut self.netlink {
            Some(nl) => nl.resolve(ip, src),
            None => Way::Raw(src.or_else(|| nexthop::kernel_source(ip))),
        };
        let unreachable = match &way {
            Way::Unreachable(_) => true,
            Way::Frame(_) => false,
            // Not resolved yet: unreachable still if it was (the kernel resolves it again).
            Way::Raw(_) => self.unreachable.contains_key(&ip),
        };
        if unreachable {
            if self.unreachable.insert(ip, Instant::now()).is_none() {
                warn!(target = %ip, "the next hop to a target does not answer ARP/NDP: its \
                    copies are counted as send drops (one a second still goes, to try again)");
            }
        } else if self.unreachable.remove(&ip).is_some() {
            info!(target = %ip, "the next hop to a target resolves again");
        }
        let (frame, src) = match way {
            // (A source of the other family, which no route answers, gives no template: the
            // copies go by the raw socket, which refuses and counts them.)
            Way::Frame(h) if self.packet.is_some() => (
                outer(h.src_mac, h.dst_mac, h.src_ip, ip, port).map(|t| Hop {
                    template: t.with_mtu(self.mtu),
                    ifindex: h.ifindex,
                    probe: true,
                }),
                Some(h.src_ip),
            ),
            Way::Frame(h) => (None, Some(h.src_ip)),
            Way::Raw(src) => (None, src),
            Way::Unreachable(src) => (None, Some(src)),
        };
        let raw = match (ip, src) {
            // The kernel fills in an IPv4 source left unspecified (and the outer UDP checksum
            // over IPv4 is zero, so it does not depend on it).
            (IpAddr::V4(_), None) => outer([0; 6], [0; 6], IpAddr::from([0u8; 4]), ip, port),
            (_, Some(src)) => outer([0; 6], [0; 6], src, ip, port),
            (IpAddr::V6(_), None) => None,
        };
        Dest {
            frame,
            raw: raw.map(|t| t.with_mtu(self.mtu)),
            unreachable,
            retry: true,
        }
    }

    /// Which lane the next copy to `ip`, UDP `port`, takes (looking the target up if needed);
    /// none when its next hop does not resolve and the copy is not the one that tries again.
    fn path(&mut self, ip: IpAddr, port: u16) -> Option<Path> {
        if !self.dests.contains_key(&(ip, port)) {
            let d = self.lookup(ip, port);
            self.dests.insert((ip, port), d);
        }
        let dest = self.dests.get_mut(&(ip, port)).expect("just inserted");
        if dest.unreachable && !std::mem::take(&mut dest.retry) {
            return None;
        }
        let by_frame = match &mut dest.frame {
            Some(h) => !std::mem::take(&mut h.probe),
            None => false,
        };
        Some(match by_frame {
            true => Path::Frame,
            false if ip.is_ipv6() => Path::Raw6,
            false => Path::Raw4,
        })
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
        let (ip, port) = (to.ip, to.port);
        // None: the target's next hop does not resolve (`Dest::unreachable`).
        let Some(path) = self.path(ip, port) else {
            iface.send_drops.fetch_add(1, Relaxed);
            return;
        };
        // Copies leave in the order they were captured, also across the paths.
        let others_waiting = [
            (Path::Frame, &self.frames),
            (Path::Raw4, &self.datagrams4),
            (Path::Raw6, &self.datagrams6),
        ]
        .iter()
        .any(|(p, l)| *p != path && !l.batch.is_empty());
        if others_waiting {
            self.flush();
        }
        let dest = &self.dests[&(ip, port)];
        let (lane, template) = match path {
            Path::Frame => (&mut self.frames, dest.frame.as_ref().map(|h| &h.template)),
            Path::Raw4 => (&mut self.datagrams4, dest.raw.as_ref()),
            Path::Raw6 => (&mut self.datagrams6, dest.raw.as_ref()),
        };
        let Some(template) = template else {
            iface.send_drops.fetch_add(1, Relaxed);
            return;
        };
        match m.encapsulate_frame(template, data, lane.batch.slot()) {
            Ok(n) => {
                let tag = lane.owners.len() as u32;
                lane.owners.push(Owner {
                    session: m.session.target.counters.clone(),
                    member: to.sent.clone(),
                    iface: iface.clone(),
                    inner: n - template.overhead(),
                });
                match (path, &dest.frame) {
                    (Path::Frame, Some(h)) => lane.batch.commit_frame(n, h.ifindex, tag),
                    // The raw socket takes the IP datagram; the kernel adds Ethernet.
                    _ => lane.batch.commit(14, n - 14, ip, tag),
                }
            }
            Err(_) => {
                iface.send_drops.fetch_add(1, Relaxed);
            }
        }
        if lane.batch.is_full() {
            self.flush();
        }
    }

    /// Sends what is batched and counts each copy on its session, or as a send drop.
    pub(crate) fn flush(&mut self) {
        if !self.frames.batch.is_empty() {
            if let Some(p) = &mut self.packet {
                p.send(&mut self.frames.batch);
            }
            count(&mut self.frames);
        }
        if !self.datagrams4.batch.is_empty() {
            self.raw4.send(&mut self.datagrams4.batch);
            count(&mut self.datagrams4);
        }
        if !self.datagrams6.batch.is_empty() {
            if let Some(r) = &mut self.raw6 {
                r.send(&mut self.datagrams6.batch);
            }
            count(&mut self.datagrams6);
        }
    }
}

/// Outer headers from `src` to `dst`, UDP destination `port`, IPv4 or IPv6 by their family
/// (`None` if they differ).
fn outer(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    port: u16,
) -> Option<OuterTemplate> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut o = OuterIpv4::new(src_mac, dst_mac, s, d);
            o.dst_port = port;
            Some(o.template())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut o = OuterIpv6::new(src_mac, dst_mac, s, d);
            o.dst_port = port;
            Some(o.template())
        }
        _ => None,
    }
}

/// Counts each copy of the lane's batch on its session, or as a send drop (a batch a sender
/// could not take, having none, counts as dropped: `sent` stays empty), and empties the lane.
fn count(lane: &mut Lane) {
    let mut sent = lane.batch.entries().map(|(_, _, s)| s);
    for o in lane.owners.drain(..) {
        if sent.next().unwrap_or(false) {
            o.session.packets.fetch_add(1, Relaxed);
            o.session.bytes.fetch_add(o.inner as u64, Relaxed);
            if let Some(member) = &o.member {
                member.fetch_add(1, Relaxed);
            }
            o.iface.mirrored.fetch_add(1, Relaxed);
        } else {
            o.iface.send_drops.fetch_add(1, Relaxed);
        }
    }
    drop(sent);
    lane.batch.clear();
}
