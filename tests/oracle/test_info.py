#!/usr/bin/env python3
"""test_info - `ktx-run --info` and `--dequant` on every oracle file.

--info must report what INDEX.json says each model holds (hyper-parameters,
tensor count, parameters, the count of tensors per type) and must work on
the vocabulary-only GGUFs; broken files must fail with a message. --dequant
must match the oracle's SHA-256 for one tensor of every (model, type) pair.
"""
import hashlib
import json
import os
import re
import tempfile

from ktxtest import ORACLE, Tap, program, run

t = Tap()
ktx_run = program("ktx-run")
index = json.load(open(os.path.join(ORACLE, "models", "INDEX.json")))["models"]


def info(path, *extra):
    r = run([ktx_run, "--info", path] + list(extra), text=True)
    return r.returncode, r.stdout, r.stderr


def field(out, name):
    """The value of a 'name:   value' header line."""
    m = re.search(r"^%s:\s+(.*)$" % re.escape(name), out, re.M)
    return m.group(1) if m else None


for name, model in sorted(index.items()):
    path = os.path.join(ORACLE, "models", model["file"])
    rc, out, err = info(path)
    if not t.ok(rc == 0, "%s: --info succeeds" % name, err):
        continue
    t.ok(field(out, "architecture") == "deepseek2", "%s: architecture" % name)
    t.ok(field(out, "name") == model["kv"]["general.name"], "%s: general.name" % name)
    t.ok(field(out, "size") and field(out, "size").startswith("%d bytes" % model["bytes"]),
         "%s: file size" % name, field(out, "size"))
    hp = dict(re.findall(r"^  (\S+)\s+(.*)$", out.split("hyper-parameters")[1].split("\nmodel:")[0], re.M))
    want = {k[len("deepseek2."):]: v for k, v in model["kv"].items() if k.startswith("deepseek2.")}
    bad = []
    for k, v in want.items():
        got = hp.get(k)
        if isinstance(v, bool):
            ok = got == ("true" if v else "false")
        elif isinstance(v, int):
            ok = got == str(v)
        elif isinstance(v, float):
            ok = got is not None and abs(float(got) - v) <= 1e-6 * max(1.0, abs(v))
        else:
            ok = got == '"%s"' % v
        if not ok:
            bad.append("%s: got %s, want %r" % (k, got, v))
    t.ok(not bad and len(hp) == len(want), "%s: all %d hyper-parameters" % (name, len(want)),
         "\n".join(bad) or "got %d keys" % len(hp))
    t.ok(field(out, "tensors") == str(len(model["tensors"])), "%s: tensor count" % name)
    params = 0
    for ti in model["tensors"].values():
        n = 1
        for d in ti["ne"]:
            n *= d
        params += n
    t.ok((field(out, "parameters") or "").startswith("%d " % params), "%s: parameter count" % name,
         field(out, "parameters"))
    types = {k: int(v) for k, v in re.findall(r"^  ([A-Z0-9_]+)\s+(\d+) tensors", out, re.M)}
    t.ok(types == model["type_counts"], "%s: tensors per type" % name,
         "got %r\nwant %r" % (types, model["type_counts"]))
    t.ok((field(out, "vocabulary") or "").startswith("4020 tokens"), "%s: vocabulary" % name)
    dims = model.get("dims")
    if dims:
        layout = "attn_k_b/attn_v_b" if dims["layout"] == "k_b_v_b" else "attn_kv_b"
        t.ok(("%s layout" % layout) in out, "%s: attention layout %s" % (name, layout))
        bias = "correction bias" in out
        t.ok(bias == dims["exp_probs_b"], "%s: correction bias %s" % (name, dims["exp_probs_b"]))

# The -m MODEL --info spelling.
path = os.path.join(ORACLE, "models", "v3-f32.gguf")
r = run([ktx_run, "-m", path, "--info"], text=True)
t.ok(r.returncode == 0 and "block_count" in r.stdout, "-m MODEL --info works too")

# Vocabulary-only files.
vocabs = [("tokenizer/deepseek-v3.gguf", 129280), ("tokenizer/deepseek-v3-cut.gguf", 4020)]
for sub in ("vocab-deepseek-llm", "vocab-deepseek-coder"):
    d = os.path.join(ORACLE, "tokenizer", sub)
    for f in sorted(os.listdir(d)):
        if f.endswith(".gguf"):
            vocabs.append((os.path.join("tokenizer", sub, f), None))
for rel, n in vocabs:
    rc, out, err = info(os.path.join(ORACLE, rel))
    ok = rc == 0 and field(out, "tensors") == "0 (a vocabulary-only file)"
    if n is not None:
        ok = ok and (field(out, "vocabulary") or "").startswith("%d tokens" % n)
    t.ok(ok, "--info on the vocabulary-only %s" % rel, err or out)

# Broken files fail with a message naming the problem, never a crash.
with tempfile.TemporaryDirectory() as tmp:
    src = open(os.path.join(ORACLE, "models", "v2lite-f32.gguf"), "rb").read()
    cases = [
        ("truncated in the metadata", src[:3000], "left in the file"),
        ("truncated in the tensor data", src[:len(src) // 2], "past the end of the file"),
        ("not a GGUF file", b"PK\x03\x04" + src[4:4096], "not a GGUF file"),
        ("GGUF version 1", src[:4] + b"\x01\x00\x00\x00" + src[8:], "version 1"),
    ]
    for what, data, want in cases:
        p = os.path.join(tmp, "bad.gguf")
        open(p, "wb").write(data)
        rc, out, err = info(p)
        t.ok(rc == 1 and want in err and "bad.gguf" in err, "--info refuses a file %s" % what, err)
    rc, out, err = info(os.path.join(tmp, "absent.gguf"))
    t.ok(rc == 1 and "absent.gguf" in err, "--info on a missing file names it", err)

    # --dequant: one tensor of every (model, type) against the oracle hashes.
    for name in sorted(index):
        path = os.path.join(ORACLE, "models", name + ".gguf")
        hashes = json.load(open(os.path.join(ORACLE, "dequant", name + ".json")))
        seen = set()
        for tname, h in sorted(hashes.items()):
            if h["type"] in seen:
                continue
            seen.add(h["type"])
            out = os.path.join(tmp, "t.f32")
            r = run([ktx_run, "-m", path, "--dequant", tname, out], text=True)
            got = hashlib.sha256(open(out, "rb").read()).hexdigest() if r.returncode == 0 else None
            t.ok(got == h["dequant_sha256"], "%s: --dequant %s (%s)" % (name, tname, h["type"]),
                 r.stderr)
    r = run([ktx_run, "-m", path, "--dequant", "blk.0.attn_norm", os.path.join(tmp, "x")], text=True)
    t.ok(r.returncode == 1 and "'blk.0.attn_norm'" in r.stderr and
         "did you mean 'blk.0.attn_norm.weight'" in r.stderr,
         "--dequant of an absent tensor names it and suggests the right name", r.stderr)

raise SystemExit(t.done())
