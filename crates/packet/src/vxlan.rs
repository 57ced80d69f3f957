//! VXLAN (RFC 7348) encapsulation into caller-provided buffers, the direction-symmetric flow
//! hash that picks the outer UDP source port, and validating decapsulation for the collector.

use std::net::{Ipv4Addr, Ipv6Addr};

use tmirror_model::Vni;

use crate::parse::{IpVersion, Packet, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// IANA-assigned VXLAN UDP port.
pub const VXLAN_PORT: u16 = 4789;
/// Length of the VXLAN header.
pub const VXLAN_HEADER_LEN: usize = 8;
/// Outer Ethernet (14) + IPv4 (20) + UDP (8) + VXLAN (8).
pub const OUTER_IPV4_OVERHEAD: usize = 50;
/// The VXLAN "I" flag: the VNI is valid.
pub const VXLAN_FLAG_I: u8 = 0x08;
/// First outer UDP source port (RFC 7348: 49152–65535).
pub const SOURCE_PORT_MIN: u16 = 49152;

/// A buffer too small, or a copy too large for one IPv4 datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncapError {
    /// The output buffer needs at least this many bytes.
    BufferTooSmall { needed: usize },
    /// The outer IP datagram (IPv6: its payload) would exceed 65535 bytes.
    TooLarge,
}

impl std::fmt::Display for EncapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncapError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
            EncapError::TooLarge => write!(f, "encapsulated copy exceeds an IP datagram"),
        }
    }
}

impl std::error::Error for EncapError {}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

#[inline(always)]
fn mix(h: u64, w: u64) -> u64 {
    let h = (h ^ w).wrapping_mul(K1);
    h ^ (h >> 29)
}

/// A direction-symmetric hash of the packet's flow: the two endpoints `(address, port)` are
/// put in canonical (ascending) order before hashing, so A→B and B→A give the same value.
/// TCP and UDP packets with ports hash protocol + both endpoints (5-tuple); everything else,
/// including every fragment of a fragmented datagram (the first, which has ports, with the
/// others, which have none), hashes protocol + both addresses (3-tuple): a datagram's
/// fragments go to the same load-balancer member, which can reassemble them.
///
/// The function is fixed (no random seed): every agent computes the same value for a flow,
/// which is what load-balanced targets need.
#[inline]
pub fn flow_hash(p: &Packet) -> u32 {
    let (sp, dp) = match p.ports {
        Some(ports) if !p.fragment => ports,
        _ => (0, 0),
    };
    let (a, ap, b, bp) = if (p.src, sp) <= (p.dst, dp) {
        (p.src, sp, p.dst, dp)
    } else {
        (p.dst, dp, p.src, sp)
    };
    let v = match p.version {
        IpVersion::V4 => 4u64,
        IpVersion::V6 => 6u64,
    };
    let mut h = K2 ^ (v << 8) ^ u64::from(p.protocol);
    h = mix(h, (a >> 64) as u64);
    h = mix(h, a as u64);
    h = mix(h, (b >> 64) as u64);
    h = mix(h, b as u64);
    h = mix(h, (u64::from(ap) << 16) | u64::from(bp));
    // murmur3 finaliser
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^= h >> 33;
    h as u32
}

/// The outer UDP source port for a flow hash: 49152 + hash mod 16384.
#[inline(always)]
pub fn source_port(hash: u32) -> u16 {
    SOURCE_PORT_MIN | (hash as u16 & 0x3FFF)
}

/// Writes the 8-byte VXLAN header: flags 0x08, 24 reserved bits, VNI, 8 reserved bits.
#[inline(always)]
pub fn write_vxlan_header(vni: Vni, out: &mut [u8; VXLAN_HEADER_LEN]) {
    let v = vni.get().to_be_bytes();
    *out = [VXLAN_FLAG_I, 0, 0, 0, v[1], v[2], v[3], 0];
}

/// Writes the VXLAN payload a UDP socket sends: the header followed by `inner` (already
/// truncated). Returns the number of bytes written.
#[inline]
pub fn encapsulate_payload(vni: Vni, inner: &[u8], out: &mut [u8]) -> Result<usize, EncapError> {
    let n = VXLAN_HEADER_LEN + inner.len();
    let Some(out) = out.get_mut(..n) else {
        return Err(EncapError::BufferTooSmall { needed: n });
    };
    let (hdr, rest) = out.split_at_mut(VXLAN_HEADER_LEN);
    write_vxlan_header(vni, hdr.try_into().expect("8 bytes"));
    rest.copy_from_slice(inner);
    Ok(n)
}

/// Adds 16-bit big-endian words of `b` (odd tail padded with zero) to `sum`, the one's
/// complement way. Reads four bytes at a time into a 64-bit accumulator (2^32 ≡ 2^16 ≡ 1
/// modulo 0xffff, so 32-bit words add as their two halves would) and folds once at the end:
/// the IPv6 outer header's mandatory UDP checksum passes over every copy. The result is
/// at most 0x1fffe, leaving room for the caller's further additions.
#[inline]
pub fn checksum_add(sum: u32, b: &[u8]) -> u32 {
    let mut acc = u64::from(sum);
    let mut words = b.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let mut rest = words.remainder();
    if let [a, b, tail @ ..] = rest {
        acc += u64::from(u16::from_be_bytes([*a, *b]));
        rest = tail;
    }
    if let [last] = rest {
        acc += u64::from(*last) << 8;
    }
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u32
}

/// Folds a one's-complement sum and complements it.
#[inline]
pub fn checksum_finish(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The fixed outer headers of a raw sender: Ethernet, IPv4 (no options, DF set, identification
/// 0, as RFC 6864 allows for atomic datagrams), UDP to `dst_port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OuterIpv4 {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    /// UDP destination port, 4789 by default.
    pub dst_port: u16,
    pub ttl: u8,
    /// DSCP/ECN byte of the outer IPv4 header.
    pub tos: u8,
    /// Compute the outer UDP checksum. Off by default: RFC 7348 says it SHOULD be sent as zero
    /// over IPv4, and it costs a pass over the whole copy.
    pub udp_checksum: bool,
}

impl OuterIpv4 {
    /// Defaults: destination port 4789, TTL 64, TOS 0, UDP checksum 0.
    pub fn new(src_mac: [u8; 6], dst_mac: [u8; 6], src_ip: Ipv4Addr, dst_ip: Ipv4Addr) -> Self {
        OuterIpv4 {
            src_mac,
            dst_mac,
            src_ip,
            dst_ip,
            dst_port: VXLAN_PORT,
            ttl: 64,
            tos: 0,
            udp_checksum: false,
        }
    }

    /// Precomputes the constant bytes and checksum parts.
    pub fn template(&self) -> OuterTemplate {
        let mut h = [0u8; MAX_OUTER_HEADERS];
        h[0..6].copy_from_slice(&self.dst_mac);
        h[6..12].copy_from_slice(&self.src_mac);
        h[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let ip = &mut h[14..34];
        ip[0] = 0x45;
        ip[1] = self.tos;
        // 2..4 total length, per packet
        // 4..6 identification 0
        ip[6] = 0x40; // DF
        ip[8] = self.ttl;
        ip[9] = crate::parse::proto::UDP;
        // 10..12 checksum, per packet
        ip[12..16].copy_from_slice(&self.src_ip.octets());
        ip[16..20].copy_from_slice(&self.dst_ip.octets());
        let ip_sum = checksum_add(0, ip);
        let udp = &mut h[34..42];
        // 0..2 source port, per packet
        udp[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        let pseudo = udp_pseudo_sum(&self.src_ip.octets(), &self.dst_ip.octets(), self.dst_port);
        OuterTemplate {
            bytes: h,
            ipv6: false,
            ip_sum,
            pseudo_sum: pseudo,
            udp_checksum: self.udp_checksum,
            max_inner: usize::MAX,
        }
    }
}

/// The constant part of an outer UDP checksum: the pseudo header's addresses and protocol
/// (RFC 768 for IPv4, RFC 8200 8.1 for IPv6 — the same sum, over 4- or 16-byte addresses)
/// and the UDP header's destination port. The UDP length (in the pseudo header and the UDP
/// header), the source port and the payload are added per packet.
fn udp_pseudo_sum(src_ip: &[u8], dst_ip: &[u8], dst_port: u16) -> u32 {
    let addresses = checksum_add(checksum_add(0, src_ip), dst_ip);
    addresses + u32::from(crate::parse::proto::UDP) + u32::from(dst_port)
}

/// Outer Ethernet (14) + IPv6 (40) + UDP (8) + VXLAN (8).
pub const OUTER_IPV6_OVERHEAD: usize = 70;
/// The largest outer headers before the VXLAN header (Ethernet + IPv6 + UDP).
const MAX_OUTER_HEADERS: usize = OUTER_IPV6_OVERHEAD - VXLAN_HEADER_LEN;

/// The fixed outer headers of a raw sender to an IPv6 target: Ethernet, IPv6 (no extension
/// headers, next header UDP), UDP to `dst_port`. The UDP checksum is always computed: RFC
/// 8200 makes it mandatory over IPv6, and the zero-checksum exception of RFC 6935/6936 needs
/// the receiver to opt in per tunnel, which a collector of copies cannot be assumed to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OuterIpv6 {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: Ipv6Addr,
    pub dst_ip: Ipv6Addr,
    /// UDP destination port, 4789 by default.
    pub dst_port: u16,
    pub hop_limit: u8,
    /// Traffic class (DSCP/ECN) of the outer IPv6 header.
    pub traffic_class: u8,
}

impl OuterIpv6 {
    /// Defaults: destination port 4789, hop limit 64, traffic class 0.
    pub fn new(src_mac: [u8; 6], dst_mac: [u8; 6], src_ip: Ipv6Addr, dst_ip: Ipv6Addr) -> Self {
        OuterIpv6 {
            src_mac,
            dst_mac,
            src_ip,
            dst_ip,
            dst_port: VXLAN_PORT,
            hop_limit: 64,
            traffic_class: 0,
        }
    }

    /// Precomputes the constant bytes and the constant part of the UDP checksum.
    pub fn template(&self) -> OuterTemplate {
        let mut h = [0u8; MAX_OUTER_HEADERS];
        h[0..6].copy_from_slice(&self.dst_mac);
        h[6..12].copy_from_slice(&self.src_mac);
        h[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        let ip = &mut h[14..54];
        // version 6, traffic class, flow label (per packet)
        ip[0] = 0x60 | (self.traffic_class >> 4);
        ip[1] = self.traffic_class << 4;
        // 4..6 payload length, per packet
        ip[6] = crate::parse::proto::UDP;
        ip[7] = self.hop_limit;
        ip[8..24].copy_from_slice(&self.src_ip.octets());
        ip[24..40].copy_from_slice(&self.dst_ip.octets());
        let udp = &mut h[54..62];
        udp[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        let pseudo = udp_pseudo_sum(&self.src_ip.octets(), &self.dst_ip.octets(), self.dst_port);
        OuterTemplate {
            bytes: h,
            ipv6: true,
            ip_sum: 0,
            pseudo_sum: pseudo,
            udp_checksum: true,
            max_inner: usize::MAX,
        }
    }
}

/// The IPv6 flow label of a flow (RFC 6438: tunnel endpoints label the outer header from a
/// hash of the inner flow, so that ECMP and LAG on the underlay keep a flow on one path):
/// 20 bits of [`flow_hash`], other bits than the ones [`source_port`] takes.
#[inline(always)]
pub fn flow_label(hash: u32) -> u32 {
    hash >> 12
}

/// The outer headers of [`OuterIpv4`] or [`OuterIpv6`], ready to be stamped per packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OuterTemplate {
    /// Ethernet + IP + UDP; an IPv4 template uses the first 42 bytes.
    bytes: [u8; MAX_OUTER_HEADERS],
    ipv6: bool,
    /// IPv4 header checksum without the total length.
    ip_sum: u32,
    /// UDP checksum over the pseudo header and constant UDP fields.
    pseudo_sum: u32,
    udp_checksum: bool,
    /// Inner bytes carried at most (see [`OuterTemplate::with_mtu`]).
    max_inner: usize,
}

impl OuterTemplate {
    /// Whether the outer header is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.ipv6
    }

    /// Bytes this template adds to an inner frame, Ethernet included: 50 (IPv4) or 70 (IPv6).
    #[inline(always)]
    pub fn overhead(&self) -> usize {
        if self.ipv6 {
            OUTER_IPV6_OVERHEAD
        } else {
            OUTER_IPV4_OVERHEAD
        }
    }

    /// Bytes of the outer IP datagram beyond the inner frame, counted against the underlay
    /// MTU: 36 (IPv4) or 56 (IPv6).
    #[inline(always)]
    pub fn mtu_overhead(&self) -> usize {
        self.overhead() - 14
    }

    /// The same headers for a path of `mtu` bytes: a longer copy is cut to `mtu` minus
    /// [`mtu_overhead`](Self::mtu_overhead) bytes, never fragmented. The engine's plan clamps
    /// copies for IPv4's 36 bytes; an IPv6 outer header costs 20 more, and only the sender
    /// knows which family a copy's destination has.
    pub fn with_mtu(mut self, mtu: u16) -> Self {
        self.max_inner = usize::from(mtu).saturating_sub(self.mtu_overhead());
        self
    }

    /// Writes a complete outer Ethernet/IP/UDP/VXLAN frame carrying `inner` (already
    /// truncated) into `out`; returns its length (`inner.len()` + [`overhead`](Self::overhead),
    /// or less when [`with_mtu`](Self::with_mtu) cut the copy). An IPv6 header carries flow
    /// label 0 (unlabelled); [`encapsulate_flow`](Self::encapsulate_flow) labels it.
    #[inline]
    pub fn encapsulate(
        &self,
        src_port: u16,
        vni: Vni,
        inner: &[u8],
        out: &mut [u8],
    ) -> Result<usize, EncapError> {
        self.write(src_port, 0, vni, inner, out)
    }

    /// [`encapsulate`](Self::encapsulate) for a flow: the UDP source port is
    /// [`source_port`]`(hash)` and an IPv6 header's flow label [`flow_label`]`(hash)`.
    #[inline]
    pub fn encapsulate_flow(
        &self,
        hash: u32,
        vni: Vni,
        inner: &[u8],
        out: &mut [u8],
    ) -> Result<usize, EncapError> {
        self.write(source_port(hash), flow_label(hash), vni, inner, out)
    }

    #[inline(always)]
    fn write(
        &self,
        src_port: u16,
        label: u32,
        vni: Vni,
        inner: &[u8],
        out: &mut [u8],
    ) -> Result<usize, EncapError> {
        let inner = &inner[..inner.len().min(self.max_inner)];
        let headers = self.overhead() - VXLAN_HEADER_LEN;
        let n = headers + VXLAN_HEADER_LEN + inner.len();
        let udp_len = VXLAN_HEADER_LEN + 8 + inner.len();
        // IPv4: the total length counts the 20-byte header; IPv6: the payload length is the
        // UDP datagram.
        let ip_len = if self.ipv6 { udp_len } else { udp_len + 20 };
        if ip_len > usize::from(u16::MAX) {
            return Err(EncapError::TooLarge);
        }
        let Some(out) = out.get_mut(..n) else {
            return Err(EncapError::BufferTooSmall { needed: n });
        };
        let udp_len16 = udp_len as u16;
        let (hdr, rest) = out.split_at_mut(headers);
        hdr.copy_from_slice(&self.bytes[..headers]);
        let udp_at = headers - 8;
        if self.ipv6 {
            let vtf = (6u32 << 28)
                | (u32::from((u16::from_be_bytes([hdr[14], hdr[15]]) >> 4) & 0xff) << 20)
                | (label & 0xf_ffff);
            hdr[14..18].copy_from_slice(&vtf.to_be_bytes());
            hdr[18..20].copy_from_slice(&udp_len16.to_be_bytes());
        } else {
            let ip_len16 = ip_len as u16;
            hdr[16..18].copy_from_slice(&ip_len16.to_be_bytes());
            let csum = checksum_finish(self.ip_sum + u32::from(ip_len16));
            hdr[24..26].copy_from_slice(&csum.to_be_bytes());
        }
        hdr[udp_at..udp_at + 2].copy_from_slice(&src_port.to_be_bytes());
        hdr[udp_at + 4..udp_at + 6].copy_from_slice(&udp_len16.to_be_bytes());
        let (vx, payload) = rest.split_at_mut(VXLAN_HEADER_LEN);
        let vx: &mut [u8; VXLAN_HEADER_LEN] = vx.try_into().expect("8 bytes");
        write_vxlan_header(vni, vx);
        payload.copy_from_slice(inner);
        if self.udp_checksum {
            // The UDP length appears twice: in the pseudo header and in the UDP header.
            let mut sum = self.pseudo_sum + u32::from(udp_len16) * 2 + u32::from(src_port);
            sum = checksum_add(sum, &vx[..]);
            sum = checksum_add(sum, inner);
            let mut c = checksum_finish(sum);
            // A computed zero is sent as all ones (RFC 768; over IPv6 zero means "none").
            if c == 0 {
                c = 0xffff;
            }
            out[udp_at + 6..udp_at + 8].copy_from_slice(&c.to_be_bytes());
        }
        Ok(n)
    }
}

/// Why a received datagram or frame is not a valid VXLAN copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecapError {
    /// Shorter than a header it claims to have, or a length field larger than the data.
    Truncated,
    /// Not Ethernet/IP/UDP to the VXLAN port.
    NotVxlan,
    /// The VXLAN "I" flag is clear.
    NoVni,
    /// An outer IPv4 fragment (cannot be decapsulated on its own).
    Fragment,
    /// The outer IPv4 header checksum is wrong.
    BadChecksum,
    /// A length field is inconsistent (IP header length, UDP length below 8, ...).
    BadLength,
    /// Nothing follows the VXLAN header.
    EmptyInner,
}

impl std::fmt::Display for DecapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DecapError::Truncated => "truncated",
            DecapError::NotVxlan => "not VXLAN",
            DecapError::NoVni => "VXLAN I flag not set",
            DecapError::Fragment => "outer IPv4 fragment",
            DecapError::BadChecksum => "bad outer IPv4 header checksum",
            DecapError::BadLength => "inconsistent length field",
            DecapError::EmptyInner => "empty inner frame",
        })
    }
}

impl std::error::Error for DecapError {}

/// A decapsulated copy: the session's VNI and the (possibly truncated) inner Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decapsulated<'a> {
    pub vni: Vni,
    pub inner: &'a [u8],
}

/// Decapsulates a UDP payload (what a UDP socket on port 4789 receives). Reserved bits are
/// ignored on receipt, as RFC 7348 requires.
#[inline]
pub fn decapsulate_payload(payload: &[u8]) -> Result<Decapsulated<'_>, DecapError> {
    let Some((hdr, inner)) = payload.split_first_chunk::<VXLAN_HEADER_LEN>() else {
        return Err(DecapError::Truncated);
    };
    if hdr[0] & VXLAN_FLAG_I == 0 {
        return Err(DecapError::NoVni);
    }
    if inner.is_empty() {
        return Err(DecapError::EmptyInner);
    }
    let v = u32::from_be_bytes([0, hdr[4], hdr[5], hdr[6]]);
    let vni = Vni::new(i64::from(v)).expect("24-bit value");
    Ok(Decapsulated { vni, inner })
}

fn be16(b: &[u8], at: usize) -> Result<u16, DecapError> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or(DecapError::Truncated)
}

/// Decapsulates a complete outer frame: Ethernet (up to two VLAN tags), IPv4 (options allowed,
/// header checksum verified, no fragments) or IPv6 (UDP directly after the fixed header), UDP
/// to `port`, VXLAN. Every length field is checked against the bytes present; Ethernet
/// padding after the IP datagram is ignored. The outer UDP checksum is not verified.
pub fn decapsulate_frame(frame: &[u8], port: u16) -> Result<Decapsulated<'_>, DecapError> {
    let mut ethertype = be16(frame, 12)?;
    let mut off = 14;
    let mut tags = 0;
    while matches!(
        ethertype,
        crate::parse::ETHERTYPE_VLAN
            | crate::parse::ETHERTYPE_QINQ
            | crate::parse::ETHERTYPE_QINQ_OLD
    ) {
        if tags == crate::parse::MAX_VLAN_TAGS {
            return Err(DecapError::NotVxlan);
        }
        ethertype = be16(frame, off + 2)?;
        off += 4;
        tags += 1;
    }
    let l3 = &frame[off..];
    let udp = match ethertype {
        ETHERTYPE_IPV4 => {
            let vihl = *l3.first().ok_or(DecapError::Truncated)?;
            if vihl >> 4 != 4 {
                return Err(DecapError::NotVxlan);
            }
            let ihl = usize::from(vihl & 0x0f) * 4;
            if ihl < 20 {
                return Err(DecapError::BadLength);
            }
            if l3.len() < ihl {
                return Err(DecapError::Truncated);
            }
            let total = usize::from(be16(l3, 2)?);
            if total < ihl {
                return Err(DecapError::BadLength);
            }
            if total > l3.len() {
                return Err(DecapError::Truncated);
            }
            if checksum_finish(checksum_add(0, &l3[..ihl])) != 0 {
                return Err(DecapError::BadChecksum);
            }
            if be16(l3, 6)? & 0x3fff != 0 {
                return Err(DecapError::Fragment);
            }
            if l3[9] != crate::parse::proto::UDP {
                return Err(DecapError::NotVxlan);
            }
            &l3[ihl..total]
        }
        ETHERTYPE_IPV6 => {
            if l3.len() < 40 {
                return Err(DecapError::Truncated);
            }
            if l3[0] >> 4 != 6 {
                return Err(DecapError::NotVxlan);
            }
            let total = 40 + usize::from(be16(l3, 4)?);
            if total > l3.len() {
                return Err(DecapError::Truncated);
            }
            if l3[6] != crate::parse::proto::UDP {
                return Err(DecapError::NotVxlan);
            }
            &l3[40..total]
        }
        _ => return Err(DecapError::NotVxlan),
    };
    let udp_len = usize::from(be16(udp, 4)?);
    if be16(udp, 2)? != port {
        return Err(DecapError::NotVxlan);
    }
    if udp_len < 8 {
        return Err(DecapError::BadLength);
    }
    if udp_len > udp.len() {
        return Err(DecapError::Truncated);
    }
    decapsulate_payload(&udp[8..udp_len])
}
