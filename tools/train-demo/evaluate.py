#!/usr/bin/python3
"""evaluate.py - what PyTorch computes with the *exported* demo model.

    evaluate.py MODEL.gguf perplexity --heldout-ids IDS --train-ids IDS --out heldout.json
    evaluate.py MODEL.gguf logits --tokens 1,2,3 OUT.f32
    evaluate.py MODEL.gguf sample --tokens 1,2,3 [-n N]

Loads the GGUF that ktx ships (Q8_0 dequantized here: each block is an fp16
scale d and 32 int8 q, x = d * q), so its figures are those of the very
weights ktx runs, not of the float checkpoint. `perplexity` scores the
held-out tokens the way `ktx-run --perplexity` does (see perplexity() below)
and a unigram baseline (training-set token frequencies, add-one smoothed),
and records both in a JSON file for tests/oracle/test_demo_perplexity.py.
`logits` writes float32 logits [n_tokens][n_vocab] like `ktx-run --logits`,
for comparing the two implementations position by position.
"""
import argparse
import json
import math

import numpy as np
import torch
import torch.nn.functional as F

import dsmodel
import ggufpy


def load(path):
    """The model of a demo GGUF, weights dequantized to float32."""
    r = ggufpy.Reader(path)
    if r.value("general.architecture") != "deepseek2":
        raise SystemExit("evaluate.py: %s is not a deepseek2 model" % path)
    c = dict(dsmodel.CONFIG)
    c["n_ctx"] = r.value("deepseek2.context_length")
    c["n_layer"] = r.value("deepseek2.block_count")
    c["n_vocab"] = r.value("deepseek2.vocab_size")
    tensors = {}
    for name, t in r.tensors.items():
        n = int(np.prod(t["ne"]))
        raw = r.tensor_bytes(name)
        if t["type"] == ggufpy.T_Q8_0:
            a = ggufpy.dequant_q8_0(raw, n)
        elif t["type"] == ggufpy.T_F32:
            a = np.frombuffer(raw, dtype="<f4")
        else:
            raise SystemExit("evaluate.py: %s has a type this script does not read" % name)
        tensors[name] = torch.from_numpy(np.array(a, dtype=np.float32)).reshape(list(reversed(t["ne"])))
    model = dsmodel.DemoModel(c)
    dsmodel.load_gguf_tensors(model, tensors)
    model.eval()
    return model, r


@torch.no_grad()
def logits_of(model, ids):
    return model(torch.tensor([ids], dtype=torch.long))[0]


@torch.no_grad()
def perplexity(model, ids, bos, n_ctx):
    """exp of the mean negative log-likelihood, as ktx-run --perplexity
    computes it: the tokens are cut into consecutive chunks of n_ctx - 1;
    each chunk is evaluated on its own after a BOS, and every token of
    every chunk is scored (the first one given only the BOS), except a
    last chunk of a single token, which ktx-run leaves out."""
    nll, n = 0.0, 0
    step = n_ctx - 1
    for i in range(0, len(ids) - 1, step):
        chunk = ids[i:i + step]
        logits = logits_of(model, [bos] + chunk[:-1])
        nll += F.cross_entropy(logits, torch.tensor(chunk), reduction="sum").item()
        n += len(chunk)
    return math.exp(nll / n), n


def unigram_perplexity(train_ids, ids, n_vocab):
    counts = np.bincount(np.array(train_ids), minlength=n_vocab).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    return math.exp(-float(np.mean(logp[np.array(ids)])))


def read_ids(path):
    with open(path) as f:
        return [int(t) for t in f.read().replace(",", " ").split()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("mode", choices=["perplexity", "logits", "sample"])
    ap.add_argument("out", nargs="?")
    ap.add_argument("--tokens")
    ap.add_argument("--heldout-ids")
    ap.add_argument("--heldout-text")
    ap.add_argument("--train-ids")
    ap.add_argument("--ctx", type=int, default=0)
    ap.add_argument("-n", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, r = load(args.model)
    bos = r.value("tokenizer.ggml.bos_token_id")
    if args.mode == "logits":
        lg = logits_of(model, [int(t) for t in args.tokens.split(",")])
        lg.numpy().astype("<f4").tofile(args.out)
        return
    if args.mode == "sample":
        ids = [int(t) for t in args.tokens.split(",")]
        for _ in range(args.n):
            ids.append(int(logits_of(model, ids)[-1].argmax()))
        print(",".join(map(str, ids)))
        return
    ids = read_ids(args.heldout_ids)
    n_ctx = args.ctx or model.c["n_ctx"]
    ppl, n = perplexity(model, ids, bos, n_ctx)
    uni = unigram_perplexity(read_ids(args.train_ids), ids, model.c["n_vocab"])
    res = {
        "model": "models/demo.gguf",
        "heldout_text": args.heldout_text,
        "heldout_ids": args.heldout_ids,
        "n_tokens": n,
        "ctx": n_ctx,
        "method": "chunks of ctx-1 tokens, each after a BOS, every token scored",
        "perplexity_pytorch_dequantized": round(ppl, 4),
        "perplexity_unigram": round(uni, 2),
    }
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
