//! Frame and rule builders shared by the tests and the benchmarks. Written independently of
//! the engine's parser: they build frames byte by byte from the RFC layouts.

#![allow(dead_code)]

use std::net::IpAddr;

use tmirror_model::{
    Direction, Ethertype, PacketLength, PortRange, Protocol, RuleAction, RuleMatch, RulePriority,
    SessionId, SessionPriority, Vni,
};
use tmirror_packet::{CompiledFilter, RuleSpec, SessionSpec};

pub fn csum(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for (i, b) in data.iter().enumerate() {
        sum += if i % 2 == 0 {
            u64::from(*b) << 8
        } else {
            u64::from(*b)
        };
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Transport layer of a test frame.
#[derive(Clone, Debug)]
pub enum L4 {
    Tcp(u16, u16),
    Udp(u16, u16),
    Icmp,
    Icmpv6,
    Other(u8),
}

impl L4 {
    pub fn proto(&self) -> u8 {
        match self {
            L4::Tcp(..) => 6,
            L4::Udp(..) => 17,
            L4::Icmp => 1,
            L4::Icmpv6 => 58,
            L4::Other(p) => *p,
        }
    }

    /// Header bytes followed by `payload` zero-ish bytes.
    pub fn bytes(&self, payload: usize) -> Vec<u8> {
        let body: Vec<u8> = (0..payload).map(|i| (i * 7 + 3) as u8).collect();
        let mut v = match self {
            L4::Tcp(s, d) => {
                let mut h = vec![0u8; 20];
                h[0..2].copy_from_slice(&s.to_be_bytes());
                h[2..4].copy_from_slice(&d.to_be_bytes());
                h[12] = 5 << 4;
                h[13] = 0x18;
                h
            }
            L4::Udp(s, d) => {
                let mut h = vec![0u8; 8];
                h[0..2].copy_from_slice(&s.to_be_bytes());
                h[2..4].copy_from_slice(&d.to_be_bytes());
                h[4..6].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
                h
            }
            L4::Icmp => vec![8, 0, 0, 0, 0, 1, 0, 1],
            L4::Icmpv6 => vec![128, 0, 0, 0, 0, 1, 0, 1],
            L4::Other(_) => vec![],
        };
        v.extend(body);
        v
    }
}

/// A test frame description.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    /// `(tpid, vid)` tags in order.
    pub vlans: Vec<(u16, u16)>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub l4: L4,
    pub payload: usize,
    /// IPv4 options bytes (multiple of 4, ≤ 40).
    pub ipv4_options: usize,
    /// Fragment offset in 8-byte units (IPv4 header or IPv6 fragment header).
    pub frag_offset: u16,
    pub more_fragments: bool,
    /// IPv6 extension headers before the transport header: (type, length in bytes).
    pub ipv6_ext: Vec<(u8, usize)>,
    /// Ethernet padding bytes after the IP datagram.
    pub padding: usize,
}

impl FrameSpec {
    pub fn new(src: &str, dst: &str, l4: L4) -> Self {
        FrameSpec {
            vlans: vec![],
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            l4,
            payload: 0,
            ipv4_options: 0,
            frag_offset: 0,
            more_fragments: false,
            ipv6_ext: vec![],
            padding: 0,
        }
    }

    pub fn payload(mut self, n: usize) -> Self {
        self.payload = n;
        self
    }

    pub fn vlan(mut self, tpid: u16, vid: u16) -> Self {
        self.vlans.push((tpid, vid));
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa];
        for (tpid, vid) in &self.vlans {
            f.extend(tpid.to_be_bytes());
            f.extend(vid.to_be_bytes());
        }
        let fragmented = self.frag_offset != 0;
        let l4 = if fragmented {
            (0..self.payload + 16).map(|i| i as u8).collect()
        } else {
            self.l4.bytes(self.payload)
        };
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend(0x0800u16.to_be_bytes());
                let ihl = 20 + self.ipv4_options;
                let total = ihl + l4.len();
                let mut h = vec![0u8; ihl];
                h[0] = 0x40 | (ihl / 4) as u8;
                h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
                h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
                let fl = self.frag_offset | if self.more_fragments { 0x2000 } else { 0 };
                h[6..8].copy_from_slice(&fl.to_be_bytes());
                h[8] = 64;
                h[9] = self.l4.proto();
                h[12..16].copy_from_slice(&s.octets());
                h[16..20].copy_from_slice(&d.octets());
                for b in &mut h[20..] {
                    *b = 1; // NOP options
                }
                let c = csum(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
                f.extend(h);
                f.extend(l4);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend(0x86DDu16.to_be_bytes());
                let mut exts: Vec<(u8, usize)> = self.ipv6_ext.clone();
                if fragmented || self.more_fragments {
                    exts.push((44, 8));
                }
                let mut body = Vec::new();
                for (i, (kind, len)) in exts.iter().enumerate() {
                    let next = exts.get(i + 1).map(|e| e.0).unwrap_or(self.l4.proto());
                    let mut e = vec![0u8; *len];
                    e[0] = next;
                    match kind {
                        44 => {
                            let fo = (self.frag_offset << 3) | u16::from(self.more_fragments);
                            e[2..4].copy_from_slice(&fo.to_be_bytes());
                        }
                        51 => e[1] = (len / 4 - 2) as u8,
                        _ => e[1] = (len / 8 - 1) as u8,
                    }
                    body.extend(e);
                }
                body.extend(l4);
                let mut h = vec![0u8; 40];
                h[0] = 0x60;
                h[4..6].copy_from_slice(&(body.len() as u16).to_be_bytes());
                h[6] = exts.first().map(|e| e.0).unwrap_or(self.l4.proto());
                h[7] = 64;
                h[8..24].copy_from_slice(&s.octets());
                h[24..40].copy_from_slice(&d.octets());
                f.extend(h);
                f.extend(body);
            }
            _ => panic!("mixed address families"),
        }
        f.extend(std::iter::repeat_n(0u8, self.padding));
        f
    }
}

/// A rule with every field given.
#[allow(clippy::too_many_arguments)]
pub fn rule(
    direction: Direction,
    priority: u32,
    action: RuleAction,
    ethertype: Ethertype,
    protocol: Protocol,
    src: Option<&str>,
    dst: Option<&str>,
    sport: Option<(u16, u16)>,
    dport: Option<(u16, u16)>,
) -> RuleSpec {
    RuleSpec {
        direction,
        priority: RulePriority::new(i64::from(priority)).unwrap(),
        action,
        matches: RuleMatch {
            ethertype,
            protocol,
            source_cidr: src.map(|s| s.parse().unwrap()),
            destination_cidr: dst.map(|s| s.parse().unwrap()),
            source_port_range: sport.map(|(a, b)| PortRange::new(a, b).unwrap()),
            destination_port_range: dport.map(|(a, b)| PortRange::new(a, b).unwrap()),
        },
    }
}

/// A session with the given priority, VNI, packet length, rules and target.
pub fn session(
    n: u128,
    priority: u16,
    vni: u32,
    packet_length: u16,
    rules: &[RuleSpec],
) -> SessionSpec<u128> {
    SessionSpec {
        id: SessionId(uuid::Uuid::from_u128(n)),
        priority: SessionPriority::new(i64::from(priority)).unwrap(),
        vni: Vni::new(i64::from(vni)).unwrap(),
        packet_length: PacketLength::new(i64::from(packet_length)).unwrap(),
        filter: CompiledFilter::new(rules),
        target: n,
    }
}
