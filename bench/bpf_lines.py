#!/usr/bin/env python3
"""Where the kernel program's samples fall, by line of bpf/select.bpf.c (its ingress program).

perf names a JIT-compiled BPF program but cannot annotate it here (no libbfd), and the
program is gone once the agent stops. So, while the agent runs, `dump` asks the kernel for
the program's line table (BPF_OBJ_GET_INFO_BY_FD: the JIT address of each line-info record
and its source line); afterwards `report` reads a perf profile's samples inside the program
and counts them by source line.

    bench/bpf_lines.py dump PID OUT.json           # while agent PID runs (root)
    bench/bpf_lines.py report PERF.data OUT.json crates/agent/bpf/select.bpf.c

bench/dataplane.sh runs `dump` for the agent's ingress program in every profiled case of the
eBPF back-end (BENCH_PERF=PREFIX: PREFIX-CASE-SIZE.lines.json beside PREFIX-CASE-SIZE.data).

A clock-sampled profile attributes a stall to the instruction after it: time lost returning
from a helper call (return thunks, on this VM's kernel) lands on the line of the call.
"""
import bisect
import collections
import ctypes
import json
import struct
import subprocess
import sys

SYS_BPF = 321  # x86_64
PROG_GET_FD_BY_ID = 13
OBJ_GET_INFO_BY_FD = 15
INFO_LEN = 232  # struct bpf_prog_info up to attach_btf_id, plus room

libc = ctypes.CDLL(None, use_errno=True)


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, 128)
    rc = libc.syscall(SYS_BPF, cmd, buf, 128)
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf command {cmd}")
    return rc


def prog_info(fd, fields=()):
    info = ctypes.create_string_buffer(INFO_LEN)
    for offset, fmt, value in fields:
        struct.pack_into(fmt, info, offset, value)
    bpf(OBJ_GET_INFO_BY_FD, struct.pack("<IIQ", fd, INFO_LEN, ctypes.addressof(info)))
    return info


def ingress_program(pid):
    """The id of the program named tmirror_ingress among those process `pid` holds."""
    import os
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                ids.update(int(l.split()[1]) for l in f if l.startswith("prog_id:"))
        except OSError:
            continue
    for prog_id in sorted(ids):
        fd = bpf(PROG_GET_FD_BY_ID, struct.pack("<III", prog_id, 0, 0))
        try:
            name = prog_info(fd)[64:80].split(b"\0")[0].decode()
        finally:
            libc.close(fd)
        if name == "tmirror_ingress":
            return prog_id
    sys.exit(f"process {pid} holds no program named tmirror_ingress")


def dump(pid, out):
    prog_id = ingress_program(pid)
    fd = bpf(PROG_GET_FD_BY_ID, struct.pack("<III", prog_id, 0, 0))
    try:
        # struct bpf_prog_info offsets (linux/bpf.h): nr_line_info 148, line_info 152,
        # jited_line_info 160, nr_jited_line_info 168, line_info_rec_size 172,
        # jited_line_info_rec_size 176.
        first = prog_info(fd)
        n_line, = struct.unpack_from("<I", first, 148)
        n_jited, = struct.unpack_from("<I", first, 168)
        line_rec, jited_rec = struct.unpack_from("<II", first, 172)
        lines = ctypes.create_string_buffer(max(1, n_line * line_rec))
        jited = ctypes.create_string_buffer(max(1, n_jited * jited_rec))
        prog_info(fd, [
            (148, "<I", n_line), (152, "<Q", ctypes.addressof(lines)), (172, "<I", line_rec),
            (168, "<I", n_jited), (160, "<Q", ctypes.addressof(jited)),
            (176, "<I", jited_rec),
        ])
    finally:
        libc.close(fd)
    table = []
    for i in range(min(n_line, n_jited)):
        address, = struct.unpack_from("<Q", jited, i * jited_rec)
        # struct bpf_line_info: insn_off, file_name_off, line_off, line_col (line << 10 | col)
        line_col, = struct.unpack_from("<I", lines, i * line_rec + 12)
        table.append((address, line_col >> 10))
    with open(out, "w") as f:
        json.dump({"prog_id": prog_id, "lines": sorted(table)}, f)


def report(perf_data, table_file, source):
    with open(table_file) as f:
        table = json.load(f)["lines"]
    addresses = [a for a, _ in table]
    text = open(source).read().split("\n")
    script = subprocess.run(["perf", "script", "-i", perf_data, "-F", "ip,sym"],
                            capture_output=True, text=True, check=True).stdout
    samples = [int(l.split()[0], 16) for l in script.splitlines()
               if "tmirror_ingress" in l]
    counts = collections.Counter()
    for ip in samples:
        i = bisect.bisect_right(addresses, ip) - 1
        while i > 0 and table[i][1] == 0:  # compiler-made code: the line before it
            i -= 1
        if i >= 0 and ip - addresses[i] < 4096:
            counts[table[i][1]] += 1
    total = sum(counts.values())
    print(f"{total} samples in the program ({perf_data})")
    for line, n in counts.most_common(25):
        code = text[line - 1].strip() if 0 < line <= len(text) else ""
        print(f"{100 * n / max(total, 1):5.1f}%  line {line:4}  {code[:80]}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "dump":
        dump(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
