"""ktxd_harness - start a real ktxd for a test and talk to it.

A Daemon runs ktxd on a temporary socket and database with an oracle model;
Client speaks the wire protocol directly (4-byte big-endian length + one
msgpack map), with a minimal msgpack written here because the tests may use
the Python standard library only. Tests that exercise the user-facing
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

MODEL = os.path.join(ktxtest.ORACLE, "models", "v3-f32.gguf")


# ---- msgpack, the subset the protocol uses --------------------------------

def pack(obj):
    """Encodes None, bool, int, float, str, bytes, list, dict."""
    if obj is None:
        return b"\xc0"
    if obj is True:
        return b"\xc3"
    if obj is False:
        return b"\xc2"
    if isinstance(obj, int):
        if 0 <= obj < 128:
            return bytes([obj])
        if -32 <= obj < 0:
            return struct.pack("b", obj)
        if 0 <= obj < 2 ** 64:
            return b"\xcf" + struct.pack(">Q", obj)
        return b"\xd3" + struct.pack(">q", obj)
    if isinstance(obj, float):
        return b"\xcb" + struct.pack(">d", obj)
    if isinstance(obj, str):
        b = obj.encode("utf-8")
        if len(b) < 32:
            return bytes([0xa0 | len(b)]) + b
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(obj, bytes):
        return b"\xc6" + struct.pack(">I", len(obj)) + obj
    if isinstance(obj, (list, tuple)):
        return b"\xdd" + struct.pack(">I", len(obj)) + b"".join(pack(x) for x in obj)
    if isinstance(obj, dict):
        out = b"\xdf" + struct.pack(">I", len(obj))
        for k, v in obj.items():
            out += pack(k) + pack(v)
        return out
    raise TypeError(type(obj))


def unpack(buf, i=0):
    """Decodes one object at buf[i:]; returns (obj, next index)."""
    t = buf[i]
    i += 1
    if t <= 0x7f:
        return t, i
    if t >= 0xe0:
        return t - 256, i
    if 0x80 <= t <= 0x8f:
        return _map(buf, i, t & 0x0f)
    if 0x90 <= t <= 0x9f:
        return _arr(buf, i, t & 0x0f)
    if 0xa0 <= t <= 0xbf:
        n = t & 0x1f
        return buf[i:i + n].decode("utf-8"), i + n
    fixed = {0xc0: None, 0xc2: False, 0xc3: True}
    if t in fixed:
        return fixed[t], i
    ints = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q",
            0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q", 0xca: ">f", 0xcb: ">d"}
    if t in ints:
        fmt = ints[t]
        n = struct.calcsize(fmt)
        return struct.unpack(fmt, buf[i:i + n])[0], i + n
    lens = {0xd9: ">B", 0xda: ">H", 0xdb: ">I", 0xc4: ">B", 0xc5: ">H", 0xc6: ">I"}
    if t in lens:
        fmt = lens[t]
        k = struct.calcsize(fmt)
        n = struct.unpack(fmt, buf[i:i + k])[0]
        raw = buf[i + k:i + k + n]
        return (raw.decode("utf-8") if t in (0xd9, 0xda, 0xdb) else raw), i + k + n
    if t in (0xdc, 0xdd):
        k = 2 if t == 0xdc else 4
        return _arr(buf, i + k, struct.unpack(">H" if k == 2 else ">I", buf[i:i + k])[0])
    if t in (0xde, 0xdf):
        k = 2 if t == 0xde else 4
        return _map(buf, i + k, struct.unpack(">H" if k == 2 else ">I", buf[i:i + k])[0])
    raise ValueError("msgpack type 0x%02x" % t)


def _arr(buf, i, n):
    out = []
    for _ in range(n):
        v, i = unpack(buf, i)
        out.append(v)
    return out, i


def _map(buf, i, n):
    out = {}
    for _ in range(n):
        k, i = unpack(buf, i)
        v, i = unpack(buf, i)
        out[k] = v
    return out, i


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
