#!/usr/bin/env python3
"""test_demo_perplexity - the shipped demo model, run by ktx, against PyTorch.

tools/train-demo/evaluate.py computed, with PyTorch and the weights of
models/demo.gguf dequantized (not the float checkpoint), the perplexity of a
held-out slice of text the model never saw, and recorded it with the slice's
token ids in tools/train-demo/heldout.json. Here ktx computes the same
figure from the file and the text on its own:
  - `ktx-run --tokenize` of the slice gives exactly the recorded ids (both
    sides score the same tokens);
  - `ktx-run --perplexity` lands within 1% of PyTorch's figure: two
    independent implementations agreeing on real text, which guards the
    forward pass and the shipped file against silent breakage;
  - and it beats the slice's own unigram distribution (an optimistic
    baseline: fitted on the very tokens it scores) by a wide margin.
"""
import json
import math
import os
import re
import sys
from collections import Counter

from ktxtest import SRCDIR, Tap, program, run

TOLERANCE = 0.01
MARGIN = 4.0   # ktx's perplexity must be below the unigram one / MARGIN


def main():
    tap = Tap()
    model = os.path.join(SRCDIR, "models", "demo.gguf")
    with open(os.path.join(SRCDIR, "tools", "train-demo", "heldout.json")) as f:
        ref = json.load(f)
    text = os.path.join(SRCDIR, ref["heldout_text"])
    with open(os.path.join(SRCDIR, ref["heldout_ids"])) as f:
        want_ids = [int(t) for t in f.read().replace(",", " ").split()]

    r = run([program("ktx-run"), "-m", model, "--tokenize", text])
    got_ids = [int(t) for t in r.stdout.decode().replace(",", " ").split()] if r.returncode == 0 else []
    tap.ok(got_ids == want_ids, "ktx tokenizes the held-out slice to the %d recorded ids" % len(want_ids),
           "exit %d, %d ids, %s" % (r.returncode, len(got_ids), r.stderr.decode(errors="replace")[-300:]))

    r = run([program("ktx-run"), "-m", model, "--perplexity", text, "--ctx", str(ref["ctx"]), "-t", "2"])
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    m = re.search(r"perplexity\D*?([0-9]+(?:\.[0-9]+)?)", out, re.IGNORECASE)
    ok = tap.ok(r.returncode == 0 and m is not None, "ktx-run --perplexity runs and prints a figure",
                "exit %d: %s" % (r.returncode, out[-500:]))
    ppl = float(m.group(1)) if ok else float("nan")
    want = ref["perplexity_pytorch_dequantized"]
    tap.ok(abs(ppl - want) <= TOLERANCE * want,
           "ktx perplexity %.4f within %.0f%% of PyTorch's %.4f" % (ppl, 100 * TOLERANCE, want))

    counts = Counter(want_ids)
    n = len(want_ids)
    unigram = math.exp(-sum(c * math.log(c / n) for c in counts.values()) / n)
    tap.ok(ppl * MARGIN < unigram,
           "perplexity %.2f beats the slice's own unigram %.2f by more than %gx" % (ppl, unigram, MARGIN))
    tap.diag("held-out slice: %d tokens; ktx %.4f, PyTorch %.4f, unigram (training counts) %.2f, "
             "unigram (the slice itself) %.2f" % (n, ppl, want, ref["perplexity_unigram"], unigram))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
