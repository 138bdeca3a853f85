#!/usr/bin/env python3
"""test_repack_model - the repacked kernels inside a whole model.

The oracle's quantized models are too narrow for repacking (rows shorter
than a K-quant block of 256), so this test makes its own with ktx-mkmodel:
V3-style, one dense and one MoE block, every matrix row a whole number of
256-element blocks, K-quant types in a UD-Q2_K_XL-like mix and the
attn_k_b / attn_v_b layout, so that everything the fast path repacks is
repacked: attention projections, attn_v_b's per-head matrices, the dense
FFN, the shared and routed experts and the output head.

Checked, on AVX-512 machines (elsewhere nothing is repacked and the test
says so):
  - --bench reports the repacked bytes: every K-quant matrix but attn_k_b
    (read transposed) and the embeddings;
  - the repacked fast path against the reference path over a prompt: mean
    KL <= 1e-6, top-1 equal at every position (a wrongly wired kernel, a
    stray group offset or a per-head slice read from the wrong group gives
    KL of order 1);
  - the repacked fast path against the fast path on the file's layout
    (--no-repack): the same kernels' arithmetic in another order, mean KL
    <= 1e-7 (both about 1e-8 now).
"""
import json
import os
import shutil
import tempfile

from ktxtest import Tap, ktx_logits, ktx_run, program, repack_level, run

MEAN_KL_REF = 1e-6
MEAN_KL_LAYOUT = 1e-7


def make_model(path):
    return run([program("ktx-mkmodel"), "-q", "-o", path, "--preset", "tiny",
                "--vocab-size", "512", "--embd", "512", "--layers", "2", "--dense", "1",
                "--heads", "4", "--q-lora", "256", "--kv-lora", "256", "--rope", "32",
                "--nope", "64", "--v-dim", "64", "--ff", "512", "--expert-ff", "256",
                "--experts", "16", "--experts-used", "4", "--shared", "1", "--groups", "0",
                "--attn", "k_b", "--routing", "v3",
                "--type", "q4_K", "--type-embd", "q4_K", "--type-output", "q6_K",
                "--type-attn", "q4_K", "--type-dense", "q5_K", "--type-shexp", "q5_K",
                "--type-experts", "q2_K", "--type-experts-down", "q3_K", "--seed", "7"])


def kl(args):
    r = ktx_run(args + ["--kl-divergence"])
    if r.returncode != 0:
        return None, r.stderr.decode(errors="replace")[-300:]
    return json.loads(r.stdout.decode()), ""


def main():
    t = Tap()
    tmp = tempfile.mkdtemp(prefix="ktx-repack-")
    try:
        model = os.path.join(tmp, "rp.gguf")
        r = make_model(model)
        if not t.ok(r.returncode == 0, "ktx-mkmodel makes the wide K-quant model",
                    r.stderr.decode(errors="replace")):
            return t.done()
        if not repack_level():
            t.ok(True, "no AVX-512 VNNI here: nothing is repacked, nothing more to check")
            return t.done()
        r = ktx_run(["-m", model, "--bench", "--prompt-tokens", "8", "--gen-tokens", "1"])
        bench = json.loads(r.stdout.decode()) if r.returncode == 0 else {}
        # Every K-quant matrix but token_embd (read by row) and attn_k_b
        # (q8_0 here: its 64-element rows are no K-quant block).
        size = os.path.getsize(model)
        rp = bench.get("repacked_bytes", 0)
        t.ok(rp > 0.8 * size and rp < size, "--bench: %d of the file's %d bytes repacked"
             % (rp, size), r.stderr.decode(errors="replace"))

        ids = ",".join(str((i * 37 + 11) % 512) for i in range(48))
        fast_ref, err = kl(["-m", model, "--tokens", ids])
        t.ok(fast_ref is not None and fast_ref["mean_kl"] <= MEAN_KL_REF and
             fast_ref["top1"] == 1.0,
             "repacked fast path against the reference: mean KL %s, top-1 %s (<= %g, all)"
             % (fast_ref and fast_ref["mean_kl"], fast_ref and fast_ref["top1"], MEAN_KL_REF),
             err)
        # The file's layout is another load of the model (--no-repack), so
        # its logits go through a file.
        out = os.path.join(tmp, "l.f32")
        la = ktx_logits(model, ids, out, [])
        # This file stays for --kl-reference below.
        b = ktx_run(["-m", model, "--tokens", ids, "--logits", out, "--no-repack"])
        lb = b""
        if b.returncode == 0:
            with open(out, "rb") as f:
                lb = f.read()
        t.ok(len(la) == len(lb) == 48 * 512 * 4 and la != lb,
             "repacked and file-layout fast paths give logits, not the same bits "
             "(another summation order)")
        ref, err = kl(["-m", model, "--tokens", ids, "--kl-reference", out])
        t.ok(ref is not None and ref["mean_kl"] <= MEAN_KL_LAYOUT and ref["top1"] == 1.0,
             "repacked against the file's layout: mean KL %s (<= %g), top-1 %s"
             % (ref and ref["mean_kl"], MEAN_KL_LAYOUT, ref and ref["top1"]), err)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    main()
