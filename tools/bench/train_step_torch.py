"""PyTorch peer for tools/bench/train-step.ts: the quickstart's GPT-2 step on CPU.

Same shapes and arithmetic: GPT-2 blocks (pre-LN, tanh-GELU), tied LM head, mean
cross-entropy, global-norm clip 1.0, AdamW. Prints one JSON line {name, msPerStep}.
Usage: train_step_torch.py [STEPS] [THREADS]
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

from train_throughput_torch import build  # same model definition as the throughput peer

B, T, V, C, L, H = 16, 64, 2048, 128, 4, 4


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    if len(sys.argv) > 2:
        torch.set_num_threads(int(sys.argv[2]))
    torch.manual_seed(0)
    model = build(V, T, C, H, L)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    ids = torch.arange(B * T).mul(7919).remainder(V).view(B, T)

    def step():
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    ms = (time.perf_counter() - t0) / steps * 1000
    print(json.dumps({"name": f"PyTorch {torch.__version__} CPU ({torch.get_num_threads()} threads)", "msPerStep": ms}))


if __name__ == "__main__":
    main()
