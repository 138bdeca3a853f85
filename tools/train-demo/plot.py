#!/usr/bin/python3
"""plot.py - the training curve of curve.csv as a PNG (Debian: python3-matplotlib).

    plot.py curve.csv curve.png [UNIGRAM_PPL]
"""
import csv
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: plot.py curve.csv curve.png [UNIGRAM_PPL]")
    with open(sys.argv[1]) as f:
        rows = list(csv.DictReader(f))
    tok = [int(r["tokens"]) / 1e6 for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(tok, [math.exp(float(r["train_loss"])) for r in rows], label="training (mean since last point)")
    ax.plot(tok, [float(r["heldout_ppl"]) for r in rows], label="held-out chapters")
    if len(sys.argv) == 4:
        ax.axhline(float(sys.argv[3]), color="grey", linestyle="--", label="unigram baseline (held-out)")
    ax.set_yscale("log")
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel("perplexity")
    ax.set_title("ktx demo model (DeepSeek-V3 architecture, 9M parameters) on the KJV")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(sys.argv[2])


if __name__ == "__main__":
    main()
