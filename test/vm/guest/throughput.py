#!/usr/bin/env python3
"""In the guest: GetRandom and PCR_Extend per second through the CUSE device and through vtpmd's
socket mode (same engine, same guest), with one client for both that talks the way QEMU's two
backends do: blocking calls, the command written whole, then reads until the response is whole.

A TCG guest on a busy host is noisy, so the paths take turns in short rounds (OPS commands each)
after a warm-up, and each rate is total commands over total time of that path. With the daemons'
pids it also reports each daemon's CPU time per command (user and system, in µs, from
/proc/PID/stat), which the host's load disturbs less than the rates. One JSON line.

Usage: throughput.py DEVICE PORT|UNIX_PATH ROUNDS OPS [CUSE_PID SOCKET_PID]
"""
import json
import os
import socket
import struct
import sys
import time

dev, port = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 10
ops = int(sys.argv[4]) if len(sys.argv) > 4 else 20
pids = {'device': sys.argv[5] if len(sys.argv) > 5 else None,
        'socket': sys.argv[6] if len(sys.argv) > 6 else None}
TICK_US = 1e6 / os.sysconf('SC_CLK_TCK')

GET_RANDOM = bytes.fromhex('80010000000c0000017b0020')
# PCR_Extend of PCR 16 (resettable) with one SHA-256 digest, password session.
PCR_EXTEND = bytes.fromhex('80020000004100000182' '00000010' '00000009' '40000009' '0000' '00' '0000'
                           '00000001000b') + b'\xab' * 32


def cpu(pid):
    """[utime, stime] in clock ticks, or None without a pid."""
    if not pid:
        return None
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(') ', 1)[1].split(' ')
    return [int(fields[11]), int(fields[12])]


def check(path, rsp):
    if len(rsp) < 10 or struct.unpack_from('>I', rsp, 6)[0] != 0:
        raise SystemExit(f'{path}: bad response {rsp.hex()}')


def whole(recv):
    """Reads one response: the header, then until its commandSize is there."""
    rsp = recv(4096)
    while len(rsp) < 10 or len(rsp) < struct.unpack_from('>I', rsp, 2)[0]:
        more = recv(4096)
        if not more:
            raise SystemExit(f'connection ended inside a response: {rsp.hex()}')
        rsp += more
    return rsp


fd = os.open(dev, os.O_RDWR)
if port.isdigit():
    sock = socket.create_connection(('127.0.0.1', int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
else:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(port)


def device_run(cmd, n):
    t0 = time.perf_counter()
    for _ in range(n):
        os.write(fd, cmd)
        check('device', whole(lambda size: os.read(fd, size)))
    return time.perf_counter() - t0


def socket_run(cmd, n):
    t0 = time.perf_counter()
    for _ in range(n):
        sock.sendall(cmd)
        check('socket', whole(sock.recv))
    return time.perf_counter() - t0


runs = {'device': device_run, 'socket': socket_run}
workloads = (('getRandom', GET_RANDOM), ('pcrExtend', PCR_EXTEND))
# commandsPerPath: everything each path was sent, its warm-up rounds too.
result = {'device': {}, 'socket': {}, 'ops': rounds * ops, 'commandsPerPath': len(workloads) * (rounds + 1) * ops}
used = {'device': [0, 0], 'socket': [0, 0]}
for name, cmd in workloads:
    spent = {'device': 0.0, 'socket': 0.0}
    for path in runs:
        runs[path](cmd, ops)
    for _ in range(rounds):
        for path, run in runs.items():
            before = cpu(pids[path])
            spent[path] += run(cmd, ops)
            after = cpu(pids[path])
            if before:
                used[path] = [u + a - b for u, a, b in zip(used[path], after, before)]
    for path in runs:
        result[path][name] = round(rounds * ops / spent[path])
sock.close()
os.close(fd)
if pids['device']:
    def per_op(ticks):
        return round(ticks * TICK_US / (2 * rounds * ops))
    result['cpuPerCommandUs'] = {path: {'user': per_op(u), 'system': per_op(s)} for path, (u, s) in used.items()}
print(json.dumps(result))
