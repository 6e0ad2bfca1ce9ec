"""Hugging Face transformers peer for tools/bench/gpu-train.ts: GPT2LMHeadModel from
GPT2Config (GPT-2 124M, no dropout), SDPA attention, bf16 autocast, AdamW(fused=True) with
weight decay on matrices only, the loss read every 10 steps. Saves its initial weights to
$BENCH_INIT_DIR (config.json + model.safetensors) for Anneal to start from. Prints one JSON row.
BENCH_MODEL=qwen3-0.6b: Qwen3ForCausalLM from Qwen3Config with the shape gpu-train.ts passes in
BENCH_QWEN3_CONFIG (Qwen3-0.6B's), seq BENCH_CTX (2048), BENCH_LORA=1: peft's LoRA on "all-linear".
BENCH_DPO=1: TRL's DPO step written out (concatenated forward of chosen and rejected, a frozen
reference copy under no_grad, log-probs of the completion tokens as TRL's get_batch_logps,
-logsigmoid(beta x margin), beta 0.1, lr 1e-6, no weight decay), so TRL need not be installed."""
import json
import os
import subprocess
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

B = int(os.environ.get("BENCH_BATCH", "16"))
T = int(os.environ.get("BENCH_CTX", "1024"))
QWEN3 = os.environ.get("BENCH_MODEL") == "qwen3-0.6b"
STEPS = int(os.environ.get("BENCH_STEPS", "200"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "20"))
LOG_EVERY = int(os.environ.get("BENCH_LOG_EVERY", "10"))
DPO = os.environ.get("BENCH_DPO") == "1"
COMPILE = os.environ.get("BENCH_HF_COMPILE") == "1"  # torch.compile(model), default mode
LR = 1e-6 if DPO else 6e-4


def batches(b, t, vocab=50257):
    # The same MINSTD generator as gpu-train.ts, so both engines see the same tokens.
    s, out = 1234567, []
    for _ in range(4):
        xs = []
        for _ in range(b * t):
            s = (s * 48271) % 2147483647
            xs.append(s % vocab)
        out.append(torch.tensor(xs, dtype=torch.long).view(b, t).pin_memory())
    return out


def dpo_batch(data, i, b, t):
    # The same pairs as gpu-train.ts's dpoBatch: chosen = row k of batch i; rejected = its
    # prompt (first t/2 tokens) + the second half of row k of batch i + 1; prompt labels -100.
    a, nxt = data[i % len(data)], data[(i + 1) % len(data)]
    rejected = torch.cat([a[:, : t // 2], nxt[:, t // 2 :]], dim=1)
    ids = torch.cat([a, rejected], dim=0)
    labels = ids.clone()
    labels[:, : t // 2] = -100
    return ids, labels


def batch_logps(model, ids, labels):
    # TRL's get_batch_logps: position t predicts labels[t + 1]; -100 does not count; summed.
    logits = model(input_ids=ids).logits[:, :-1, :]
    targets = labels[:, 1:].clone()
    mask = targets != -100
    targets[~mask] = 0
    per_token = torch.gather(logits.log_softmax(-1), 2, targets.unsqueeze(2)).squeeze(2)
    return (per_token * mask).sum(-1)


def gpu_mem_mb():
    r = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        pid, mem = [x.strip() for x in line.split(",")]
        if pid == str(os.getpid()):
            return float(mem)
    return None


def live_cuda_tensors():
    import gc

    return sum(1 for o in gc.get_objects() if torch.is_tensor(o) and o.is_cuda)


def main():
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)
    if QWEN3:
        from transformers import Qwen3Config, Qwen3ForCausalLM

        shape = {k: v for k, v in json.loads(os.environ["BENCH_QWEN3_CONFIG"]).items() if k != "model_type"}
        cfg = Qwen3Config(**shape)
        model = Qwen3ForCausalLM._from_config(cfg, attn_implementation="sdpa")
    else:
        cfg = GPT2Config(n_positions=T, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        model = GPT2LMHeadModel._from_config(cfg, attn_implementation="sdpa")
    if os.environ.get("BENCH_INIT_DIR"):  # Anneal starts from these same weights
        model.save_pretrained(os.environ["BENCH_INIT_DIR"], safe_serialization=True)
    model = model.cuda().train()
    lora = os.environ.get("BENCH_LORA") == "1"
    if lora:
        from peft import LoraConfig, get_peft_model

        if QWEN3:
            lcfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
        else:
            lcfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True, task_type="CAUSAL_LM")
        model = get_peft_model(model, lcfg)
    ref = None
    if DPO:  # TRL's default reference without peft: a frozen copy of the initial policy
        ref = GPT2LMHeadModel._from_config(cfg, attn_implementation="sdpa")
        ref.load_state_dict(model.state_dict())
        ref = ref.cuda().eval().requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if COMPILE:  # compiled on the first (warm-up) steps, outside the timed ones
        model = torch.compile(model)
    decay = [p for p in trainable if p.dim() >= 2 and not lora and not DPO]
    no_decay = [p for p in trainable if p.dim() < 2 or lora or DPO]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=LR, betas=(0.9, 0.95), eps=1e-8, fused=True)
    data = batches(B, T, cfg.vocab_size)
    losses, pending = [], None

    def step(i):
        nonlocal pending
        if DPO:
            ids, labels = dpo_batch(data, i, B, T)
            ids, labels = ids.cuda(non_blocking=True), labels.cuda(non_blocking=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                with torch.no_grad():
                    r = batch_logps(ref, ids, labels)
                p = batch_logps(model, ids, labels)
                margin = (p[:B] - r[:B]) - (p[B:] - r[B:])
                loss = -torch.nn.functional.logsigmoid(0.1 * margin).mean()
        else:
            x = data[i % len(data)].cuda(non_blocking=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        pending = loss.detach()
        if (i + 1) % LOG_EVERY == 0:
            losses.append(pending.item())

    for i in range(WARMUP):
        step(i)
    torch.cuda.synchronize()
    start_bytes = torch.cuda.memory_allocated()
    start_tensors = live_cuda_tensors()
    t0 = time.perf_counter()
    for i in range(WARMUP, STEPS):
        step(i)
    torch.cuda.synchronize()
    ms = (time.perf_counter() - t0) / (STEPS - WARMUP) * 1000
    import transformers

    print(json.dumps({
        "engine": f"transformers {transformers.__version__} (torch {torch.__version__}, sdpa)" + (f", peft LoRA ({sum(p.numel() for p in trainable)} trainable)" if lora else "") + (", DPO step as TRL's" if DPO else "") + (", torch.compile" if COMPILE else ", eager"),
        "batch": B, "ctx": T, "steps": STEPS, "msPerStep": ms, "tokensPerSec": (2 if DPO else 1) * B * T * 1000 / ms,
        "hostReadsPerStep": None, "liveBytesStart": start_bytes, "liveBytesEnd": torch.cuda.memory_allocated(),
        "tensorsStart": start_tensors, "tensorsEnd": live_cuda_tensors(), "gpuMemMB": gpu_mem_mb(), "lossFirst": losses[0], "lossLast": losses[-1],
    }))


if __name__ == "__main__":
    main()
