"""PyTorch peer for tools/bench/generate.ts: greedy decoding of GPT-2 with the same weights
(read from the safetensors file the benchmark wrote), computed as transformers'
GPT2LMHeadModel.generate computes it on a CPU: eager attention, a key/value cache that grows
by torch.cat at every token (DynamicCache), the last position's logits, argmax. Debian's
python3-torch has no transformers, so this is its arithmetic written out, not its code.

Also measures the machine's memory-copy bandwidth (the physical limit of batch-1 decoding,
which reads every weight once per token).

Usage: generate_torch.py WEIGHTS JSON  with JSON {prompts, newTokens, heads, layers}; prints one JSON line.
"""
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n])
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        a, b = spec["data_offsets"]
        assert spec["dtype"] == "F32"
        out[name] = torch.frombuffer(bytearray(buf[8 + n + a : 8 + n + b]), dtype=torch.float32).view(spec["shape"])
    return out


def copy_bandwidth():
    """Bytes read + written per second by a 256 MB float32 copy (best of 5)."""
    a = torch.ones(64 << 20)
    b = torch.empty_like(a)
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        b.copy_(a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.numel() * 4 / best


@torch.no_grad()
def greedy(w, prompts, new, H, L):
    ln = lambda x, p: F.layer_norm(x, (x.shape[-1],), w[p + ".weight"], w[p + ".bias"], 1e-5)
    conv1d = lambda x, p: torch.addmm(w[p + ".bias"], x.reshape(-1, x.shape[-1]), w[p + ".weight"]).view(
        *x.shape[:-1], -1
    )
    wte, wpe = w["transformer.wte.weight"], w["transformer.wpe.weight"]
    ids = torch.tensor(prompts)
    B, C = ids.shape[0], wte.shape[1]
    D = C // H
    past = [None] * L
    step_ids, start, out = ids, 0, []
    for _ in range(new):
        T = step_ids.shape[1]
        x = wte[step_ids] + wpe[start : start + T]
        for l in range(L):
            p = f"transformer.h.{l}"
            q, k, v = (z.view(B, T, H, D).transpose(1, 2) for z in conv1d(ln(x, p + ".ln_1"), p + ".attn.c_attn").split(C, 2))
            if past[l] is not None:
                k, v = torch.cat([past[l][0], k], 2), torch.cat([past[l][1], v], 2)
            past[l] = (k, v)
            att = (q @ k.transpose(-2, -1)) / math.sqrt(D)
            if T > 1:
                att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
            y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
            x = x + conv1d(y, p + ".attn.c_proj")
            h = F.gelu(conv1d(ln(x, p + ".ln_2"), p + ".mlp.c_fc"), approximate="tanh")
            x = x + conv1d(h, p + ".mlp.c_proj")
        logits = ln(x[:, -1], "transformer.ln_f") @ wte.T  # [B, V]
        nxt = logits.argmax(-1)
        out.append(nxt)
        step_ids, start = nxt[:, None], start + T
    return torch.stack(out, 1).tolist()


def main():
    w = read_safetensors(sys.argv[1])
    s = json.loads(sys.argv[2])
    torch.set_num_threads(os.cpu_count())
    greedy(w, [p[:8] for p in s["prompts"]], 4, s["heads"], s["layers"])  # warm-up
    t0 = time.perf_counter()
    new = greedy(w, s["prompts"], s["newTokens"], s["heads"], s["layers"])
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "engine": f"PyTorch {torch.__version__} (transformers' GPT-2 decode, DynamicCache)",
                "seconds": seconds,
                "ids": new,
                "copyBytesPerS": copy_bandwidth(),
                "weightBytes": sum(t.numel() * 4 for n, t in w.items() if "wpe" not in n),
            }
        )
    )


if __name__ == "__main__":
    main()
