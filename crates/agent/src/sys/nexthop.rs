//! What the senders need to write a complete outer frame to a target, asked of the kernel over
//! rtnetlink: its route lookup for the target (RTM_GETROUTE with the destination, so policy
//! rules and every routing table count, as for any packet of the host), the output device's
//! MAC address (RTM_GETLINK), and the next hop's MAC address from the neighbour table
//! (RTM_GETNEIGH), for IPv4 and IPv6 alike. The lookup carries the copies' own mark
//! ([`OWN_COPY_MARK`]), so an `ip rule fwmark` meant for them is honoured too.
//!
//! Anything not simply answered (no route, a local or non-unicast route, an unresolved
//! neighbour, a non-Ethernet device) leaves the copies to the raw-socket path, which lets the
//! kernel route them and resolve the neighbour (ARP or neighbour discovery).
//!
//! `netlink-packet-route` and `netlink-sys` (the rust-netlink project, which `rtnetlink` is
//! built on) give the message types and a plain blocking socket: the forwarder runs on capture
//! threads, not in an async runtime, and asks a few questions a second.

use std::io;
use std::net::{IpAddr, UdpSocket};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkLayerType, LinkMessage};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::ring::OWN_COPY_MARK;
use super::setsockopt;

/// How to reach one target at layer 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHop {
    pub ifindex: u32,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: IpAddr,
}

/// What the kernel's route lookup answered for a destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub kind: RouteType,
    /// Output device.
    pub ifindex: Option<u32>,
    /// The next hop when it is not the destination itself.
    pub gateway: Option<IpAddr>,
    /// The source address the kernel would give a packet to the destination.
    pub pref_src: Option<IpAddr>,
    /// The routing table the kernel names in its answer (for logs: it says `main` for
    /// some routes of other tables, local ones for instance).
    pub table: Option<u32>,
}

/// How copies to one target leave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Way {
    /// As complete frames by the AF_PACKET socket.
    Frame(NextHop),
    /// By the raw socket, with this outer source address when it is known.
    Raw(Option<IpAddr>),
    /// The next hop's resolution failed (ARP or NDP unanswered: the neighbour is `FAILED`):
    /// the kernel drops what the raw socket hands it for that hop, reporting success. The
    /// outer source address as for `Raw`.
    Unreachable(IpAddr),
}

/// What the kernel knows of a next hop's link-layer address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Neighbour {
    /// Usable: reachable, or in one of the states the kernel sends in (stale, delay, probe,
    /// permanent).
    Usable([u8; 6]),
    /// Its resolution failed: nothing answered the kernel's requests.
    Failed,
    /// Not known yet: no entry, or being resolved.
    Unknown,
}

/// A blocking rtnetlink socket for single requests (no dumps).
pub struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// Neighbour states whose link-layer address may be used: the kernel itself transmits to
/// them (a stale entry is re-confirmed by the kernel, see the forwarder's probes).
fn usable(state: NeighbourState) -> bool {
    matches!(
        state,
        NeighbourState::Reachable
            | NeighbourState::Stale
            | NeighbourState::Delay
            | NeighbourState::Probe
            | NeighbourState::Permanent
    )
}

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

impl Netlink {
    pub fn open() -> io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // The kernel answers a request before the send returns; the timeout only bounds a
        // wait for an answer that would never come.
        let tv = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        setsockopt(&socket, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        Ok(Netlink {
            socket,
            seq: 0,
            buf: vec![0; 16 << 10],
        })
    }

    /// Sends one request and returns the kernel's single answer.
    fn request(&mut self, message: RouteNetlinkMessage) -> io::Result<RouteNetlinkMessage> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket.send(&out, 0)?;
        let mut answer = None;
        // An answer is the message (if any), then the acknowledgement or an error. Bounded:
        // each receive either makes progress or times out.
        for _ in 0..16 {
            let n = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut offset = 0;
            while offset < n {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = m.header.length as usize;
                if m.header.sequence_number == self.seq {
                    match m.payload {
                        NetlinkPayload::InnerMessage(inner) => answer = Some(inner),
                        NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                        // the acknowledgement ends the exchange
                        NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => {
                            return answer.ok_or_else(|| {
                                io::Error::new(io::ErrorKind::NotFound, "no answer")
                            });
                        }
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no acknowledgement from the kernel",
        ))
    }

    /// The kernel's route lookup for a copy to `dst` (from `src` when given).
    pub fn route(&mut self, dst: IpAddr, src: Option<IpAddr>) -> io::Result<Route> {
        let mut m = RouteMessage::default();
        m.header.address_family = family(dst);
        m.header.destination_prefix_length = if dst.is_ipv4() { 32 } else { 128 };
        m.attributes.push(RouteAttribute::Destination(dst.into()));
        if let Some(src) = src.filter(|s| s.is_ipv4() == dst.is_ipv4()) {
            m.header.source_prefix_length = m.header.destination_prefix_length;
            m.attributes.push(RouteAttribute::Source(src.into()));
        }
        m.attributes.push(RouteAttribute::Mark(OWN_COPY_MARK));
        let RouteNetlinkMessage::NewRoute(r) = self.request(RouteNetlinkMessage::GetRoute(m))?
        else {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not a route"));
        };
        let mut route = Route {
            kind: r.header.kind,
            ifindex: None,
            gateway: None,
            pref_src: None,
            table: Some(u32::from(r.header.table)),
        };
        for a in &r.attributes {
            match a {
                RouteAttribute::Oif(i) => route.ifindex = Some(*i),
                RouteAttribute::Gateway(g) => route.gateway = route_ip(g),
                RouteAttribute::PrefSource(s) => route.pref_src = route_ip(s),
                RouteAttribute::Table(t) => route.table = Some(*t),
                _ => {}
            }
        }
        Ok(route)
    }

    /// The Ethernet address of device `ifindex`; `None` for a device that is not Ethernet.
    pub fn link_mac(&mut self, ifindex: u32) -> io::Result<Option<[u8; 6]>> {
        let mut m = LinkMessage::default();
        m.header.index = ifindex;
        let RouteNetlinkMessage::NewLink(l) = self.request(RouteNetlinkMessage::GetLink(m))? else {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not a link"));
        };
        if l.header.link_layer_type != LinkLayerType::Ether {
            return Ok(None);
        }
        Ok(l.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(b) => <[u8; 6]>::try_from(b.as_slice()).ok(),
            _ => None,
        }))
    }

    /// What the kernel knows of neighbour `ip` on device `ifindex`.
    pub fn neighbour(&mut self, ifindex: u32, ip: IpAddr) -> io::Result<Neighbour> {
        let mut m = NeighbourMessage::default();
        m.header.family = family(ip);
        m.header.ifindex = ifindex;
        m.attributes.push(NeighbourAttribute::Destination(match ip {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        }));
        let n = match self.request(RouteNetlinkMessage::GetNeighbour(m)) {
            Ok(RouteNetlinkMessage::NewNeighbour(n)) => n,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not a neighbour",
                ))
            }
            // no entry yet
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(Neighbour::Unknown),
            Err(e) => return Err(e),
        };
        if n.header.state == NeighbourState::Failed {
            return Ok(Neighbour::Failed);
        }
        if !usable(n.header.state) {
            return Ok(Neighbour::Unknown);
        }
        let mac = n.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::LinkLayerAddress(b) => <[u8; 6]>::try_from(b.as_slice())
                .ok()
                .filter(|m| *m != [0; 6]),
            _ => None,
        });
        Ok(mac.map_or(Neighbour::Unknown, Neighbour::Usable))
    }

    /// How copies to `target` leave now. `src`: the configured outer source address for the
    /// target's family, `None` for the kernel's choice.
    pub fn resolve(&mut self, target: IpAddr, src: Option<IpAddr>) -> Way {
        let route = match self.route(target, src) {
            Ok(r) => r,
            // No route: the raw socket will be refused too, and count the copy as dropped.
            Err(_) => return Way::Raw(src),
        };
        let src_ip = src.or(route.pref_src).or_else(|| kernel_source(target));
        let (RouteType::Unicast, Some(ifindex)) = (route.kind, route.ifindex) else {
            return Way::Raw(src_ip);
        };
        let Some(src_ip) = src_ip else {
            return Way::Raw(None);
        };
        let hop = route.gateway.unwrap_or(target);
        match (self.link_mac(ifindex), self.neighbour(ifindex, hop)) {
            (Ok(Some(src_mac)), Ok(Neighbour::Usable(dst_mac))) => Way::Frame(NextHop {
                ifindex,
                src_mac,
                dst_mac,
                src_ip,
            }),
            (_, Ok(Neighbour::Failed)) => Way::Unreachable(src_ip),
            _ => Way::Raw(Some(src_ip)),
        }
    }
}

/// The source address the kernel picks for `target`, by connecting a UDP socket (no packet is
/// sent): for a route that names no preferred source.
pub fn kernel_source(target: IpAddr) -> Option<IpAddr> {
    let any: IpAddr = match target {
        IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let s = UdpSocket::bind((any, 0)).ok()?;
    s.connect((target, 4789)).ok()?;
    Some(s.local_addr().ok()?.ip()).filter(|ip| !ip.is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    // The agent's own network namespace always has `lo`: its lookups are answered without any
    // set-up (the namespaced cases are in crates/cli/tests/e2e_ipv6.rs).

    #[test]
    fn loopback_targets_are_local_routes_and_take_the_raw_path() {
        let mut nl = Netlink::open().unwrap();
        let r = nl.route(Ipv4Addr::LOCALHOST.into(), None).unwrap();
        assert_eq!(r.kind, RouteType::Local);
        assert!(matches!(
            nl.resolve(Ipv4Addr::LOCALHOST.into(), None),
            Way::Raw(Some(_))
        ));
        // lo is no Ethernet device
        let lo = r.ifindex.unwrap();
        assert_eq!(nl.link_mac(lo).unwrap(), None);
    }

    #[test]
    fn ipv6_loopback_and_unknown_neighbours() {
        let mut nl = Netlink::open().unwrap();
        if let Ok(r) = nl.route(Ipv6Addr::LOCALHOST.into(), None) {
            assert_eq!(r.kind, RouteType::Local);
        }
        // no neighbour entry is an answer, not an error
        let lo = nl.route(Ipv4Addr::LOCALHOST.into(), None).unwrap();
        assert_eq!(
            nl.neighbour(lo.ifindex.unwrap(), Ipv4Addr::new(127, 9, 9, 9).into())
                .unwrap(),
            Neighbour::Unknown
        );
    }

    #[test]
    fn a_link_that_does_not_exist_is_an_error() {
        let mut nl = Netlink::open().unwrap();
        let e = nl.link_mac(999_999).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
    }
}
