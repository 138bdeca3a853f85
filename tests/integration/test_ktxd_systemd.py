#!/usr/bin/env python3
"""test_ktxd_systemd - socket activation and sd_notify.

ktxd under systemd-socket-activate takes the passed socket and answers on
it. With NOTIFY_SOCKET pointing at a datagram socket of this test, ktxd
reports STATUS= while loading, READY=1 with a serving STATUS= once the
model is loaded, WATCHDOG=1 when WATCHDOG_USEC is set, and STOPPING=1 on
SIGTERM. A socket ktxd binds itself gets --socket-mode.
"""
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktxtest  # noqa: E402
from ktxd_harness import MODEL, Client, Daemon  # noqa: E402

t = ktxtest.Tap()
tmp = tempfile.mkdtemp(prefix="ktxd-systemd-")
ktxd = ktxtest.program("ktxd")
procs = []
try:
    # Socket activation.
    sock = os.path.join(tmp, "activated.sock")
    p = subprocess.Popen(["systemd-socket-activate", "-l", sock, ktxd, "--model", MODEL,
                          "--database", os.path.join(tmp, "a.db"),
                          "--socket", os.path.join(tmp, "unused.sock")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    procs.append(p)
    end = time.time() + 10
    while not os.path.exists(sock) and time.time() < end:
        time.sleep(0.02)
    ev = None
    while time.time() < end + 20:
        try:
            c = Client(sock, timeout=20)
            ev = c.request({"op": "status"})
            c.close()
            if ev and ev[0].get("state") == "ready":
                break
        except (OSError, AssertionError):
            pass
        time.sleep(0.05)
    t.ok(ev and ev[0].get("state") == "ready", "ktxd answers on the socket systemd passed", ev)
    t.ok(not os.path.exists(os.path.join(tmp, "unused.sock")),
         "and does not bind its own")
    os.killpg(p.pid, signal.SIGTERM)
    _, err = p.communicate(timeout=20)
    t.ok(b"socket from systemd" in err, "it says where it listens", err.decode()[-500:])

    # sd_notify through a fake NOTIFY_SOCKET.
    nsock = os.path.join(tmp, "notify")
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.bind(nsock)
    n.settimeout(20)
    env = dict(os.environ, NOTIFY_SOCKET=nsock, WATCHDOG_USEC="300000")
    d = Daemon(tmp=os.path.join(tmp, "n"), env=env, wait=False)
    msgs = []
    ready_at = None
    end = time.time() + 30
    while time.time() < end:
        try:
            m = n.recv(4096).decode()
        except socket.timeout:
            break
        msgs.append(m)
        if "READY=1" in m and ready_at is None:
            ready_at = len(msgs)
        if ready_at is not None and sum("WATCHDOG=1" in x for x in msgs) >= 2:
            break
    text = "\n".join(msgs)
    t.ok(any("STATUS=loading" in m for m in msgs[:ready_at or len(msgs)]),
         "STATUS= lines while loading", text[:500])
    t.ok(ready_at is not None and "STATUS=serving" in msgs[ready_at - 1],
         "READY=1 with a serving status once the model is loaded", text[-500:])
    t.ok(sum("WATCHDOG=1" in m for m in msgs) >= 2, "WATCHDOG=1 pings with WATCHDOG_USEC set")
    c = d.client()
    ev = c.request({"op": "status"})
    t.ok(ev and ev[0].get("state") == "ready", "the model was loaded when READY=1 came")
    c.close()
    mode = stat.S_IMODE(os.stat(d.socket).st_mode)
    t.ok(mode == 0o666, "a bound socket gets --socket-mode (%o)" % mode)
    d.proc.send_signal(signal.SIGTERM)
    stopping = False
    while not stopping:
        try:
            stopping = "STOPPING=1" in n.recv(4096).decode()
        except socket.timeout:
            break
    t.ok(stopping, "STOPPING=1 on SIGTERM")
    t.ok(d.proc.wait(20) == 0, "then a clean exit")
    t.ok(not os.path.exists(d.socket), "the socket it bound is removed")
    d.cleanup()
    n.close()
finally:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(t.done())
