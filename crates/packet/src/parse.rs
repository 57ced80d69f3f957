//! Hand-written, bounds-checked parsing of the part of an Ethernet frame the filters look at.
//!
//! Only what classification and hashing need is extracted: IP version, addresses, the upper-layer
//! protocol and, for TCP and UDP (and never for a non-first fragment), the two ports. Every read
//! goes through slice `get`, so a malformed or truncated frame is an `Err`, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Ethertype of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethertype of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// 802.1Q customer VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// 802.1ad service VLAN tag (the outer tag of QinQ).
pub const ETHERTYPE_QINQ: u16 = 0x88A8;
/// Pre-standard QinQ outer tag still sent by some switches.
pub const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

/// Most VLAN tags accepted in front of the IP header (802.1ad + 802.1Q).
pub const MAX_VLAN_TAGS: usize = 2;
/// Most IPv6 extension headers walked before giving up (bounds the work per packet).
pub const MAX_IPV6_EXTENSION_HEADERS: usize = 8;

/// IANA protocol numbers the parser knows.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const DESTINATION_OPTIONS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
}

/// IP version of a parsed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpVersion {
    V4,
    V6,
}

/// Why a frame has no packet to classify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// Not IPv4 or IPv6 (ARP, LLDP, more than two VLAN tags, ...). Not an error of the frame.
    NotIp,
    /// Claims to be IP but a length, version or header is inconsistent or cut short.
    Malformed,
}

/// What the filters and the flow hash look at, copied out of the frame (no borrow).
///
/// Addresses are stored as `u128`; an IPv4 address occupies the low 32 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Packet {
    pub version: IpVersion,
    pub src: u128,
    pub dst: u128,
    /// The upper-layer protocol: for IPv6, the header after the extension headers.
    pub protocol: u8,
    /// `(source, destination)` for TCP and UDP; `None` for other protocols and for every
    /// non-first fragment.
    pub ports: Option<(u16, u16)>,
    /// A fragment other than the first (offset ≠ 0): the transport header is not in it.
    pub non_first_fragment: bool,
    /// Part of a fragmented datagram: more fragments follow, or its offset is not 0 (an IPv6
    /// atomic fragment, alone, is not). Its flow is hashed without ports, as the fragments
    /// that carry none are ([`crate::flow_hash`]).
    pub fragment: bool,
}

impl Packet {
    /// The source address.
    pub fn src_ip(&self) -> IpAddr {
        to_ip(self.version, self.src)
    }

    /// The destination address.
    pub fn dst_ip(&self) -> IpAddr {
        to_ip(self.version, self.dst)
    }
}

fn to_ip(v: IpVersion, a: u128) -> IpAddr {
    match v {
        IpVersion::V4 => IpAddr::V4(Ipv4Addr::from(a as u32)),
        IpVersion::V6 => IpAddr::V6(Ipv6Addr::from(a)),
    }
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

#[inline(always)]
fn be128(b: &[u8], at: usize) -> Option<u128> {
    let s: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(u128::from_be_bytes(s))
}

/// Parses an Ethernet frame (starting at the destination MAC, no FCS needed; trailing padding
/// allowed).
#[inline]
pub fn parse(frame: &[u8]) -> Result<Packet, ParseError> {
    parse_captured(frame, frame.len())
}

/// Parses the first bytes of a frame that was `wire_len` bytes long, as a capture with a snap
/// length hands it over: lengths in the headers are checked against what the frame had on the
/// wire, and every header the filters read must lie within the captured bytes (else
/// `Malformed`). For a whole frame (`wire_len == frame.len()`) this is [`parse`].
#[inline]
pub fn parse_captured(frame: &[u8], wire_len: usize) -> Result<Packet, ParseError> {
    // Bytes of the frame that were not captured.
    let missing = wire_len.saturating_sub(frame.len());
    let eth: &[u8; 14] = frame.first_chunk().ok_or(ParseError::Malformed)?;
    let mut ethertype = u16::from_be_bytes([eth[12], eth[13]]);
    let mut off = 14;
    let mut tags = 0;
    while matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) {
        if tags == MAX_VLAN_TAGS {
            return Err(ParseError::NotIp);
        }
        ethertype = be16(frame, off + 2).ok_or(ParseError::Malformed)?;
        off += 4;
        tags += 1;
    }
    // `off <= frame.len()` holds: the last be16 read ended at `off`.
    let l3 = &frame[off..];
    match ethertype {
        ETHERTYPE_IPV4 => parse_ipv4(l3, missing).ok_or(ParseError::Malformed),
        ETHERTYPE_IPV6 => parse_ipv6(l3, missing).ok_or(ParseError::Malformed),
        _ => Err(ParseError::NotIp),
    }
}

/// `missing`: bytes of the datagram beyond `b` that were on the wire but not captured.
#[inline]
fn parse_ipv4(b: &[u8], missing: usize) -> Option<Packet> {
    let h: &[u8; 20] = b.first_chunk()?;
    if h[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if ihl < 20 || total < ihl || total > b.len() + missing || ihl > b.len() {
        return None;
    }
    let flags_offset = u16::from_be_bytes([h[6], h[7]]);
    let offset = flags_offset & 0x1fff;
    let more_fragments = flags_offset & 0x2000 != 0;
    let protocol = h[9];
    let src = u128::from(u32::from_be_bytes([h[12], h[13], h[14], h[15]]));
    let dst = u128::from(u32::from_be_bytes([h[16], h[17], h[18], h[19]]));
    let ports = if offset == 0 {
        // `ihl <= b.len()` and `ihl <= total`.
        let end = total.min(b.len());
        transport(protocol, &b[ihl..end], total - end)?
    } else {
        None
    };
    Some(Packet {
        version: IpVersion::V4,
        src,
        dst,
        protocol,
        ports,
        non_first_fragment: offset != 0,
        fragment: more_fragments || offset != 0,
    })
}

#[inline]
fn parse_ipv6(b: &[u8], missing: usize) -> Option<Packet> {
    if *b.first()? >> 4 != 6 {
        return None;
    }
    let payload = usize::from(be16(b, 4)?);
    let end = 40 + payload;
    if end > b.len() + missing {
        return None;
    }
    // What was captured of the datagram, and how much of it was not.
    let captured_end = end.min(b.len());
    let missing = end - captured_end;
    let src = be128(b, 8)?;
    let dst = be128(b, 24)?;
    let mut next = *b.get(6)?;
    let mut off = 40;
    let mut non_first_fragment = false;
    let mut fragment = false;
    let mut walked = 0;
    let b = &b[..captured_end];
    loop {
        match next {
            // RFC 8200 §4.1: Hop-by-Hop Options only directly after the fixed header
            proto::HOP_BY_HOP if walked > 0 => return None,
            proto::HOP_BY_HOP
            | proto::ROUTING
            | proto::DESTINATION_OPTIONS
            | proto::MOBILITY
            | proto::HIP
            | proto::SHIM6 => {
                let nh = *b.get(off)?;
                let len = (usize::from(*b.get(off + 1)?) + 1) * 8;
                if off + len > b.len() {
                    return None;
                }
                next = nh;
                off += len;
            }
            proto::AH => {
                let nh = *b.get(off)?;
                let len = (usize::from(*b.get(off + 1)?) + 2) * 4;
                if off + len > b.len() {
                    return None;
                }
                next = nh;
                off += len;
            }
            proto::FRAGMENT => {
                let nh = *b.get(off)?;
                let offset_flags = be16(b, off + 2)?;
                let fo = offset_flags >> 3;
                if off + 8 > b.len() {
                    return None;
                }
                next = nh;
                off += 8;
                // The M flag, or an offset: a fragment (an atomic fragment has neither).
                fragment |= offset_flags & 1 != 0 || fo != 0;
                if fo != 0 {
                    non_first_fragment = true;
                    break;
                }
            }
            _ => break,
        }
        walked += 1;
        if walked > MAX_IPV6_EXTENSION_HEADERS {
            return None;
        }
    }
    let ports = if non_first_fragment {
        None
    } else {
        // `off <= b.len()` holds after every step above.
        transport(next, &b[off..], missing)?
    };
    Some(Packet {
        version: IpVersion::V6,
        src,
        dst,
        protocol: next,
        ports,
        non_first_fragment,
        fragment,
    })
}

/// Validates the transport header of a first (or only) fragment and returns its ports.
/// Outer `None`: malformed; inner `None`: a protocol without ports. `missing`: bytes of the
/// segment beyond `l4` that were not captured.
#[inline(always)]
fn transport(protocol: u8, l4: &[u8], missing: usize) -> Option<Option<(u16, u16)>> {
    let wire = l4.len() + missing;
    match protocol {
        proto::TCP => {
            let h: &[u8; 20] = l4.first_chunk()?;
            let doff = usize::from(h[12] >> 4) * 4;
            if doff < 20 || doff > wire {
                return None;
            }
            Some(Some((
                u16::from_be_bytes([h[0], h[1]]),
                u16::from_be_bytes([h[2], h[3]]),
            )))
        }
        proto::UDP => {
            let h: &[u8; 8] = l4.first_chunk()?;
            let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
            if len < 8 || len > wire {
                return None;
            }
            Some(Some((
                u16::from_be_bytes([h[0], h[1]]),
                u16::from_be_bytes([h[2], h[3]]),
            )))
        }
        proto::ICMP | proto::ICMPV6 => {
            if wire < 8 {
                return None;
            }
            Some(None)
        }
        _ => Some(None),
    }
}
