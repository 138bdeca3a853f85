"""dsmodel - the demo model in PyTorch: a small DeepSeek-V3/R1 (deepseek2) network.

It computes exactly what ktx computes for a deepseek2 GGUF (the semantics of
../shared/oracle/README.md, which follow DeepSeek-V3's inference/model.py):

  x = token_embd[id]
  per block:  x += MLA(attn_norm(x));  x += FFN(ffn_norm(x))
  logits = output(output_norm(x))

  MLA   q = q_b(q_a_norm(q_a(x)))                 per head [nope | rope]
        [c | k_rope] = kv_a_mqa(x);  c = kv_a_norm(c)   one latent per token
        k_nope, v = kv_b(c) per head (stored as attn_k_b / attn_v_b)
        rope on q_rope and k_rope: consecutive pairs (x[2i], x[2i+1])
        softmax scale (nope + rope)^-0.5 * mscale^2, mscale = 1 (YaRN factor 1)
  FFN   dense blocks (the first n_dense_lead): down(silu(gate(x)) * up(x))
        MoE blocks: s = sigmoid(ffn_gate_inp(x)); the top-k of s + exp_probs_b
        choose the experts (the bias only selects); weights = chosen s / their
        sum * expert_weights_scale; plus the shared expert, unweighted.
  RMSNorm: x / sqrt(mean(x^2) + eps) * w, eps 1e-6.

The routing bias is not trained by gradients: train.py nudges it towards
balanced expert load after every step (DeepSeek-V3's auxiliary-loss-free
balancing).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

# The demo model's hyper-parameters (also written to the GGUF by train.py).
CONFIG = {
    "n_vocab": 4020,
    "n_embd": 256,
    "n_layer": 4,
    "n_dense_lead": 1,
    "n_head": 4,
    "q_lora": 128,
    "kv_lora": 128,
    "qk_nope": 64,
    "qk_rope": 32,
    "v_head": 64,
    "n_ff": 768,
    "n_expert": 8,
    "n_expert_used": 2,
    "n_ff_exp": 256,
    "n_shared": 1,
    "weights_scale": 2.5,
    "rope_base": 10000.0,
    "rms_eps": 1e-6,
    "n_ctx": 512,
}


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(n_rot, n_pos, base):
    """cos and sin [n_pos, n_rot/2] of pos * base^(-2i/n_rot)."""
    inv = 1.0 / base ** (torch.arange(0, n_rot, 2, dtype=torch.float64) / n_rot)
    ang = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    """Rotates consecutive pairs of x [B, T, H, n_rot] by the angles of positions 0..T-1."""
    t = x.shape[1]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[:t, None, :], sin[:t, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


class MLA(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        h, nope, rope, v = c["n_head"], c["qk_nope"], c["qk_rope"], c["v_head"]
        self.q_a = nn.Linear(c["n_embd"], c["q_lora"], bias=False)
        self.q_a_norm = RMSNorm(c["q_lora"], c["rms_eps"])
        self.q_b = nn.Linear(c["q_lora"], h * (nope + rope), bias=False)
        self.kv_a = nn.Linear(c["n_embd"], c["kv_lora"] + rope, bias=False)
        self.kv_a_norm = RMSNorm(c["kv_lora"], c["rms_eps"])
        self.kv_b = nn.Linear(c["kv_lora"], h * (nope + v), bias=False)
        self.out = nn.Linear(h * v, c["n_embd"], bias=False)
        self.scale = (nope + rope) ** -0.5

    def forward(self, x, cos, sin):
        c = self.c
        b, t, _ = x.shape
        h, nope, rope, vd = c["n_head"], c["qk_nope"], c["qk_rope"], c["v_head"]
        q = self.q_b(self.q_a_norm(self.q_a(x))).view(b, t, h, nope + rope)
        q_nope, q_rope = q.split([nope, rope], dim=-1)
        kv = self.kv_a(x)
        lat, k_rope = kv.split([c["kv_lora"], rope], dim=-1)
        lat = self.kv_a_norm(lat)
        q_rope = apply_rope(q_rope, cos, sin)
        k_rope = apply_rope(k_rope.view(b, t, 1, rope), cos, sin)
        kvb = self.kv_b(lat).view(b, t, h, nope + vd)
        k_nope, v = kvb.split([nope, vd], dim=-1)
        q = torch.cat((q_nope, q_rope), dim=-1).transpose(1, 2)                 # [B, H, T, nope+rope]
        k = torch.cat((k_nope, k_rope.expand(b, t, h, rope)), dim=-1).transpose(1, 2)
        att = (q @ k.transpose(-1, -2)) * self.scale                             # [B, H, T, T]
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        o = (att @ v.transpose(1, 2)).transpose(1, 2).reshape(b, t, h * vd)
        return self.out(o)


class DenseFFN(nn.Module):
    def __init__(self, n_embd, n_ff):
        super().__init__()
        self.gate = nn.Linear(n_embd, n_ff, bias=False)
        self.up = nn.Linear(n_embd, n_ff, bias=False)
        self.down = nn.Linear(n_ff, n_embd, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class MoE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        e, d, f = c["n_expert"], c["n_embd"], c["n_ff_exp"]
        self.gate_inp = nn.Linear(d, e, bias=False)
        self.register_buffer("exp_probs_b", torch.zeros(e))
        std = d ** -0.5
        self.gate_exps = nn.Parameter(torch.randn(e, f, d) * std)
        self.up_exps = nn.Parameter(torch.randn(e, f, d) * std)
        self.down_exps = nn.Parameter(torch.randn(e, d, f) * f ** -0.5)
        self.shexp = DenseFFN(d, f * c["n_shared"])
        self.load = torch.zeros(e)   # tokens routed to each expert since the last reset

    def forward(self, x):
        c = self.c
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        s = torch.sigmoid(self.gate_inp(x))
        _, idx = torch.topk(s + self.exp_probs_b, c["n_expert_used"], dim=-1)
        w = s.gather(1, idx)
        w = w / w.sum(-1, keepdim=True) * c["weights_scale"]
        y = torch.zeros_like(x)
        for e in range(c["n_expert"]):
            tok, slot = (idx == e).nonzero(as_tuple=True)
            if tok.numel() == 0:
                continue
            h = x[tok]
            o = F.silu(h @ self.gate_exps[e].t()) * (h @ self.up_exps[e].t())
            o = o @ self.down_exps[e].t()
            y.index_add_(0, tok, o * w[tok, slot, None])
        y = y + self.shexp(x)
        self.load += torch.bincount(idx.flatten(), minlength=c["n_expert"]).float()
        return y.view(shape)


class Block(nn.Module):
    def __init__(self, c, dense):
        super().__init__()
        self.attn_norm = RMSNorm(c["n_embd"], c["rms_eps"])
        self.attn = MLA(c)
        self.ffn_norm = RMSNorm(c["n_embd"], c["rms_eps"])
        self.ffn = DenseFFN(c["n_embd"], c["n_ff"]) if dense else MoE(c)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.ffn(self.ffn_norm(x))


class DemoModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.token_embd = nn.Embedding(c["n_vocab"], c["n_embd"])
        self.blocks = nn.ModuleList(Block(c, i < c["n_dense_lead"]) for i in range(c["n_layer"]))
        self.output_norm = RMSNorm(c["n_embd"], c["rms_eps"])
        self.output = nn.Linear(c["n_embd"], c["n_vocab"], bias=False)
        cos, sin = rope_tables(c["qk_rope"], c["n_ctx"], c["rope_base"])
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        for name, p in self.named_parameters():
            if name.endswith("weight") and p.dim() == 2:
                std = 0.02 if "token_embd" in name else p.shape[1] ** -0.5
                if name.endswith(("out.weight", "down.weight")):
                    std /= math.sqrt(2 * c["n_layer"])
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids):
        x = self.token_embd(ids)
        for blk in self.blocks:
            x = blk(x, self.rope_cos, self.rope_sin)
        return self.output(self.output_norm(x))

    def moe_layers(self):
        return [b.ffn for b in self.blocks if isinstance(b.ffn, MoE)]


# GGUF tensor names of a block's parameters, by PyTorch name.
_BLOCK_NAMES = {
    "attn_norm.weight": "attn_norm.weight",
    "attn.q_a.weight": "attn_q_a.weight",
    "attn.q_a_norm.weight": "attn_q_a_norm.weight",
    "attn.q_b.weight": "attn_q_b.weight",
    "attn.kv_a.weight": "attn_kv_a_mqa.weight",
    "attn.kv_a_norm.weight": "attn_kv_a_norm.weight",
    "attn.out.weight": "attn_output.weight",
    "ffn_norm.weight": "ffn_norm.weight",
    "ffn.gate.weight": "ffn_gate.weight",
    "ffn.up.weight": "ffn_up.weight",
    "ffn.down.weight": "ffn_down.weight",
    "ffn.gate_inp.weight": "ffn_gate_inp.weight",
    "ffn.exp_probs_b": "exp_probs_b.bias",
    "ffn.gate_exps": "ffn_gate_exps.weight",
    "ffn.up_exps": "ffn_up_exps.weight",
    "ffn.down_exps": "ffn_down_exps.weight",
    "ffn.shexp.gate.weight": "ffn_gate_shexp.weight",
    "ffn.shexp.up.weight": "ffn_up_shexp.weight",
    "ffn.shexp.down.weight": "ffn_down_shexp.weight",
}


def gguf_tensors(model):
    """[(GGUF name, float32 tensor in GGUF row-major order)], in file order.

    A PyTorch Linear weight [out, in] is ggml ne {in, out} as it stands.
    kv_b [H*(nope+v), kv_lora] is split the way llama.cpp's converter does
    for the MLA layout: attn_k_b [H][kv_lora][nope] (each head's K part
    transposed, ne {nope, kv_lora, H}) and attn_v_b [H][v][kv_lora]
    (ne {kv_lora, v, H})."""
    c = model.c
    h, nope, vd, kvl = c["n_head"], c["qk_nope"], c["v_head"], c["kv_lora"]
    out = [("token_embd.weight", model.token_embd.weight)]
    for i, blk in enumerate(model.blocks):
        for pname, t in blk.state_dict(keep_vars=True).items():
            if pname == "attn.kv_b.weight":
                kvb = t.detach().view(h, nope + vd, kvl)
                out.append(("blk.%d.attn_k_b.weight" % i, kvb[:, :nope, :].transpose(1, 2)))
                out.append(("blk.%d.attn_v_b.weight" % i, kvb[:, nope:, :]))
                continue
            out.append(("blk.%d.%s" % (i, _BLOCK_NAMES[pname]), t))
    out.append(("output_norm.weight", model.output_norm.weight))
    out.append(("output.weight", model.output.weight))
    return [(n, t.detach().float().contiguous()) for n, t in out]


def load_gguf_tensors(model, tensors):
    """Sets the model's weights from {GGUF name: float32 tensor in GGUF order}
    (the inverse of gguf_tensors)."""
    c = model.c
    h, nope, vd, kvl = c["n_head"], c["qk_nope"], c["v_head"], c["kv_lora"]
    with torch.no_grad():
        model.token_embd.weight.copy_(tensors["token_embd.weight"])
        model.output_norm.weight.copy_(tensors["output_norm.weight"])
        model.output.weight.copy_(tensors["output.weight"])
        for i, blk in enumerate(model.blocks):
            sd = blk.state_dict(keep_vars=True)
            for pname, t in sd.items():
                if pname == "attn.kv_b.weight":
                    kb = tensors["blk.%d.attn_k_b.weight" % i].view(h, kvl, nope).transpose(1, 2)
                    vb = tensors["blk.%d.attn_v_b.weight" % i].view(h, vd, kvl)
                    t.copy_(torch.cat((kb, vb), dim=1).reshape(h * (nope + vd), kvl))
                    continue
                gname = "blk.%d.%s" % (i, _BLOCK_NAMES[pname])
                t.copy_(tensors[gname].view(t.shape))
