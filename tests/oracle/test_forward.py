#!/usr/bin/env python3
"""test_forward - every oracle model through ktx-run, both attention paths,
on the reference compute path (--path ref).

For each model in $KTX_ORACLE/models and each prompt of prompts.json, runs
`ktx-run --tokens ... --logits` and `--greedy 32` with --attn absorbed and
--attn naive, and holds the results to the oracle README's tolerances:
max |dlogit| <= 1e-4, mean |dlogit| <= 1e-5 and KL(ref || ktx) <= 1e-9 at
every position, top-1 equal wherever the reference margin is >= 2e-4,
greedy ids equal up to the first step whose reference margin is < 2e-4.
Also: results independent of the thread count, and --experts.
"""
import array
import heapq
import itertools
import json
import math
import operator
import os
import sys
import tempfile

from ktxtest import ORACLE, Tap, program, run

MAX_ABS = 1e-4
MEAN_ABS = 1e-5
MAX_KL = 1e-9
MARGIN = 2e-4
N_GREEDY = 32


def read_f32(path):
    a = array.array("f")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    return a


def log_softmax(row):
    # map() over builtins keeps the per-element work in C: this runs on
    # about ten million logits.
    m = max(row)
    lse = m + math.log(math.fsum(map(math.exp, map(operator.sub, row, itertools.repeat(m)))))
    return list(map(operator.sub, row, itertools.repeat(lse)))


def prepare(ref, n_vocab):
    """The reference's rows, log-probabilities and top-2 margins, computed
    once per prompt for both paths."""
    rows = []
    for t in range(len(ref) // n_vocab):
        r = ref[t * n_vocab:(t + 1) * n_vocab]
        top2 = heapq.nlargest(2, r)
        rows.append((r, log_softmax(r), r.index(top2[0]), top2[0] - top2[1]))
    return rows


def compare(rows, got, n_vocab):
    """Per-prompt figures: max/mean |d|, max/mean KL, top-1 checks."""
    st = {"max_abs": 0.0, "sum_abs": 0.0, "max_kl": 0.0, "sum_kl": 0.0,
          "top1": 0, "top1_bad": []}
    for t, (r, lr, top_r, margin) in enumerate(rows):
        g = got[t * n_vocab:(t + 1) * n_vocab]
        d = list(map(abs, map(operator.sub, r, g)))
        st["max_abs"] = max(st["max_abs"], max(d))
        st["sum_abs"] += math.fsum(d)
        lg = log_softmax(g)
        kl = math.fsum(map(operator.mul, map(math.exp, lr), map(operator.sub, lr, lg)))
        st["max_kl"] = max(st["max_kl"], kl)
        st["sum_kl"] += kl
        same = g.index(max(g)) == top_r
        st["top1"] += same
        if margin >= MARGIN and not same:
            st["top1_bad"].append(t)
    n = len(rows)
    st["mean_abs"] = st["sum_abs"] / (n * n_vocab)
    st["mean_kl"] = st["sum_kl"] / n
    st["n"] = n
    return st


def greedy_ok(ref, got):
    """Equal up to the first step whose reference margin is small."""
    limit = next((i for i, m in enumerate(ref["margins"]) if m < MARGIN), len(ref["ids"]))
    agree = 0
    for a, b in zip(ref["ids"], got):
        if a != b:
            break
        agree += 1
    return agree >= limit and len(got) == len(ref["ids"]), agree, limit


def ktx(args, threads="1"):
    # One thread unless asked: the suite shares a small machine, and the
    # results do not depend on it (checked below). The reference compute
    # path: the fast one is gated by test_kl.py.
    return run([program("ktx-run"), "-t", threads, "--path", "ref"] + args)


def check_perplexity(tap, tmp):
    """--perplexity against the same windows scored here from --logits."""
    gguf = os.path.join(ORACLE, "models", "v3-f32.gguf")
    text = os.path.join(tmp, "ppl.txt")
    with open(text, "w") as f:
        f.write("The quick brown fox jumps over the lazy dog. It was a sunny day in the park, "
                "and everybody was happy to be outside.\n")
    r = ktx(["-m", gguf, "--tokenize", text])
    if not tap.ok(r.returncode == 0, "--tokenize for the perplexity text", r.stderr.decode()):
        return
    ids = [int(x) for x in r.stdout.decode().strip().split(",")]
    bos = 4000
    for ctx in (0, 16):
        span = len(ids) if ctx == 0 else ctx - 1
        nll, cnt = 0.0, 0
        for at in range(0, len(ids) - 1, span):
            win = [bos] + ids[at:at + span]
            o = os.path.join(tmp, "ppl.f32")
            r = ktx(["-m", gguf, "--tokens", ",".join(map(str, win)), "--logits", o])
            got = read_f32(o)
            n_vocab = len(got) // len(win)
            for k in range(len(win) - 1):
                row = got[k * n_vocab:(k + 1) * n_vocab]
                nll -= log_softmax(row)[win[k + 1]]
                cnt += 1
        want = math.exp(nll / cnt)
        args = ["-m", gguf, "--perplexity", text] + (["--ctx", str(ctx)] if ctx else [])
        r = ktx(args)
        out = r.stdout.decode().split()
        ok = r.returncode == 0 and len(out) == 5 and out[0] == "perplexity" and int(out[3]) == cnt and \
            abs(float(out[1]) / want - 1) < 1e-6
        tap.ok(ok, "--perplexity%s equals the windows scored from --logits" % (" --ctx 16" if ctx else ""),
               "got %r, want perplexity %.4f over %d tokens" % (r.stdout.decode().strip(), want, cnt))


def main():
    tap = Tap()
    with open(os.path.join(ORACLE, "prompts.json")) as f:
        prompts = json.load(f)["prompts"]
    with open(os.path.join(ORACLE, "models", "INDEX.json")) as f:
        models = sorted(json.load(f)["models"])
    tmp = tempfile.mkdtemp(prefix="ktx-fwd-")
    out = os.path.join(tmp, "logits.f32")
    summary = []
    for name in models:
        gguf = os.path.join(ORACLE, "models", name + ".gguf")
        with open(os.path.join(ORACLE, "reference", name + ".greedy.json")) as f:
            greedy_ref = json.load(f)
        worst = {}
        for path in ("absorbed", "naive"):
            worst[path] = {"max_abs": 0.0, "mean_kl": 0.0, "top1": 0, "n": 0, "greedy": 0}
        for p in prompts:
            ids = ",".join(str(i) for i in p["tokens"])
            ref = read_f32(os.path.join(ORACLE, "reference", "%s.%s.logits.f32" % (name, p["name"])))
            n_vocab = len(ref) // len(p["tokens"])
            rows = prepare(ref, n_vocab)
            for path in ("absorbed", "naive"):
                w = worst[path]
                what = "%s %s %s" % (name, path, p["name"])
                r = ktx(["-m", gguf, "--attn", path, "--tokens", ids, "--logits", out])
                if not tap.ok(r.returncode == 0, what + ": --logits runs", r.stderr.decode()):
                    continue
                got = read_f32(out)
                if not tap.ok(len(got) == len(ref), what + ": logits shape",
                              "got %d floats, want %d" % (len(got), len(ref))):
                    continue
                st = compare(rows, got, n_vocab)
                tap.ok(st["max_abs"] <= MAX_ABS and st["mean_abs"] <= MEAN_ABS and st["max_kl"] <= MAX_KL,
                       what + ": logits within tolerance",
                       "max |d| %.3g, mean |d| %.3g, max KL %.3g" % (st["max_abs"], st["mean_abs"], st["max_kl"]))
                tap.ok(not st["top1_bad"], what + ": top-1 where the margin allows",
                       "differs at positions %s" % st["top1_bad"][:10])
                w["max_abs"] = max(w["max_abs"], st["max_abs"])
                w["mean_kl"] = max(w["mean_kl"], st["mean_kl"])
                w["top1"] += st["top1"]
                w["n"] += st["n"]

                r = ktx(["-m", gguf, "--attn", path, "--tokens", ids, "--greedy", str(N_GREEDY)])
                if not tap.ok(r.returncode == 0, what + ": --greedy runs", r.stderr.decode()):
                    continue
                gids = [int(x) for x in r.stdout.decode().strip().split(",") if x]
                ok, agree, limit = greedy_ok(greedy_ref[p["name"]], gids)
                tap.ok(ok, what + ": greedy ids",
                       "agree on %d, must agree on %d\ngot  %s\nwant %s" % (agree, limit, gids, greedy_ref[p["name"]]["ids"]))
                w["greedy"] += agree
        for path in ("absorbed", "naive"):
            w = worst[path]
            summary.append("%-12s %-8s max|d| %.2e  worst mean KL %.2e  top-1 %d/%d  greedy %d/%d" % (
                name, path, w["max_abs"], w["mean_kl"], w["top1"], w["n"],
                w["greedy"], N_GREEDY * len(prompts)))

    # The thread count changes who computes a row, never how.
    name = "v3mla-q8q4" if "v3mla-q8q4" in models else models[0]
    gguf = os.path.join(ORACLE, "models", name + ".gguf")
    ids = ",".join(str(i) for i in prompts[0]["tokens"])
    outs = []
    for t in ("1", "2", "3"):
        o = os.path.join(tmp, "t%s.f32" % t)
        r = ktx(["-m", gguf, "--tokens", ids, "--logits", o], threads=t)
        outs.append(open(o, "rb").read() if r.returncode == 0 else b"")
    tap.ok(outs[0] and outs[0] == outs[1] == outs[2], "%s: logits identical with 1, 2 and 3 threads" % name)

    # --experts: the model's own count reproduces the default, others differ.
    r1 = ktx(["-m", gguf, "--tokens", ids, "--logits", os.path.join(tmp, "e3.f32"), "--experts", "3"])
    r2 = ktx(["-m", gguf, "--tokens", ids, "--logits", os.path.join(tmp, "e2.f32"), "--experts", "2"])
    tap.ok(r1.returncode == 0 and open(os.path.join(tmp, "e3.f32"), "rb").read() == outs[0],
           "--experts 3 (the model's own) changes nothing")
    tap.ok(r2.returncode == 0 and open(os.path.join(tmp, "e2.f32"), "rb").read() != outs[0],
           "--experts 2 changes the logits")
    r = ktx(["-m", gguf, "--tokens", ids, "--logits", os.path.join(tmp, "e9.f32"), "--experts", "5"])
    tap.ok(r.returncode == 1 and b"experts" in r.stderr,
           "--experts beyond what 2 of 4 groups offer is refused", r.stderr.decode())
    # A prompt longer than the context is refused with the limit named.
    r = ktx(["-m", gguf, "--ctx", "8", "--tokens", ids, "--logits", os.path.join(tmp, "c.f32")])
    tap.ok(r.returncode == 1 and b"limit of 8" in r.stderr, "--ctx 8 refuses a 25-token prompt",
           r.stderr.decode())

    check_perplexity(tap, tmp)
    for line in summary:
        tap.diag(line)
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
