#!/usr/bin/env python3
"""test_load - ktx-run --load: the weights read into memory or mapped, and
read weights repacked for the fast path's interleaved kernels.

Read and mapped weights are the same bytes, so with the file's layout
(--no-repack, and always on the reference path) the logits are the same
bit for bit on every oracle model, the default (auto) among them. Repacked
weights change only the summation order: test_kl.py and test_kl_demo.py
gate that path's accuracy (it is the default), test_batch_fast its
batched-equals-alone bits. Here: --bench reports the mode and how many
bytes were repacked (none when mapped or with --no-repack), a bad mode is a
usage error and a missing file is named either way.
"""
import json
import os
import sys
import tempfile

from ktxtest import ORACLE, Tap, ktx_logits, ktx_run, repack_level


def main():
    tap = Tap()
    with open(os.path.join(ORACLE, "prompts.json")) as f:
        prompts = json.load(f)["prompts"]
    with open(os.path.join(ORACLE, "models", "INDEX.json")) as f:
        index = json.load(f)["models"]
    p = next(p for p in prompts if p["name"] == "p_short")
    ids = ",".join(str(i) for i in p["tokens"])
    tmp = tempfile.mkdtemp(prefix="ktx-load-")
    out = os.path.join(tmp, "l.f32")
    for name in sorted(index):
        gguf = os.path.join(ORACLE, "models", name + ".gguf")
        keep = ["--no-repack"]
        got = {mode: ktx_logits(gguf, ids, out, keep +
                            ([] if mode == "default" else ["--load", mode]))
               for mode in ("default", "read", "mmap")}
        tap.ok(got["read"] and got["read"] == got["mmap"] == got["default"],
               "%s --no-repack: read, mmap and the default give the same logits" % name)
        ref = ktx_logits(gguf, ids, out, ["--path", "ref"])
        tap.ok(ref and ref == ktx_logits(gguf, ids, out, ["--path", "ref", "--load", "mmap"]),
               "%s --path ref: repacking never touches the reference path" % name)
    os.rmdir(tmp)

    # v3ud-q2kxl holds Q2_K..Q6_K matrices of 256-wide rows: repackable
    # wherever this CPU has the kernels (AVX-512).
    gguf = os.path.join(ORACLE, "models", "v3ud-q2kxl.gguf")
    rp = {}
    for mode, extra in (("read", []), ("mmap", []), ("read", ["--no-repack"])):
        r = ktx_run(["-m", gguf, "--bench", "--prompt-tokens", "4", "--gen-tokens", "2",
                 "--load", mode] + extra)
        try:
            js = json.loads(r.stdout.decode())
        except ValueError:
            js = {}
        tap.ok(r.returncode == 0 and js.get("load") == mode,
               "--bench --load %s reports the mode" % " ".join([mode] + extra),
               r.stderr.decode())
        rp[mode + "".join(extra)] = js.get("repacked_bytes", -1)
    tap.ok(rp["mmap"] == 0 and rp["read--no-repack"] == 0,
           "nothing is repacked when mapped or with --no-repack (%s)" % rp)
    tap.ok(rp["read"] > 0 or not repack_level(),
           "read weights are repacked on this CPU (%s bytes)" % rp["read"])
    r = ktx_run(["-m", gguf, "--tokens", ids, "--greedy", "1", "--load", "ram"])
    tap.ok(r.returncode == 2 and b"--load" in r.stderr, "--load ram is a usage error",
           r.stderr.decode())
    for mode in ("read", "mmap"):
        r = ktx_run(["-m", "/nonexistent/m.gguf", "--tokens", "1", "--greedy", "1",
                 "--load", mode])
        tap.ok(r.returncode == 1 and b"/nonexistent/m.gguf" in r.stderr,
               "--load %s names a missing file" % mode, r.stderr.decode())
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
