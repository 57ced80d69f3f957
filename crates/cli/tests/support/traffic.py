#!/usr/bin/env python3
"""Traffic for tmirror's end-to-end tests, run inside a lab namespace. Every loop is bounded.

  traffic.py serve                      UDP echo on 7000-7002, TCP echo on 8000; prints "ready"
  traffic.py udp DST PORT COUNT SIZE MARKER
  traffic.py tcp DST PORT COUNT MARKER   one connection, COUNT messages, each echoed
  traffic.py flows DST PORT BASE COUNT MARKER  COUNT UDP flows from source ports BASE..,
                                         one echoed datagram each (MARKER-i as payload)
  traffic.py ping DST COUNT MARKER       ICMP (IPv4) or ICMPv6 echo, by the address family
  traffic.py stream DST PORT SECONDS MS  one UDP datagram every MS milliseconds, no waiting
  traffic.py vlan IFACE VID COUNT MARKER  broadcast 802.1Q-tagged IPv4/UDP frames, hand-built
  traffic.py get URL                     prints the body of an HTTP GET
  traffic.py sniff IFACE                 AF_PACKET capture until SIGTERM/SIGINT (at most
                                         60 s): prints "ready", then one JSON line per frame
"""
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.request

PACE = 0.002  # seconds between packets: a test burst is small and must not be dropped


def serve():
    socks = []
    for port in (7000, 7001, 7002):
        for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            s = socket.socket(fam, socket.SOCK_DGRAM)
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addr, port))
            socks.append(s)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", 8000))
    tcp.listen(16)

    def tcp_echo(conn):
        with conn:
            conn.settimeout(10)
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        return
                    conn.sendall(data)
            except OSError:
                return

    print("ready", flush=True)
    deadline = time.time() + 600
    while time.time() < deadline:
        ready, _, _ = select.select(socks + [tcp], [], [], 0.5)
        for s in ready:
            if s is tcp:
                conn, _ = tcp.accept()
                threading.Thread(target=tcp_echo, args=(conn,), daemon=True).start()
            else:
                data, peer = s.recvfrom(65536)
                s.sendto(data, peer)


def payload(marker, i, size):
    head = f"{marker}-{i:04d}-".encode()
    return (head + b"." * max(0, size - len(head)))[: max(size, len(head))]


def udp(dst, port, count, size, marker):
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(1)
    echoed = 0
    for i in range(count):
        s.sendto(payload(marker, i, size), (dst, port))
        try:
            s.recvfrom(65536)
            echoed += 1
        except socket.timeout:
            pass
        time.sleep(PACE)
    print(json.dumps({"sent": count, "echoed": echoed}))


def flows(dst, port, base, count, marker):
    echoed = 0
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", base + i))
        s.settimeout(1)
        s.sendto(payload(marker, i, 32), (dst, port))
        try:
            s.recvfrom(65536)
            echoed += 1
        except socket.timeout:
            pass
        s.close()
        time.sleep(PACE)
    print(json.dumps({"sent": count, "echoed": echoed}))


def tcp(dst, port, count, marker):
    s = socket.create_connection((dst, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(count):
        msg = payload(marker, i, 40)
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            got += s.recv(65536)
        time.sleep(PACE)
    s.close()
    time.sleep(0.1)  # let the FIN exchange finish before the caller looks
    print(json.dumps({"sent": count}))


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    total = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def ping(dst, count, marker):
    v6 = ":" in dst
    if v6:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(1)
    ident = os.getpid() & 0xFFFF
    replies = 0
    for seq in range(count):
        data = payload(marker, seq, 32)
        typ = 128 if v6 else 8
        hdr = struct.pack("!BBHHH", typ, 0, 0, ident, seq)
        if not v6:  # the kernel computes ICMPv6 checksums itself
            hdr = struct.pack("!BBHHH", typ, 0, checksum(hdr + data), ident, seq)
        s.sendto(hdr + data, (dst, 0))
        end = time.time() + 1
        while time.time() < end:
            try:
                pkt, _ = s.recvfrom(65536)
            except socket.timeout:
                break
            icmp = pkt if v6 else pkt[(pkt[0] & 0x0F) * 4 :]
            if icmp[0] in (0, 129) and struct.unpack("!H", icmp[4:6])[0] == ident:
                replies += 1
                break
        time.sleep(PACE)
    print(json.dumps({"sent": count, "replies": replies}))


def stream(dst, port, seconds, interval_ms):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    end = time.time() + min(seconds, 600)
    i = 0
    while time.time() < end:
        s.sendto(payload("stream", i % 10000, 64), (dst, port))
        i += 1
        time.sleep(interval_ms / 1000)
    print(json.dumps({"sent": i}))


def vlan(iface, vid, count, marker):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    src_mac = s.getsockname()[4]
    for i in range(count):
        data = payload(marker, i, 64)
        udp = struct.pack("!HHHH", 40000, 7001, 8 + len(data), 0) + data
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                         socket.inet_aton("10.99.0.2"), socket.inet_aton("10.99.0.1"))
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        frame = b"\xff" * 6 + src_mac + struct.pack("!HHH", 0x8100, vid, 0x0800) + ip + udp
        s.send(frame)
        time.sleep(PACE)
    print(json.dumps({"sent": count}))


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        sys.stdout.write(r.read().decode())


def sniff(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((iface, 0))
    s.settimeout(0.1)
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    print("ready", flush=True)
    deadline = time.time() + 60
    while not stop and time.time() < deadline:
        try:
            data, addr = s.recvfrom(65536)
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        print(json.dumps({"outgoing": addr[2] == socket.PACKET_OUTGOING, "hex": data.hex()}), flush=True)


def main(argv):
    cmd = argv[1]
    if cmd == "serve":
        serve()
    elif cmd == "udp":
        udp(argv[2], int(argv[3]), int(argv[4]), int(argv[5]), argv[6])
    elif cmd == "flows":
        flows(argv[2], int(argv[3]), int(argv[4]), int(argv[5]), argv[6])
    elif cmd == "tcp":
        tcp(argv[2], int(argv[3]), int(argv[4]), argv[5])
    elif cmd == "ping":
        ping(argv[2], int(argv[3]), argv[4])
    elif cmd == "stream":
        stream(argv[2], int(argv[3]), float(argv[4]), float(argv[5]))
    elif cmd == "vlan":
        vlan(argv[2], int(argv[3]), int(argv[4]), argv[5])
    elif cmd == "get":
        get(argv[2])
    elif cmd == "sniff":
        sniff(argv[2])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
