#!/usr/bin/env python3
"""test_units - the systemd units pass `systemd-analyze verify` with nothing on
stderr (it exits 0 on unknown keys, so stderr is what counts), and the
sysusers.d and tmpfiles.d snippets apply to an empty root."""
import os
import shutil
import sys
import tempfile

import ktxtest

t = ktxtest.Tap()
src = os.path.join(ktxtest.SRCDIR, "systemd")
ktxd = ktxtest.program("ktxd")


def verify(tmp, service_text, socket_text):
    with open(os.path.join(tmp, "ktxd.service"), "w") as f:
        f.write(service_text)
    with open(os.path.join(tmp, "ktxd.socket"), "w") as f:
        f.write(socket_text)
    return ktxtest.run(["systemd-analyze", "verify", "--man=no",
                        os.path.join(tmp, "ktxd.service"), os.path.join(tmp, "ktxd.socket")],
                       cwd=tmp)


with open(os.path.join(src, "ktxd.service.in")) as f:
    service = f.read().replace("@sbindir@", os.path.dirname(ktxd))
with open(os.path.join(src, "ktxd.socket")) as f:
    sock = f.read()

if shutil.which("systemd-analyze") is None:
    t.ok(False, "systemd-analyze is installed (apt-get install systemd)")
    sys.exit(t.done())

tmp = tempfile.mkdtemp(prefix="ktx-units-")
try:
    r = verify(tmp, service, sock)
    t.ok(r.returncode == 0 and r.stderr == b"", "systemd-analyze verify: no complaints",
         r.stderr.decode())
    bad = verify(tmp, service.replace("[Service]\n", "[Service]\nNoSuchKey=1\n"), sock)
    t.ok(bad.stderr != b"", "an unknown key does show on stderr (the check can fail)")

    def has(text, line):
        return line in text.splitlines()

    t.ok(has(sock, "SocketGroup=ktx") and has(sock, "SocketMode=0660"),
         "the socket is group ktx, mode 0660")
    t.ok(has(service, "Type=notify") and has(service, "User=ktx"),
         "the service notifies readiness and runs as ktx")
    t.ok(has(service, "ProtectSystem=strict") and has(service, "StateDirectory=ktx"),
         "read-only system, state in /var/lib/ktx")
    t.ok(not has(service, "PrivateDevices=yes") and has(service, "DevicePolicy=closed"),
         "GPU nodes reachable: no PrivateDevices, a closed device policy instead")
    t.ok(has(service, "RuntimeDirectoryPreserve=yes"),
         "the socket's directory outlives a stop of the service")
    t.ok(has(service, "LimitMEMLOCK=infinity"), "pinned memory allowed")

    root = os.path.join(tmp, "root")
    os.makedirs(os.path.join(root, "etc"))
    r = ktxtest.run(["systemd-sysusers", "--root=" + root,
                     os.path.join(src, "sysusers.d", "ktx.conf")])
    with open(os.path.join(root, "etc", "passwd")) as f:
        passwd = f.read()
    t.ok(r.returncode == 0 and "\nktx:" in "\n" + passwd, "sysusers.d creates user ktx",
         r.stderr.decode())
    r = ktxtest.run(["systemd-tmpfiles", "--create", "--root=" + root,
                     os.path.join(src, "tmpfiles.d", "ktx.conf")])
    t.ok(r.returncode == 0 and os.path.isdir(os.path.join(root, "run", "ktx")),
         "tmpfiles.d creates /run/ktx", r.stderr.decode())
finally:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(t.done())
