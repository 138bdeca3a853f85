"""ktxd_harness - start a real ktxd for a test and talk to it.

A Daemon runs ktxd on a temporary socket and database with an oracle model;
Client speaks the wire protocol directly (4-byte big-endian length + one
msgpack map) with the standard-library msgpack of tests/client/ktxwire.py,
which the client's tests use too. Tests that exercise the user-facing
commands run the real ktxctl instead.
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import ktxtest
from client.ktxwire import pack, unpack  # noqa: F401 (tests import them from here)

MODEL = os.path.join(ktxtest.ORACLE, "models", "v3-f32.gguf")


# ---- framing (msgpack comes from tests/client/ktxwire.py) -----------------

def frame(payload):
    """A frame: length prefix + payload bytes."""
    return struct.pack(">I", len(payload)) + payload


# ---- a client speaking the protocol ---------------------------------------

class Client:
    """One connection; request() sends a map and returns the events answering it."""

    def __init__(self, path, hello=True, timeout=20):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)  # blocking: waits while the backlog is full
        self.sock.settimeout(timeout)
        self.buf = b""
        self.next_id = 1
        if hello:
            ev = self.request({"op": "hello", "version": 1, "client": "ktxd-test"})
            assert ev[-1]["ev"] == "welcome", ev

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, msg):
        self.send_raw(frame(pack(msg)))

    def event(self):
        """The next event, or None when the server closed the connection."""
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    obj, _ = unpack(self.buf[4:4 + n])
                    self.buf = self.buf[4 + n:]
                    return obj
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk

    def request(self, msg, until=("welcome", "ok", "end", "error", "done", "accepted",
                                  "result")):
        """Sends msg with a fresh id; returns its events up to a final one."""
        msg = dict(msg)
        msg.setdefault("id", self.next_id)
        self.next_id += 1
        self.send(msg)
        out = []
        while True:
            ev = self.event()
            if ev is None:
                return out
            out.append(ev)
            if ev.get("ev") in until:
                return out

    def close(self):
        self.sock.close()


# ---- the daemon ------------------------------------------------------------

class Daemon:
    """A ktxd on a temporary socket and database; stop() ends it."""

    def __init__(self, args=(), model=MODEL, tmp=None, env=None, wait=True):
        self.tmp = tmp or tempfile.mkdtemp(prefix="ktxd-test-")
        os.makedirs(self.tmp, exist_ok=True)
        os.chmod(self.tmp, 0o755)
        self.socket = os.path.join(self.tmp, "ktxd.sock")
        self.database = os.path.join(self.tmp, "ktxd.db")
        self.log = open(os.path.join(self.tmp, "ktxd.log"), "ab")
        self.cmd = [ktxtest.program("ktxd"), "--model", model, "--socket", self.socket,
                    "--database", self.database, "--threads", "1",
                    "--socket-mode", "0666"] + list(args)
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=self.log,
                                     env=env, start_new_session=True)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=60):
        """Waits until the socket answers and the model is loaded."""
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("ktxd exited with %d:\n%s" % (self.proc.returncode,
                                                                 self.log_text()))
            try:
                c = Client(self.socket, timeout=5)
                ev = c.request({"op": "status"})
                c.close()
                if ev and ev[0].get("state") == "ready":
                    return
            except (OSError, AssertionError):
                pass
            time.sleep(0.05)
        raise RuntimeError("ktxd did not become ready:\n" + self.log_text())

    def client(self, **kw):
        return Client(self.socket, **kw)

    def alive(self):
        return self.proc.poll() is None

    def log_text(self):
        self.log.flush()
        with open(os.path.join(self.tmp, "ktxd.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals ktxd and returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def restart(self, args=()):
        """A new ktxd on the same socket and database."""
        return Daemon(args=args, tmp=self.tmp)

    def cleanup(self):
        self.stop(signal.SIGKILL)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def ktxctl(sock, *args, input=None, uid=None, groups=None, timeout=60, env=None):
    """Runs the real ktxctl (as uid, with only the supplementary groups given,
    via setpriv); returns CompletedProcess."""
    cmd = [ktxtest.program("ktxctl"), "--socket", sock] + list(args)
    if uid is not None:
        grp = ["--groups=" + ",".join(map(str, groups))] if groups else ["--clear-groups"]
        cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid] + grp + cmd
    return subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, env=env)
