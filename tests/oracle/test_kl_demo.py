#!/usr/bin/env python3
"""test_kl_demo - the fast path against the reference path on real text (issue 7).

The shipped demo model (models/demo.gguf, trained, so its routing is stable)
runs the held-out slice it never saw in training (tools/train-demo/heldout.json:
Job 40, Psalms 98, Isaiah 47, Luke 3; 3,710 tokens) in windows of the context
length, each a BOS and the next ctx-1 tokens, as tools/train-demo/evaluate.py
scores it. Each window's logits from `--path ref` are written once (the
reference path does not use the SIMD kernels) and `--path fast --kl-divergence
--kl-reference` compares with them at every CPU kernel level this machine has
(KTX_CPU; each level's kernels are separate code): the default level over the
whole slice, the lower ones over every SPARSE-th window (1,024 positions), so
the test stays near 15 s of CPU. Per level:

  mean KL(ref || fast) <= 1e-7, max KL <= 1e-6, top-1 agreement >= 99.9 %,
  |ppl_fast / ppl_ref - 1| <= 1e-5.

Issue 7 asked for 1e-4, 99.5 % and 0.5 %. Measured on 2026-11-25 (Q8_0
activations with an 8-bit residual row in every matmul; avx512 over 3,718
positions, avx2 and generic over the 1,024): mean KL 9.5e-10 / 9.1e-10 /
9.0e-10, max KL 3.0e-8 / 2.0e-8 / 1.4e-8 (3.8e-8 for generic over the whole
slice), top-1 100 % at every level, perplexity ratios within 2.4e-6. The bars
sit about 100x (mean), 25x (max) and 4x (perplexity: a random-sign error at
the mean-KL bar moves it by sqrt(2e-7 / 1000) ~ 1.4e-5) above that: wide
for what a correct change does (the three levels sum in different orders and
land within 2 % of each other on the same text), and under what costs
accuracy, measured on this text:
  - one matmul class without its residual row (--act-residual): mean KL
    1.4e-5 (output head) to 5.8e-4, top-1 99.65-99.81 %, perplexity 4e-5 to
    8.3e-4; plain 8-bit activations everywhere: 4.4e-4, 99.0 %, 3.2e-4;
  - a per-block scale error of +-2^-13 in one level's Q8_0 kernel: one flipped
    route, mean KL 5.3e-6, max 5.3e-3, perplexity 9e-5, top-1 still 100 %:
    all inside the issue's bars, red here. (+-2^-16, the size of the residual
    row's own rounding, passes: mean KL 1.2e-9.)
A flipped route costs 5e-3 to 0.5 at its position, so the bars also say the
routing stays exactly the reference's, which is what it does now.

A direct two-path run (fast against ref in one process) of one window must
give exactly the stored logits' figures, and the reference path's perplexity
over the windows must be PyTorch's (heldout.json) to 1e-4.
"""
import json
import math
import os
import re
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

from ktxtest import SRCDIR, Tap, program, run

MEAN_KL = 1e-7
MAX_KL = 1e-6
TOP1 = 0.999
PPL_REL = 1e-5
PYTORCH_REL = 1e-4
SPARSE = 4   # levels other than the default run every SPARSE-th window
LEVELS = (None, "avx512", "avx2", "generic")   # KTX_CPU values; None: unset


def env_for(level):
    """The environment with KTX_CPU set to level (removed for None)."""
    env = dict(os.environ)
    env.pop("KTX_CPU", None)
    if level is not None:
        env["KTX_CPU"] = level
    return env


def ktx(args, level=None):
    """Runs ktx-run -t 1 with args; (parsed JSON or None, stderr text)."""
    r = run([program("ktx-run"), "-t", "1"] + args, env=env_for(level))
    if r.returncode != 0:
        return None, "exit %d: %s" % (r.returncode, r.stderr.decode(errors="replace")[-400:])
    try:
        return json.loads(r.stdout.decode()), ""
    except ValueError as e:
        return None, "bad JSON (%s): %r" % (e, r.stdout.decode()[-400:])


def window_kl(model, ctx, ids, tmp, i, levels):
    """Writes window i's reference logits, then compares each level's fast
    path with them: {level: (JSON or None, why)}, or an error string."""
    logits = os.path.join(tmp, "ref%d.f32" % i)
    toks = ",".join(str(t) for t in ids)
    common = ["-m", model, "--ctx", str(ctx), "--tokens", toks]
    r = run([program("ktx-run"), "-t", "1", "--path", "ref", "--logits", logits] + common,
            env=env_for(None))
    if r.returncode != 0:
        return "window %d: --path ref --logits: exit %d: %s" % (
            i, r.returncode, r.stderr.decode(errors="replace")[-400:])
    out = {}
    for lv in levels:
        out[lv] = ktx(["--path", "fast", "--kl-divergence", "--kl-reference", logits] + common,
                      levels[lv])
    os.unlink(logits)
    return out


def main():
    tap = Tap()
    model = os.path.join(SRCDIR, "models", "demo.gguf")
    with open(os.path.join(SRCDIR, "tools", "train-demo", "heldout.json")) as f:
        held = json.load(f)
    with open(os.path.join(SRCDIR, held["heldout_ids"])) as f:
        text_ids = [int(t) for t in f.read().replace(",", " ").split()]
    ctx = held["ctx"]
    tap.ok(len(text_ids) == held["n_tokens"] and ctx > 1,
           "the held-out slice has its %d recorded tokens" % held["n_tokens"])

    r = run([program("ktx-run"), "--info", model])
    m = re.search(r"\bBOS (\d+)", r.stdout.decode(errors="replace"))
    if not tap.ok(r.returncode == 0 and m is not None, "--info names the BOS token",
                  r.stderr.decode(errors="replace")):
        return tap.done()
    bos = int(m.group(1))

    # The kernel levels this CPU has, the default first: KTX_CPU lowers the
    # level, never raises it, so --bench's cpu_level says which one a
    # setting gets.
    levels = {}
    for lv in LEVELS:
        d, why = ktx(["-m", model, "--bench", "--prompt-tokens", "1", "--gen-tokens", "1"], lv)
        if not tap.ok(d is not None and "cpu_level" in d,
                      "--bench names the kernel level of KTX_CPU=%s" % (lv or "(unset)"), why):
            continue
        if lv is not None and d["cpu_level"] != lv:
            tap.diag("KTX_CPU=%s: this CPU gives %s" % (lv, d["cpu_level"]))
            continue
        levels.setdefault(d["cpu_level"], lv)
        tap.diag("KTX_CPU=%s: level %s, kernels %s" % (lv or "(unset)", d["cpu_level"],
                                                       json.dumps(d.get("kernels"))))
    if not tap.ok("generic" in levels, "the generic level is always there", sorted(levels)):
        return tap.done()
    default = next(iter(levels))

    step = ctx - 1
    windows = [[bos] + text_ids[a:a + step] for a in range(0, len(text_ids), step)]
    tmp = tempfile.mkdtemp(prefix="ktx-kl-demo-")
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(len(windows), os.cpu_count() or 1))) as ex:
            jobs = [ex.submit(window_kl, model, ctx, w, tmp, i,
                              levels if i % SPARSE == 0 else {default: levels[default]})
                    for i, w in enumerate(windows)]
            results = [j.result() for j in jobs]
        # The direct two-path mode on the shortest window, against the stored
        # logits' figures for it at the default level.
        last = ",".join(str(t) for t in windows[-1])
        direct, why = ktx(["-m", model, "--ctx", str(ctx), "--tokens", last, "--kl-divergence"])
    finally:
        shutil.rmtree(tmp)

    failed = [r for r in results if isinstance(r, str)]
    if not tap.ok(not failed, "the reference path writes the logits of all %d windows"
                  % len(windows), "\n".join(failed)):
        return tap.done()
    stored = results[-1][default][0]
    keys = ("positions", "mean_kl", "max_kl", "top1_same", "predicted", "ppl", "ppl_base")
    tap.ok(direct is not None and stored is not None and direct["base"] == "ref" and
           all(direct[k] == stored[k] for k in keys),
           "fast against ref in one run gives the stored logits' figures",
           "direct %s\nstored %s" % (direct or why, stored))

    for name, lv in levels.items():
        pos = top1 = pred = nwin = 0
        sum_kl = max_kl = nll = nll_base = 0.0
        bad = []
        for i, res in enumerate(results):
            if name not in res:
                continue
            d, why = res[name]
            if d is None or d["positions"] != len(windows[i]):
                bad.append("window %d: %s" % (i, why or d))
                continue
            nwin += 1
            pos += d["positions"]
            sum_kl += d["mean_kl"] * d["positions"]
            max_kl = max(max_kl, d["max_kl"])
            top1 += d["top1_same"]
            pred += d["predicted"]
            nll += d["predicted"] * math.log(d["ppl"])
            nll_base += d["predicted"] * math.log(d["ppl_base"])
        what = "%s (KTX_CPU=%s, %d windows)" % (name, lv or "unset", nwin + len(bad))
        if not tap.ok(not bad and pos > 0, what + ": --kl-divergence runs", "\n".join(bad)):
            continue
        mean_kl, agree = sum_kl / pos, top1 / pos
        ppl, ppl_base = math.exp(nll / pred), math.exp(nll_base / pred)
        tap.ok(mean_kl <= MEAN_KL, what + ": mean KL %.3g <= %g" % (mean_kl, MEAN_KL))
        tap.ok(max_kl <= MAX_KL, what + ": max KL %.3g <= %g" % (max_kl, MAX_KL))
        tap.ok(agree >= TOP1, what + ": top-1 agreement %d/%d >= %g %%" % (top1, pos, 100 * TOP1))
        tap.ok(abs(ppl / ppl_base - 1) <= PPL_REL,
               what + ": perplexity %.6f within %g of the reference's %.6f"
               % (ppl, PPL_REL, ppl_base))
        if name == default:
            want = held["perplexity_pytorch_dequantized"]
            tap.ok(abs(ppl_base / want - 1) <= PYTORCH_REL,
                   "the reference path's %.6f is PyTorch's %.4f (evaluate.py's windows)"
                   % (ppl_base, want))
        tap.diag("%s: %d positions, mean KL %.3e, max KL %.3e, top-1 %d/%d, ppl fast %.6f ref %.6f "
                 "(ratio - 1 = %.2e)" % (what, pos, mean_kl, max_kl, top1, pos, ppl, ppl_base,
                                         ppl / ppl_base - 1))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
