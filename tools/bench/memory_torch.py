"""PyTorch peer for tools/bench/memory.ts: one training step of the same model, its peak RSS.

Debian's python3-torch has neither transformers nor peft, so the peer is written out here
with their arithmetic: Qwen2 (RMSNorm, RoPE, grouped-query eager attention with q/k/v
biases, SiLU-gated MLP, tied head; as transformers' modeling_qwen2 with eager attention)
with LoRA on every linear layer of the blocks (PEFT's lora.Linear: base frozen, A
kaiming-uniform, B zero, y = W x + s B A x), or GPT-2 (train_throughput_torch.build) in
full. `ckpt` wraps each block in torch.utils.checkpoint, as transformers'
gradient_checkpointing_enable() does. Loss: cross-entropy over the full [T, V] logits.

Usage: memory_torch.py JSON  with JSON {model, batch, seq, ckpt, steps, autocast}; prints one JSON line.
"""
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from train_throughput_torch import build as build_gpt2

QWEN = dict(vocab=151936, d=896, layers=24, heads=14, kv=2, ffn=4864, theta=1e6, eps=1e-6)


class LoraLinear(nn.Module):
    """PEFT's lora.Linear around a frozen nn.Linear: y = base(x) + (alpha / r) B A x."""

    def __init__(self, base, r=16, alpha=32):
        super().__init__()
        self.base = base
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(False)
        self.A = nn.Parameter(torch.empty(r, base.in_features))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.B = nn.Parameter(torch.zeros(base.out_features, r))
        self.s = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.A.T @ self.B.T) * self.s


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(d)), eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    x1, x2 = x.chunk(2, -1)
    return torch.cat((-x2, x1), -1)


class QwenBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, self.h, self.kv = c["d"], c["heads"], c["kv"]
        self.hd = d // self.h
        self.ln1, self.ln2 = RMSNorm(d, c["eps"]), RMSNorm(d, c["eps"])
        self.q = nn.Linear(d, self.h * self.hd)
        self.k = nn.Linear(d, self.kv * self.hd)
        self.v = nn.Linear(d, self.kv * self.hd)
        self.o = nn.Linear(self.h * self.hd, d, bias=False)
        self.gate = nn.Linear(d, c["ffn"], bias=False)
        self.up = nn.Linear(d, c["ffn"], bias=False)
        self.down = nn.Linear(c["ffn"], d, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        h = self.ln1(x)
        q = self.q(h).view(b, t, self.h, self.hd).transpose(1, 2)
        k = self.k(h).view(b, t, self.kv, self.hd).transpose(1, 2)
        v = self.v(h).view(b, t, self.kv, self.hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = self.h // self.kv
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.hd) + mask
        y = att.softmax(-1, dtype=torch.float32) @ v
        x = x + self.o(y.transpose(1, 2).reshape(b, t, -1))
        h = self.ln2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Qwen(nn.Module):
    def __init__(self, c, ckpt):
        super().__init__()
        self.c, self.ckpt = c, ckpt
        self.embed = nn.Embedding(c["vocab"], c["d"])
        self.blocks = nn.ModuleList(QwenBlock(c) for _ in range(c["layers"]))
        self.norm = RMSNorm(c["d"], c["eps"])

    def forward(self, ids):
        t = ids.shape[1]
        hd = self.c["d"] // self.c["heads"]
        inv = 1.0 / (self.c["theta"] ** (torch.arange(0, hd, 2).float() / hd))
        f = torch.outer(torch.arange(t).float(), inv)
        emb = torch.cat((f, f), -1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        mask = torch.full((t, t), float("-inf")).triu(1)[None, None]
        x = self.embed(ids)
        for blk in self.blocks:
            x = checkpoint(blk, x, cos, sin, mask, use_reentrant=False) if self.ckpt and self.training else blk(x, cos, sin, mask)
        return self.norm(x) @ self.embed.weight.T  # tied head: logits [B, T, V]


def main():
    s = json.loads(sys.argv[1])
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    B, T = s["batch"], s["seq"]
    if s["model"] == "qwen":
        model = Qwen(QWEN, s["ckpt"])
        for p in model.parameters():
            p.requires_grad_(False)
        for blk in model.blocks:
            for name in ("q", "k", "v", "o", "gate", "up", "down"):
                setattr(blk, name, LoraLinear(getattr(blk, name)))
        V = QWEN["vocab"]
    else:
        V = 50257
        model = build_gpt2(V, T, 768, 12, 12)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    ids = torch.arange(B * T).mul(7919).remainder(V).view(B, T)
    rss_init = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def step():
        # autocast: torch.autocast on the CPU in bfloat16 (products in bf16, saved as bf16;
        # cross_entropy is on its float32 list)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(s.get("autocast"))):
            logits = model(ids)
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(s["steps"]):
        step()
    ms = (time.perf_counter() - t0) / max(1, s["steps"]) * 1000 if s["steps"] else first * 1000
    print(
        json.dumps(
            {
                "engine": f"PyTorch {torch.__version__}" + (" + LoRA (PEFT's)" if s["model"] == "qwen" else ""),
                "msPerStep": ms,
                "maxRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "initRssMB": rss_init,
                "trainable": sum(p.numel() for p in params),
            }
        )
    )


if __name__ == "__main__":
    main()
