#!/usr/bin/env python3
"""test_ktxd_cli - ktxd's command-line contract: --help, --version, exit
statuses, configuration errors naming file, line and key, command-line
options winning over the file, a model that cannot be loaded, a second ktxd
refused on a live socket, a stale socket replaced, a file that is not a
socket left alone."""
import os
import shutil
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktxtest  # noqa: E402
from ktxd_harness import MODEL, Daemon  # noqa: E402

t = ktxtest.Tap()
ktxd = ktxtest.program("ktxd")
tmp = tempfile.mkdtemp(prefix="ktxd-cli-")
d = None
try:
    r = ktxtest.run([ktxd, "--help"])
    out = r.stdout.decode()
    t.ok(r.returncode == 0 and "--socket-mode" in out and "--database" in out,
         "--help prints the usage and exits 0")
    r = ktxtest.run([ktxd, "--version"])
    t.ok(r.returncode == 0 and r.stdout.startswith(b"ktxd "), "--version", r.stdout)
    r = ktxtest.run([ktxd, "--no-such-option"])
    t.ok(r.returncode == 2, "an unknown option exits 2", r.stderr)

    conf = os.path.join(tmp, "ktxd.conf")
    with open(conf, "w") as f:
        f.write("# settings\nthreads = 2\nqueue_max = lots\n")
    r = ktxtest.run([ktxd, "--config", conf, "--model", MODEL])
    err = r.stderr.decode()
    t.ok(r.returncode == 2 and conf + ":3" in err and "queue_max" in err,
         "a bad value exits 2 naming the file, line and key", err)

    sock = os.path.join(tmp, "s.sock")
    with open(conf, "w") as f:
        f.write("socket = %s\nmodel = /nonexistent.gguf\nthreads = 1\n" % sock)
    db = os.path.join(tmp, "x.db")
    r = ktxtest.run([ktxd, "--config", conf, "--database", db], timeout=30)
    t.ok(r.returncode == 1 and b"/nonexistent.gguf" in r.stderr,
         "a model that cannot be loaded exits 1 naming it", r.stderr)
    t.ok(not os.path.exists(sock), "and leaves no socket behind")

    # The file names the socket, the command line the model: both apply.
    d = Daemon(args=["--config", conf, "--model", MODEL], tmp=os.path.join(tmp, "d"))
    t.ok(d.alive(), "a command-line option wins over the file")
    r = ktxtest.run([ktxd, "--model", MODEL, "--socket", d.socket, "--database", db],
                    timeout=30)
    t.ok(r.returncode == 1 and b"another server" in r.stderr,
         "a second ktxd on a live socket is refused", r.stderr)
    t.ok(d.client().request({"op": "ping"})[-1].get("ev") == "ok",
         "and the first one goes on serving")
    d.stop()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(d.socket)  # left behind by a server that died
    stale.close()
    d = d.restart()
    t.ok(d.alive(), "a stale socket file is replaced")
    d.stop()
    other = os.path.join(tmp, "not-a-socket")
    open(other, "w").close()
    r = ktxtest.run([ktxd, "--model", MODEL, "--socket", other, "--database", db], timeout=30)
    t.ok(r.returncode == 1 and b"not a socket" in r.stderr and os.path.exists(other),
         "a file that is not a socket is left alone", r.stderr)
finally:
    if d is not None:
        d.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(t.done())
