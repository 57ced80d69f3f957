#!/usr/bin/env python3
"""Writes the small seed corpus of the fuzz targets (run once; the output is checked in)."""
import os, struct

HERE = os.path.dirname(os.path.abspath(__file__))

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF

def eth(ethertype, l3, tags=()):
    h = bytes.fromhex("0200000000bb0200000000aa")
    for tpid, vid in tags:
        h += struct.pack("!HH", tpid, vid)
    return h + struct.pack("!H", ethertype) + l3

def ipv4(src, dst, proto, l4, opts=b"", frag=0):
    ihl = 20 + len(opts)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl // 4, 0, ihl + len(l4), 0x1234, frag, 64, proto, 0, bytes(src), bytes(dst)) + opts
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + l4

def ipv6(src, dst, nh, body):
    return struct.pack("!IHBB", 0x60000000, len(body), nh, 64) + bytes(src) + bytes(dst) + body

def tcp(sp, dp, payload=b""):
    return struct.pack("!HHIIBBHHH", sp, dp, 1, 0, 5 << 4, 0x18, 1024, 0, 0) + payload

def udp(sp, dp, payload=b""):
    return struct.pack("!HHHH", sp, dp, 8 + len(payload), 0) + payload

A4, B4 = [10, 0, 0, 1], [10, 0, 0, 2]
A6 = [0x20, 0x01, 0x0D, 0xB8] + [0] * 11 + [1]
B6 = [0x20, 0x01, 0x0D, 0xB8] + [0] * 11 + [2]

frames = {
    "tcp4": eth(0x0800, ipv4(A4, B4, 6, tcp(40000, 443, b"x" * 10))),
    "udp4_vlan": eth(0x0800, ipv4(A4, B4, 17, udp(53, 5353, b"q" * 20)), [(0x8100, 7)]),
    "udp4_qinq": eth(0x0800, ipv4(A4, B4, 17, udp(1, 2)), [(0x88A8, 100), (0x8100, 7)]),
    "tcp4_options": eth(0x0800, ipv4(A4, B4, 6, tcp(22, 1000), opts=b"\x01" * 40)),
    "frag4_first": eth(0x0800, ipv4(A4, B4, 17, udp(5, 6, b"a" * 16), frag=0x2000)),
    "frag4_later": eth(0x0800, ipv4(A4, B4, 17, b"b" * 24, frag=185)),
    "icmp4": eth(0x0800, ipv4(A4, B4, 1, bytes([8, 0, 0, 0, 0, 1, 0, 1]))),
    "gre4": eth(0x0800, ipv4(A4, B4, 47, b"\0" * 8)),
    "tcp6": eth(0x86DD, ipv6(A6, B6, 6, tcp(1, 443))),
    "tcp6_ext": eth(0x86DD, ipv6(A6, B6, 0,
        bytes([60, 0]) + b"\0" * 6 + bytes([43, 1]) + b"\0" * 14 + bytes([51, 1]) + b"\0" * 10 + bytes([6, 0]) + b"\0" * 6 + tcp(1, 80))),
    "frag6_later": eth(0x86DD, ipv6(A6, B6, 44, bytes([17, 0]) + struct.pack("!H", 10 << 3) + b"\0" * 4 + b"z" * 16)),
    "icmp6": eth(0x86DD, ipv6(A6, B6, 58, bytes([128, 0, 0, 0, 0, 1, 0, 1]))),
    "arp": eth(0x0806, b"\0\x01\x08\x00\x06\x04\x00\x01" + b"\0" * 20),
    "lldp": eth(0x88CC, b"\x02\x07\x04" + b"\0" * 20),
    "short": bytes.fromhex("0200000000bb0200000000aa0800"),
}

def vxlan_frame(vni, inner, port=4789, tags=()):
    payload = struct.pack("!BBBBI", 8, 0, 0, 0, vni << 8) + inner
    return eth(0x0800, ipv4([192, 0, 2, 1], [192, 0, 2, 2], 17, udp(50000, port, payload)), tags)

def vxlan6_frame(vni, inner):
    payload = struct.pack("!BBBBI", 8, 0, 0, 0, vni << 8) + inner
    return eth(0x86DD, ipv6(A6, B6, 17, udp(50000, 4789, payload)))

decap = {
    "vxlan4": vxlan_frame(1, frames["tcp4"]),
    "vxlan4_trunc96": vxlan_frame(16777215, frames["tcp4_options"][:96]),
    "vxlan4_vlan": vxlan_frame(0, frames["udp4_vlan"], tags=[(0x8100, 3)]),
    "vxlan6": vxlan6_frame(42, frames["tcp6"]),
    "payload_only": struct.pack("!BBBBI", 8, 0, 0, 0, 7 << 8) + frames["icmp4"],
    "one_byte_inner": vxlan_frame(5, b"\x02"),
}

def rule(v6, egress, reject, proto, session, prio, src=None, dst=None, sport=0, dport=0):
    c0 = int(v6) | int(egress) << 1 | int(reject) << 2 | proto << 3 | session << 6
    def cidr(c):
        if c is None:
            return bytes(4) + b"\x80"
        return bytes(c[0]) + bytes([c[1]])
    return bytes([c0, prio]) + cidr(src) + cidr(dst) + bytes([sport, dport])

# proto index: 0 tcp, 1 udp, 2 icmp, 3 icmpv6, 4 all
rules = [
    rule(0, 0, 1, 0, 0, 1, src=([10, 0, 0, 0], 8), dport=0x01),
    rule(0, 0, 0, 4, 0, 2),
    rule(0, 1, 0, 1, 1, 1, dst=([10, 0, 0, 2], 32)),
    rule(1, 0, 0, 0, 2, 3, dport=0x10),
    rule(1, 1, 1, 4, 2, 1, src=([0, 0, 0, 1], 127)),
]
blob = bytes([len(rules)]) + b"".join(rules)
plan = {
    "tcp4": blob + frames["tcp4"],
    "udp4_vlan": blob + frames["udp4_vlan"],
    "tcp6_ext": blob + frames["tcp6_ext"],
    "frag4_later": blob + frames["frag4_later"],
}

for target, items in (("parse_frame", frames), ("decap", decap), ("plan", plan)):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    for name, data in items.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
print("ok")
