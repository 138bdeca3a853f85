#!/usr/bin/env python3
"""test_ktxd_badinput - ktxd answers bad input with errors and keeps serving.

Sends, each on its own connection: random bytes, a truncated frame, a length
prefix over the frame limit, frames whose msgpack declares huge containers
(map32 of 1Mi pairs, array32 of 4Gi elements, str32 of 4 GiB) in a few
bytes, many of those at once, 700 unfinished frames of 120 KB, wrong field
types, unknown ops, a request before hello, a wrong protocol version, a
prompt over the limit; then opens and drops thousands of connections. After each, a fresh client must still
get answers, the daemon's descriptors must be back to normal, and its peak
memory must stay small. Also measures the round trip of an empty request.
"""
import os
import random
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktxtest  # noqa: E402
from ktxd_harness import Client, Daemon, frame, pack  # noqa: E402

t = ktxtest.Tap()
d = Daemon(args=["--max-prompt-bytes", "64K", "--max-frame-bytes", "128K"])


def raw(data, read=True, close_after=True):
    """Sends data on a fresh connection; returns the events received until close."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.socket)
    s.settimeout(10)
    try:
        s.sendall(data)
    except OSError:
        pass
    c = Client.__new__(Client)
    c.sock, c.buf, c.next_id = s, b"", 1
    out = []
    if read:
        while True:
            try:
                ev = c.event()
            except socket.timeout:
                break
            if ev is None:
                break
            out.append(ev)
            if not close_after:
                break
    s.close()
    return out


def serving(name):
    """A fresh client still gets an answer (after a "busy" while the daemon
    works through connections that were dropped a moment ago)."""
    deadline = time.time() + 10
    while True:
        try:
            c = d.client(timeout=10)
            ev = c.request({"op": "ping"})
            c.close()
            ok = ev and ev[-1].get("ev") == "ok"
        except (OSError, AssertionError) as e:
            ok, ev = False, e
        if ok or time.time() > deadline or "busy" not in str(ev):
            break
        time.sleep(0.1)
    return t.ok(ok and d.alive(), "still serving after " + name, ev)


def codes(evs):
    return [e.get("code") for e in evs if e.get("ev") == "error"]


def fds():
    return len(os.listdir("/proc/%d/fd" % d.proc.pid))


def sanitized():
    """True when ktxd runs under AddressSanitizer (its quarantine keeps freed memory)."""
    with open("/proc/%d/maps" % d.proc.pid) as f:
        return "libasan" in f.read()


def peak_kib():
    with open("/proc/%d/status" % d.proc.pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


hello = frame(pack({"op": "hello", "id": 1, "version": 1}))
try:
    base_fds = fds()

    # Round trip of an empty request (ping) on one connection.
    c = d.client()
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        c.request({"op": "ping"})
    rtt = (time.perf_counter() - t0) / n
    c.close()
    t.diag("ping round trip: %.0f us (mean of %d, Python client)" % (rtt * 1e6, n))
    t.ok(rtt < 0.01, "an empty request round-trips in under 10 ms")

    rng = random.Random(4)
    evs = raw(bytes(rng.getrandbits(8) for _ in range(65536)))
    t.ok(codes(evs) and codes(evs)[0] in ("too_large", "bad_frame"),
         "random bytes: an error event, then the connection closes", evs)
    serving("random bytes")

    evs = raw(hello + struct.pack(">I", 100) + b"\x81\xa2op" + b"x" * 10, read=False)
    serving("a truncated frame")

    evs = raw(struct.pack(">I", 0x7fffffff))
    t.ok(codes(evs) == ["too_large"], "a 2 GiB length prefix: too_large at once", evs)
    serving("an oversized length prefix")

    evs = raw(hello + frame(pack({"op": "ask", "id": 2, "prompt": "x" * 200000})))
    t.ok("too_large" in codes(evs), "a frame over max_frame_bytes: too_large", evs)
    serving("an oversized frame")

    bombs = {
        "map32 of 1Mi pairs": b"\xdf\x00\x10\x00\x00",
        "array32 of 4Gi elements": b"\x81\xa2op\xdd\xff\xff\xff\xff",
        "str32 of 4 GiB": b"\x81\xa2op\xdb\xff\xff\xff\xff",
        "bin32 of 4 GiB": b"\x81\xa2op\xc6\xff\xff\xff\xff",
        "nesting 100 deep": b"\x91" * 100 + b"\xc0",
    }
    for name, payload in bombs.items():
        evs = raw(hello + frame(payload))
        t.ok(codes(evs) == ["bad_frame"], "%s in %d bytes: bad_frame" % (name, len(payload)),
             evs)
    # Many at once: 200 connections each holding a declared-huge frame.
    socks = []
    for i in range(200):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.socket)
        s.sendall(hello + frame(b"\xdd\xff\xff\xff\xff" + b"\x00" * 64))
        socks.append(s)
    for s in socks:
        s.close()
    serving("200 container bombs at once")
    peak = peak_kib()
    t.diag("ktxd peak resident memory after the bombs: %.1f MiB" % (peak / 1024))
    bound = 1024 if sanitized() else 256
    t.ok(peak < bound * 1024, "peak memory stays under %d MiB (%d KiB)" % (bound, peak))

    # Unfinished frames: 700 connections each send 120 KB of a 127 KB frame
    # (84 MB in all); past 64 MiB per user the daemon drops them with busy.
    socks = []
    part = struct.pack(">I", 127 * 1024) + b"\x81\xa2op" + b"\xc0" * (120 * 1024)
    for i in range(700):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.socket)  # blocking: waits while the backlog is full
        s.settimeout(10)
        try:
            s.sendall(hello + part)
        except OSError:
            pass
        socks.append(s)
    got = {s.fileno(): b"" for s in socks}
    by_fd = {s.fileno(): s for s in socks}
    poller = select.poll()
    for s in socks:
        poller.register(s, select.POLLIN)
    deadline = time.time() + 20
    while time.time() < deadline:
        ready = poller.poll(1000)
        if not ready:
            break
        for fd, _ in ready:
            try:
                chunk = by_fd[fd].recv(65536)
            except OSError:
                chunk = b""
            got[fd] += chunk
            if not chunk:
                poller.unregister(fd)
    busy = sum(b"busy" in v for v in got.values())
    for s in socks:
        s.close()
    t.ok(busy > 0, "unfinished frames over 64 MiB per user: busy (%d connections)" % busy)
    serving("84 MB of unfinished frames")
    peak = peak_kib()
    t.diag("ktxd peak resident memory after them: %.1f MiB" % (peak / 1024))
    bound = 1024 if sanitized() else 200
    t.ok(peak < bound * 1024, "peak memory stays under %d MiB (%d KiB)" % (bound, peak))

    c = d.client()
    ev = c.request({"op": "ask", "prompt": 123})
    t.ok(codes(ev) == ["bad_field"], "a number where the prompt belongs: bad_field", ev)
    ev = c.request({"op": "ask", "prompt": "hi", "max_tokens": "many"})
    t.ok(codes(ev) == ["bad_field"], "a string where a number belongs: bad_field", ev)
    ev = c.request({"op": "ask", "prompt": "hi", "bogus": 1})
    t.ok(codes(ev) == ["bad_field"], "an unknown field: bad_field", ev)
    ev = c.request({"op": "explode"})
    t.ok(codes(ev) == ["unknown_op"], "an unknown op: unknown_op", ev)
    ev = c.request({"op": "ask", "prompt": "x" * 70000})
    t.ok(codes(ev) == ["too_large"], "a prompt over max_prompt_bytes: too_large", ev)
    ev = c.request({"op": "ask", "prompt": ""})
    t.ok(codes(ev) == ["bad_field"], "an empty prompt: bad_field", ev)
    ev = c.request({"op": "ask", "prompt": "hi", "temperature": -1.0})
    t.ok(codes(ev) == ["bad_field"], "a negative temperature: bad_field", ev)
    ev = c.request({"op": "result", "job": 999999})
    t.ok(codes(ev) == ["not_found"], "an unknown job: not_found", ev)
    ev = c.request({"op": "show", "conversation": "no-such-name"})
    t.ok(codes(ev) == ["not_found"], "an unknown conversation: not_found", ev)
    ev = c.request({"op": "ping"})
    t.ok(ev and ev[-1]["ev"] == "ok", "the connection survives refused requests", ev)
    c.close()

    evs = raw(frame(pack({"op": "ping", "id": 5})))
    t.ok(codes(evs) == ["version"], "a request before hello: version error and close", evs)
    evs = raw(frame(pack({"op": "hello", "id": 1, "version": 99})))
    t.ok(codes(evs) == ["version"], "protocol version 99: version error", evs)
    serving("protocol errors")

    # Thousands of connections opened and dropped, 500 open at a time.
    t0 = time.time()
    total = 0
    for batch in range(6):
        socks = []
        for i in range(500):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.socket)
            if i % 3 == 0:
                s.sendall(hello)
            socks.append(s)
        for s in socks:
            s.close()
        total += len(socks)
    t.diag("%d connections opened and dropped in %.1f s" % (total, time.time() - t0))
    serving("%d connections opened and dropped" % total)

    # Concurrent clients, all waiting for answers at once.
    clients = [d.client() for _ in range(300)]
    for i, cl in enumerate(clients):
        cl.send({"op": "status", "id": 7})
    answered = sum(1 for cl in clients if cl.event().get("ev") == "status")
    for cl in clients:
        cl.close()
    t.ok(answered == 300, "300 concurrent clients all get status (%d)" % answered)

    deadline = time.time() + 5
    while fds() > base_fds and time.time() < deadline:
        time.sleep(0.05)
    t.ok(fds() <= base_fds, "no descriptor leaked (%d, was %d)" % (fds(), base_fds))
    rc = d.stop()
    t.ok(rc == 0, "SIGTERM: clean exit (%s)" % rc, d.log_text())
finally:
    d.cleanup()
sys.exit(t.done())
