#!/usr/bin/env python3
"""test_mkmodel - ktx-mkmodel writes the oracle's layouts, deterministically.

The files are read back with a small GGUF parser written here (independent
of ktx's reader): the three oracle models that record how they were made
(INDEX.json "dims") are rebuilt and must match tensor for tensor (names,
order, types, shapes) and key for key; a quantized mix must match
v3ud-q2kxl's shapes and types; both routing styles with both attention
layouts must load; the same seed must give the same bytes whatever the
thread count; random blocks must dequantize to finite values of the
intended spread.
"""
import array
import hashlib
import json
import math
import os
import re
import struct
import tempfile

from ktxtest import ORACLE, Tap, program, run

t = Tap()
mkmodel = program("ktx-mkmodel")
ktx_run = program("ktx-run")
index = json.load(open(os.path.join(ORACLE, "models", "INDEX.json")))["models"]
CUT = os.path.join(ORACLE, "tokenizer", "deepseek-v3-cut.gguf")

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
          10: "<Q", 11: "<q", 12: "<d"}
TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 8: "Q8_0", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K",
         13: "Q5_K", 14: "Q6_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S",
         23: "IQ4_XS", 29: "IQ1_M", 30: "BF16"}


def read_gguf(path):
    """(metadata dict in file order, [(name, type, ne)]) of a GGUF file."""
    b = open(path, "rb").read()
    pos = [4]

    def take(fmt):
        v = struct.unpack_from(fmt, b, pos[0])[0]
        pos[0] += struct.calcsize(fmt)
        return v

    def string():
        n = take("<Q")
        s = b[pos[0]:pos[0] + n].decode("utf-8", "surrogateescape")
        pos[0] += n
        return s

    def value(vt):
        if vt == 8:
            return string()
        if vt == 9:
            et, n = take("<I"), take("<Q")
            return [value(et) for _ in range(n)]
        return take(SCALAR[vt])

    assert b[:4] == b"GGUF" and take("<I") == 3
    n_t, n_kv = take("<Q"), take("<Q")
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("<I"))
    tensors = []
    for _ in range(n_t):
        name = string()
        ne = [take("<Q") for _ in range(take("<I"))]
        ty = take("<I")
        take("<Q")
        tensors.append((name, TYPES.get(ty, ty), ne))
    return kv, tensors


def make(out, *args):
    r = run([mkmodel, "-q", "-o", out, "--vocab", CUT] + [str(a) for a in args], text=True)
    return r.returncode == 0, r.stderr


def same_value(a, b):
    if isinstance(b, float):
        return isinstance(a, float) and abs(a - b) <= 1e-6 * max(1.0, abs(b))
    return a == b and type(a) is type(b)


def args_from_dims(d):
    a = ["--embd", d["n_embd"], "--layers", d["n_layer"], "--nextn", d["n_nextn"],
         "--dense", d["n_dense_lead"], "--heads", d["n_head"], "--q-lora", d["q_lora"],
         "--kv-lora", d["kv_lora"], "--rope", d["qk_rope"], "--nope", d["qk_nope"],
         "--v-dim", d["v_head"], "--ff", d["n_ff"], "--expert-ff", d["n_ff_exp"],
         "--experts", d["n_expert"], "--experts-used", d["n_expert_used"],
         "--shared", d["n_shared"], "--groups", d["n_group"], "--groups-used", d["n_group_used"],
         "--routing", "v3" if d["gating"] == "sigmoid" else "v2",
         "--attn", "k_b" if d["layout"] == "k_b_v_b" else "kv_b",
         "--scale", d["weights_scale"], "--mscale", d["yarn"]["mscale_all_dim"],
         "--yarn-factor", d["yarn"]["factor"], "--ctx", d["ctx_len"], "--type", d["dtype"]]
    if d["yarn"]["beta_keys"]:
        a.append("--yarn-beta")
    return a


def compare_kv(name, kv, want):
    skip = ("general.name", "general.size_label")
    bad = ["%s: got %r, want %r" % (k, kv.get(k), v) for k, v in want.items()
           if k not in skip and not same_value(kv.get(k), v)]
    extra = [k for k in kv if k not in want and not k.startswith("tokenizer.")]
    t.ok(not bad and not extra, "%s: metadata matches the oracle's" % name,
         "\n".join(bad + ["extra key " + k for k in extra]))


with tempfile.TemporaryDirectory() as tmp:
    vocab_kv, _ = read_gguf(CUT)

    # The oracle models with a recorded recipe, rebuilt.
    for name in ("v2lite-f32", "v3-f32", "v3mla-f16"):
        m = index[name]
        out = os.path.join(tmp, name + ".gguf")
        ok, err = make(out, *args_from_dims(m["dims"]))
        if not t.ok(ok, "%s: ktx-mkmodel builds it" % name, err):
            continue
        kv, tensors = read_gguf(out)
        want = [(k, v["type"], v["ne"]) for k, v in m["tensors"].items()]
        t.ok(tensors == want, "%s: the same tensors, types, shapes and order" % name,
             "\n".join("got %r want %r" % (a, b) for a, b in zip(tensors, want) if a != b)
             or "got %d tensors, want %d" % (len(tensors), len(want)))
        compare_kv(name, kv, m["kv"])
        tok = {k: v for k, v in kv.items() if k.startswith("tokenizer.")}
        t.ok(tok == {k: v for k, v in vocab_kv.items() if k.startswith("tokenizer.")},
             "%s: the vocabulary is copied" % name)

    # An UD-Q2_K_XL-like mix on v3ud-q2kxl's widths.
    m = index["v3ud-q2kxl"]
    out = os.path.join(tmp, "ud.gguf")
    ok, err = make(out, "--embd", 256, "--q-lora", 256, "--kv-lora", 256, "--ff", 512,
                   "--expert-ff", 256, "--experts", 8, "--experts-used", 2,
                   "--type-experts", "q2_K", "--type-experts-down", "q3_K", "--type-attn", "q4_K",
                   "--type-dense", "q4_K", "--type-shexp", "q5_K", "--type-embd", "q6_K",
                   "--type-output", "q6_K", "--fill", "blocks")
    if t.ok(ok, "ud mix: builds", err):
        kv, tensors = read_gguf(out)
        got = {n: (ty, ne) for n, ty, ne in tensors}
        want = {n: (v["type"], v["ne"]) for n, v in m["tensors"].items()}
        # Its shared down projection is Q6_K; ktx-mkmodel has one type for shared experts.
        diff = [n for n in want if got.get(n) != want[n] and
                not (n.endswith("ffn_down_shexp.weight") and got.get(n) == ("Q5_K", want[n][1]))]
        t.ok(not diff and len(got) == len(want), "ud mix: v3ud-q2kxl's tensors and types",
             "\n".join("%s: got %r want %r" % (n, got.get(n), want[n]) for n in diff))
        want_kv = dict(m["kv"])
        for k in list(want_kv):
            if k.startswith("quantize."):
                del want_kv[k]
        compare_kv("ud mix", kv, want_kv)

    # Both routing styles with both attention layouts load and read back.
    for routing in ("v2", "v3"):
        for attn in ("kv_b", "k_b"):
            what = "routing %s, attention %s" % (routing, attn)
            out = os.path.join(tmp, "r.gguf")
            ok, err = make(out, "--routing", routing, "--attn", attn, "--groups", 4,
                           "--groups-used", 2, "--embd", 256, "--kv-lora", 256,
                           "--expert-ff", 256, "--type-experts", "q4_K", "--type-attn", "q8_0",
                           "--fill", "blocks")
            if not t.ok(ok, "%s: builds" % what, err):
                continue
            kv, tensors = read_gguf(out)
            names = {n: (ty, ne) for n, ty, ne in tensors}
            ok = (("blk.1.exp_probs_b.bias" in names) == (routing == "v3") and
                  kv["deepseek2.expert_gating_func"] == (2 if routing == "v3" else 1) and
                  ("deepseek2.expert_weights_norm" in kv) == (routing == "v3"))
            t.ok(ok, "%s: routing tensors and keys" % what)
            if attn == "k_b":
                ok = (names.get("blk.0.attn_k_b.weight") == ("Q8_0", [32, 256, 8]) and
                      names.get("blk.0.attn_v_b.weight") == ("Q8_0", [256, 32, 8]) and
                      "blk.0.attn_kv_b.weight" not in names and
                      kv["deepseek2.attention.head_count_kv"] == 1 and
                      kv["deepseek2.attention.key_length"] == 256 + 16 and
                      kv["deepseek2.attention.key_length_mla"] == 48)
            else:
                ok = (names.get("blk.0.attn_kv_b.weight") == ("Q8_0", [256, 512]) and
                      kv["deepseek2.attention.head_count_kv"] == 8 and
                      kv["deepseek2.attention.key_length"] == 48)
            t.ok(ok, "%s: attention tensors and keys" % what)
            r = run([ktx_run, "--info", out], text=True)
            t.ok(r.returncode == 0 and re.search(r"^  Q4_K +6 tensors", r.stdout, re.M),
                 "%s: ktx-run --info reads it" % what, r.stderr)

    # Determinism: the same seed gives the same bytes, whatever the thread count.
    def digest(seed, threads, fill):
        out = os.path.join(tmp, "d%d-%d-%s.gguf" % (seed, threads, fill))
        ok, err = make(out, "--seed", seed, "-t", threads, "--fill", fill, "--embd", 256,
                       "--q-lora", 256, "--kv-lora", 256, "--experts", 4, "--expert-ff", 256,
                       "--experts-used", 2, "--layers", 2, "--type-experts", "q2_K", "--type-attn", "iq4_xs",
                       "--type-embd", "q6_K", "--type-dense", "q4_0")
        return hashlib.sha256(open(out, "rb").read()).hexdigest() if ok else err
    for fill in ("quantize", "blocks"):
        a, b, c = digest(7, 1, fill), digest(7, 2, fill), digest(8, 2, fill)
        t.ok(a == b, "--fill %s: seed 7 gives the same file with 1 and 2 threads" % fill)
        t.ok(a != c, "--fill %s: seed 8 gives another file" % fill)

    # Random blocks of every type ktx-mkmodel makes dequantize to sensible values.
    out = os.path.join(tmp, "blocks.gguf")
    ok, err = make(out, "--fill", "blocks", "--embd", 256, "--q-lora", 256, "--kv-lora", 256,
                   "--experts", 8, "--expert-ff", 256, "--experts-used", 2, "--ff", 512,
                   "--type-experts", "iq1_s", "--type-experts-down", "iq1_m",
                   "--type-attn", "iq2_xxs", "--type-dense", "iq2_xs", "--type-shexp", "iq3_xxs",
                   "--type-embd", "q5_K", "--type-output", "iq4_xs")
    out2 = os.path.join(tmp, "blocks2.gguf")
    ok2, err2 = make(out2, "--fill", "blocks", "--embd", 256, "--q-lora", 256, "--kv-lora", 256,
                     "--experts", 8, "--expert-ff", 256, "--experts-used", 2, "--ff", 512,
                     "--type-experts", "q4_1", "--type-experts-down", "q5_1",
                     "--type-attn", "iq3_s", "--type-dense", "iq2_s", "--type-shexp", "iq4_nl",
                     "--type-embd", "q5_0", "--type-output", "q4_0")
    checks = [("blk.1.ffn_gate_exps.weight", 256), ("blk.1.ffn_down_exps.weight", 256),
              ("blk.0.attn_q_a.weight", 256), ("blk.0.ffn_up.weight", 256),
              ("blk.1.ffn_up_shexp.weight", 256), ("output.weight", 256),
              ("token_embd.weight", 1)]
    t.ok(ok, "random blocks of seven types: builds", err)
    t.ok(ok2, "random blocks of seven more types: builds", err2)
    for path in [p for p, good in ((out, ok), (out2, ok2)) if good]:
        for tensor, fan_in in checks:
            r = run([ktx_run, "-m", path, "--dequant", tensor, "-"])
            a = array.array("f")
            a.frombytes(r.stdout)
            n = len(a)
            finite = n > 0 and all(math.isfinite(x) for x in a)
            mean = sum(a) / n if n else 0
            sd = math.sqrt(sum((x - mean) ** 2 for x in a) / n) if n else 0
            want = 1 / math.sqrt(fan_in)
            t.ok(r.returncode == 0 and finite and 0.5 * want < sd < 2 * want and
                 abs(mean) < 0.2 * want, "random blocks: %s of %s has finite values of spread %.3g"
                 % (tensor, os.path.basename(path), want), "std %.4g mean %.4g n %d" % (sd, mean, n))

    # Usage errors.
    r = run([mkmodel, "-o", os.path.join(tmp, "x.gguf"), "--experts", "4", "--experts-used", "5"],
            text=True)
    t.ok(r.returncode == 2 and "--experts-used" in r.stderr, "refuses more used experts than exist")
    r = run([mkmodel, "-o", os.path.join(tmp, "x.gguf"), "--type", "q8_1"], text=True)
    t.ok(r.returncode == 2 and "q8_1" in r.stderr, "refuses a type ktx cannot read")
    r = run([mkmodel, "--help"], text=True)
    t.ok(r.returncode == 0 and "--type-experts" in r.stdout, "--help documents the options")

raise SystemExit(t.done())
