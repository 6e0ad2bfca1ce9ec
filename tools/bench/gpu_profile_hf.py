"""Where an eager GPT-2 124M training step spends its GPU time: transformers' GPT2LMHeadModel
(SDPA, bf16 autocast, fused AdamW, batch 16 x 1024), the same step tools/bench/gpu-train.ts
times, under torch.profiler for 5 steps after 10 warm-up steps. Prints the CUDA kernels by
total GPU time, grouped into families, as a Markdown table. Anneal's step dispatches the same
ATen kernels (matmuls, SDPA, layer norm, GELU, cross-entropy, fused AdamW), so this is also
the breakdown of its step; run by tools/gpu/check.sh on the GPU machine."""
import os
import re
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile
from transformers import GPT2Config, GPT2LMHeadModel

B, T = int(os.environ.get("BENCH_BATCH", "16")), 1024
torch.backends.cuda.matmul.allow_tf32 = True
torch.manual_seed(0)
model = GPT2LMHeadModel._from_config(GPT2Config(n_positions=T, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0), attn_implementation="sdpa").cuda().train()
opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
x = torch.randint(0, 50257, (B, T), device="cuda")


def step():
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(input_ids=x, labels=x).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


for _ in range(10):
    step()
torch.cuda.synchronize()
with profile(activities=[ProfilerActivity.CUDA]) as prof:
    for _ in range(5):
        step()
    torch.cuda.synchronize()

FAMILIES = [
    ("matmul (cuBLAS/cutlass GEMM)", r"gemm|cutlass|sm90|nvjet|xmma|cublas"),
    ("attention (flash / efficient SDPA)", r"flash|fmha|attention|efficient"),
    ("cross-entropy / log-softmax", r"softmax|nll|cross_entropy"),
    ("layer norm", r"layer_norm|LayerNorm"),
    ("GELU", r"gelu|GeluCUDA"),
    ("dtype casts (autocast copies)", r"copy|Copy|cast"),
    ("AdamW (fused)", r"adam|Adam"),
    ("elementwise add/mul/fill/other", r"elementwise|vectorized|reduce|fill|Fill|index|embedding|gather|scatter"),
]
fam = defaultdict(float)
gpu_us = lambda e: getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)  # noqa: E731 (renamed in torch 2.4)
events = [e for e in prof.key_averages() if gpu_us(e) > 0]
total = sum(gpu_us(e) for e in events) or 1.0
for e in events:
    name = next((f for f, pat in FAMILIES if re.search(pat, e.key)), "other")
    fam[name] += gpu_us(e)
print(f"\ntransformers eager GPT-2 124M step, batch {B} x {T}: GPU time by kernel family (5 steps, {total / 5 / 1000:.1f} ms of kernels per step)\n")
print("| kernel family | ms/step | share |")
print("|---|---:|---:|")
for f, us in sorted(fam.items(), key=lambda kv: -kv[1]):
    print(f"| {f} | {us / 5 / 1000:.2f} | {us / total * 100:.1f}% |")
print("\n| top kernels | calls/step | ms/step |")
print("|---|---:|---:|")
for e in sorted(events, key=lambda e: -gpu_us(e))[:12]:
    print(f"| {e.key[:90].replace('|', '/')} | {e.count / 5:.0f} | {gpu_us(e) / 5 / 1000:.2f} |")
