#!/usr/bin/python3
"""train.py - train the demo model (PyTorch, CPU, reproducible) and dump it for export.

    train.py --train-ids TRAIN.ids --heldout-ids HELDOUT.ids --out DIR [--steps N]

TRAIN.ids / HELDOUT.ids are token ids separated by commas or white space,
as `ktx-run -m vocab.gguf --tokenize FILE` prints them (see README.md). Writes
DIR/curve.csv (the training curve), DIR/ckpt.pt (a checkpoint every
--ckpt-every steps; --resume continues from it bit for bit) and, at the end,
DIR/dump/: model.txt (GGUF metadata and tensor list) and tensors.f32 (the
float32 data), which export.c turns into the GGUF with ktx's own writer.

Training: random windows of the training stream, AdamW
with warm-up and cosine decay, gradient clipping. The first --long-from
part of the steps uses windows of --short-ctx tokens, the rest windows of
the model's full n_ctx with half the batch (the same tokens per step), so
the positions up to n_ctx are trained at little cost. After each step the
routing bias of every MoE layer moves by --bias-rate towards balanced load
(an overloaded expert's bias goes down, an idle one's up), as DeepSeek-V3
balances without an auxiliary loss. One thread and a fixed seed make a run
reproducible on the same PyTorch build.
"""
import argparse
import csv
import math
import os
import time

import torch
import torch.nn.functional as F

import dsmodel


def read_ids(path):
    with open(path) as f:
        return torch.tensor([int(t) for t in f.read().replace(",", " ").split()], dtype=torch.long)


def heldout_windows(ids, n_ctx, n_max):
    """Up to n_max non-overlapping windows of n_ctx + 1 tokens, for the curve."""
    n = min(n_max, (len(ids) - 1) // n_ctx)
    return torch.stack([ids[i * n_ctx:i * n_ctx + n_ctx + 1] for i in range(n)])


@torch.no_grad()
def eval_loss(model, windows, batch):
    model.eval()
    tot, n = 0.0, 0
    for i in range(0, len(windows), batch):
        w = windows[i:i + batch]
        logits = model(w[:, :-1])
        tot += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1),
                               reduction="sum").item()
        n += w[:, 1:].numel()
    model.train()
    return tot / n


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    p = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def balance(model, rate):
    """Aux-loss-free balancing: bias += rate * sign(mean load - load); returns
    the largest expert's share of the routed slots (1/n_expert is perfect)."""
    worst = 0.0
    for moe in model.moe_layers():
        load = moe.load
        if load.sum() > 0:
            moe.exp_probs_b += rate * torch.sign(load.mean() - load)
            worst = max(worst, (load.max() / load.sum()).item())
        moe.load.zero_()
    return worst


def metadata(c, n_params, size_label):
    """The GGUF metadata, key by key as DeepSeek-V3/R1 files carry it
    (llama.cpp's convert_hf_to_gguf.py names), for the MLA tensor layout
    (attn_k_b / attn_v_b, one shared latent KV head). RoPE is written as
    YaRN with factor 1: that is exactly plain RoPE (mscale 1, no
    interpolation), which is what the model was trained with, and leaves
    the file ready for a longer context by raising the factor."""
    return [
        ("general.architecture", "str", "deepseek2"),
        ("general.type", "str", "model"),
        ("general.name", "str", "ktx-demo-kjv"),
        ("general.size_label", "str", size_label),
        ("general.description", "str",
         "ktx's demo model: a %.1fM-parameter DeepSeek-V3-architecture model trained on the "
         "King James Bible (public domain); see models/README.md" % (n_params / 1e6)),
        ("deepseek2.block_count", "u32", c["n_layer"]),
        ("deepseek2.context_length", "u32", c["n_ctx"]),
        ("deepseek2.embedding_length", "u32", c["n_embd"]),
        ("deepseek2.feed_forward_length", "u32", c["n_ff"]),
        ("deepseek2.attention.head_count", "u32", c["n_head"]),
        ("deepseek2.attention.head_count_kv", "u32", 1),
        ("deepseek2.rope.freq_base", "f32", c["rope_base"]),
        ("deepseek2.attention.layer_norm_rms_epsilon", "f32", c["rms_eps"]),
        ("deepseek2.expert_used_count", "u32", c["n_expert_used"]),
        ("deepseek2.expert_gating_func", "u32", 2),
        ("deepseek2.leading_dense_block_count", "u32", c["n_dense_lead"]),
        ("deepseek2.vocab_size", "u32", c["n_vocab"]),
        ("deepseek2.attention.q_lora_rank", "u32", c["q_lora"]),
        ("deepseek2.attention.kv_lora_rank", "u32", c["kv_lora"]),
        ("deepseek2.attention.key_length", "u32", c["kv_lora"] + c["qk_rope"]),
        ("deepseek2.attention.value_length", "u32", c["kv_lora"]),
        ("deepseek2.attention.key_length_mla", "u32", c["qk_nope"] + c["qk_rope"]),
        ("deepseek2.attention.value_length_mla", "u32", c["v_head"]),
        ("deepseek2.expert_feed_forward_length", "u32", c["n_ff_exp"]),
        ("deepseek2.expert_count", "u32", c["n_expert"]),
        ("deepseek2.expert_shared_count", "u32", c["n_shared"]),
        ("deepseek2.expert_weights_scale", "f32", c["weights_scale"]),
        ("deepseek2.expert_weights_norm", "bool", 1),
        ("deepseek2.rope.dimension_count", "u32", c["qk_rope"]),
        ("deepseek2.rope.scaling.type", "str", "yarn"),
        ("deepseek2.rope.scaling.factor", "f32", 1.0),
        ("deepseek2.rope.scaling.original_context_length", "u32", c["n_ctx"]),
        ("deepseek2.rope.scaling.yarn_beta_fast", "f32", 32.0),
        ("deepseek2.rope.scaling.yarn_beta_slow", "f32", 1.0),
        ("deepseek2.rope.scaling.yarn_log_multiplier", "f32", 0.1),
        ("general.quantization_version", "u32", 2),
        ("general.file_type", "u32", 7),
    ]


def tensor_type(name):
    """Q8_0 for the matrices; F32 for norms, the router and its bias (as the
    oracle's v3mla-q8q4 and published Q8_0 DeepSeek files keep them)."""
    if name.endswith("norm.weight") or "ffn_gate_inp" in name or "exp_probs_b" in name:
        return "f32"
    return "q8_0"


def dump(model, outdir):
    """Writes DIR/dump/model.txt and tensors.f32 for export.c."""
    d = os.path.join(outdir, "dump")
    os.makedirs(d, exist_ok=True)
    tensors = dsmodel.gguf_tensors(model)
    n_params = sum(t.numel() for _, t in tensors)
    routed = sum(t.numel() for n, t in tensors if "_exps" in n)
    e = model.c["n_expert"]
    label = "%dx%.1fM" % (e, (n_params - routed + routed / e) / 1e6)
    with open(os.path.join(d, "model.txt"), "w") as f, open(os.path.join(d, "tensors.f32"), "wb") as g:
        f.write("# ktx demo model dump for ktx-demo-export (tools/train-demo/export.c)\n")
        for key, typ, val in metadata(model.c, n_params, label):
            if key == "general.quantization_version":
                f.write("copy tokenizer.\n")     # the vocabulary GGUF's keys, as real files order them
            f.write("kv %s %s %s\n" % (key, typ, repr(val) if typ == "f32" else val))
        for name, t in tensors:
            ne = list(reversed(t.shape))
            f.write("tensor %s %s %s\n" % (name, tensor_type(name), " ".join(map(str, ne))))
            g.write(t.numpy().astype("<f4").tobytes())
    return n_params


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train-ids", required=True)
    ap.add_argument("--heldout-ids", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=650)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--short-ctx", type=int, default=256)
    ap.add_argument("--long-from", type=float, default=0.8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--bias-rate", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1611)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--eval-windows", type=int, default=16)
    ap.add_argument("--ckpt-every", type=int, default=50)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    c = dict(dsmodel.CONFIG)
    train = read_ids(args.train_ids)
    held = heldout_windows(read_ids(args.heldout_ids), c["n_ctx"], args.eval_windows)
    if int(train.max()) >= c["n_vocab"]:
        raise SystemExit("train.py: token id %d outside the vocabulary" % int(train.max()))

    model = dsmodel.DemoModel(c)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    other = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": other, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(args.seed)
    step, elapsed = 0, 0.0
    ckpt = os.path.join(args.out, "ckpt.pt")
    curve = os.path.join(args.out, "curve.csv")
    if args.resume and os.path.exists(ckpt):
        st = torch.load(ckpt)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        gen.set_state(st["gen"])
        step, elapsed = st["step"], st["elapsed"]
    else:
        with open(curve, "w", newline="") as f:
            csv.writer(f).writerow(["step", "tokens", "lr", "train_loss", "heldout_loss",
                                    "heldout_ppl", "max_expert_share", "seconds"])
    n_params = sum(p.numel() for p in model.parameters())
    print("train.py: %d parameters, %d training tokens, %d held-out windows, steps %d..%d"
          % (n_params, len(train), len(held), step, args.steps), flush=True)

    t0 = time.time() - elapsed
    run_loss, run_n, share = 0.0, 0, 0.0
    while step < args.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        if step < args.long_from * args.steps:
            n_ctx, batch = args.short_ctx, args.batch
        else:
            n_ctx, batch = c["n_ctx"], args.batch * args.short_ctx // c["n_ctx"]
        starts = torch.randint(0, len(train) - n_ctx - 1, (batch,), generator=gen)
        w = torch.stack([train[s:s + n_ctx + 1] for s in starts.tolist()])
        logits = model(w[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, c["n_vocab"]), w[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            share = max(share, balance(model, args.bias_rate))
        run_loss += loss.item()
        run_n += 1
        step += 1
        if step % args.eval_every == 0 or step == args.steps:
            hl = eval_loss(model, held, args.batch)
            for moe in model.moe_layers():
                moe.load.zero_()
            row = [step, step * args.batch * args.short_ctx, "%.6g" % lr_at(step - 1, args),
                   "%.4f" % (run_loss / run_n), "%.4f" % hl, "%.2f" % math.exp(hl),
                   "%.3f" % share, "%.0f" % (time.time() - t0)]
            with open(curve, "a", newline="") as f:
                csv.writer(f).writerow(row)
            print("step %d train %.4f heldout %.4f (ppl %.2f) max-share %.3f %.0fs"
                  % (step, run_loss / run_n, hl, math.exp(hl), share, time.time() - t0), flush=True)
            run_loss, run_n, share = 0.0, 0, 0.0
        if step % args.ckpt_every == 0 or step == args.steps:
            tmp = ckpt + ".tmp"
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                        "step": step, "elapsed": time.time() - t0, "config": c}, tmp)
            os.replace(tmp, ckpt)
    n = dump(model, args.out)
    print("train.py: dumped %d parameters to %s/dump" % (n, args.out))


if __name__ == "__main__":
    main()
