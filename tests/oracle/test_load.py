#!/usr/bin/env python3
"""test_load - ktx-run --load: the weights read into memory or mapped.

Both ways compute from the same bytes, so every path's logits are the same
bit for bit on every oracle model, with auto (the default) among them;
--bench says which way was taken; a bad mode is a usage error and a
missing file is named either way.
"""
import json
import os
import sys
import tempfile

from ktxtest import ORACLE, Tap, program, run


def ktx(args):
    return run([program("ktx-run"), "-t", "2"] + args)


def logits(gguf, ids, out, extra):
    r = ktx(["-m", gguf, "--tokens", ids, "--logits", out] + extra)
    if r.returncode != 0:
        return b""
    with open(out, "rb") as f:
        data = f.read()
    os.unlink(out)
    return data


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
        # The reference path reads weights through the same handle: one
        # model shows it.
        for path in ("fast", "ref") if name == "v3mla-q8q4" else ("fast",):
            got = {mode: logits(gguf, ids, out, ["--path", path] +
                                ([] if mode == "default" else ["--load", mode]))
                   for mode in ("default", "read", "mmap")}
            tap.ok(got["read"] and got["read"] == got["mmap"] == got["default"],
                   "%s --path %s: read, mmap and the default give the same logits"
                   % (name, path))
    os.rmdir(tmp)

    gguf = os.path.join(ORACLE, "models", "v3mla-q8q4.gguf")
    for mode in ("read", "mmap"):
        r = ktx(["-m", gguf, "--bench", "--prompt-tokens", "4", "--gen-tokens", "2",
                 "--load", mode])
        try:
            load = json.loads(r.stdout.decode()).get("load")
        except ValueError:
            load = None
        tap.ok(r.returncode == 0 and load == mode, "--bench --load %s reports it" % mode,
               r.stderr.decode())
    r = ktx(["-m", gguf, "--tokens", ids, "--greedy", "1", "--load", "ram"])
    tap.ok(r.returncode == 2 and b"--load" in r.stderr, "--load ram is a usage error",
           r.stderr.decode())
    for mode in ("read", "mmap"):
        r = ktx(["-m", "/nonexistent/m.gguf", "--tokens", "1", "--greedy", "1",
                 "--load", mode])
        tap.ok(r.returncode == 1 and b"/nonexistent/m.gguf" in r.stderr,
               "--load %s names a missing file" % mode, r.stderr.decode())
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
