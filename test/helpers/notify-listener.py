#!/usr/bin/env python3
"""A stand-in for systemd's notification socket: receives sd_notify datagrams with their sender
credentials and prints one JSON line per message. On READY=1 it probes the TCP port given as
argv[2] at once (before the daemon can do anything else), so the test can tell whether READY
came only after the daemon accepted connections.

usage: notify-listener.py SOCKET_PATH|@ABSTRACT_NAME [PROBE_PORT]
"""
import json
import os
import socket
import struct
import sys

path = sys.argv[1]
probe_port = int(sys.argv[2]) if len(sys.argv) > 2 else None
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
sock.bind("\0" + path[1:] if path.startswith("@") else path)
print(json.dumps({"listening": path}), flush=True)


def probe(port):
    """GET_CAPABILITY (command 1) on the control channel: the 8-byte answer, or an error."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            c.sendall(b"\x00\x00\x00\x01")
            data = b""
            while len(data) < 8:
                chunk = c.recv(8 - len(data))
                if not chunk:
                    break
                data += chunk
            return data.hex()
    except OSError as e:
        return "error: " + str(e)


while True:
    data, ancdata, _flags, _addr = sock.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, _uid, _gid = struct.unpack("iII", payload[:12])
    fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
    record = {"fields": fields, "pid": pid}
    if fields.get("READY") == "1" and probe_port is not None:
        record["probe"] = probe(probe_port)
    print(json.dumps(record), flush=True)
    if fields.get("STOPPING") == "1":
        break
