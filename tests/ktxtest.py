"""ktxtest - shared helpers for the Python-driven tests (TAP output, paths).

Python tests drive the real ktx programs (ktx-run, ktxd, ktxctl) through the
command-line contracts the issues fix, and compare with ../shared/oracle.
"""
import os
import subprocess
import sys

SRCDIR = os.environ.get("KTX_SRCDIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDDIR = os.environ.get("KTX_BUILDDIR", SRCDIR)
ORACLE = os.environ.get("KTX_ORACLE", os.path.join(SRCDIR, "..", "shared", "oracle"))


def program(name):
    """Path of a built ktx program."""
    return os.path.join(BUILDDIR, name)


def repack_level():
    """True when ktx repacks weights here: the CPU has AVX-512 F/BW/VL and
    VNNI and KTX_CPU does not lower the level below it."""
    if os.environ.get("KTX_CPU") in ("generic", "avx2"):
        return False
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    return all(f in flags for f in (" avx512f", " avx512bw", " avx512vl", " avx512_vnni"))


class Tap:
    """Prints TAP lines; done() prints the plan and returns the exit status."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=None):
        self.n += 1
        if not cond:
            self.failed += 1
        print(("ok" if cond else "not ok") + " %d - %s" % (self.n, name))
        if not cond and diag:
            for line in str(diag).splitlines():
                print("# " + line)
        sys.stdout.flush()
        return cond

    def diag(self, msg):
        for line in str(msg).splitlines():
            print("# " + line)

    def done(self):
        print("1..%d" % self.n)
        return 1 if self.failed else 0


def run(args, **kw):
    """Runs a command, returns CompletedProcess (bytes unless text=True)."""
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def ktx_run(args):
    """ktx-run on 2 threads with args."""
    return run([program("ktx-run"), "-t", "2"] + args)


def ktx_logits(gguf, ids, out, extra):
    """The raw float32 logits of token list ids (a comma string) through
    ktx-run --logits with extra options, via the scratch file out; b"" when
    the run fails."""
    r = ktx_run(["-m", gguf, "--tokens", ids, "--logits", out] + extra)
    if r.returncode != 0:
        return b""
    with open(out, "rb") as f:
        data = f.read()
    os.unlink(out)
    return data
