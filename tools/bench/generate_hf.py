"""transformers peer for tools/bench/generate.ts on a GPU (the GPU machine has transformers;
Debian's python3-torch has not, so on CPU generate_torch.py writes its arithmetic out instead):
GPT2LMHeadModel with the benchmark's weights (the safetensors file it wrote, HF names, the head
tied to wte), `model.generate` greedy with its default cache, float32 without TF32, no EOS, so
every row gets exactly newTokens tokens.

Usage: generate_hf.py WEIGHTS JSON  with JSON {prompts, newTokens, heads, layers, device}; prints one JSON line.
"""
import json
import sys
import time

import torch
import transformers
from safetensors.torch import load_file
from transformers import GPT2Config, GPT2LMHeadModel


def main():
    spec = json.loads(sys.argv[2])
    device = spec.get("device", "cuda:0")
    torch.backends.cuda.matmul.allow_tf32 = False  # Anneal's side runs with ANNEAL_TF32=0 too
    torch.backends.cudnn.allow_tf32 = False
    config = GPT2Config(n_layer=spec["layers"], n_head=spec["heads"], resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
    model = GPT2LMHeadModel(config)
    model.load_state_dict(load_file(sys.argv[1]), strict=False)  # lm_head.weight is wte (tied)
    model.tie_weights()
    model.to(device).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    ids = torch.tensor(spec["prompts"], device=device)
    mask = torch.ones_like(ids)
    new = spec["newTokens"]
    with torch.no_grad():
        model.generate(ids[:, :8], attention_mask=mask[:, :8], max_new_tokens=4, do_sample=False)  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model.generate(ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new, do_sample=False)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "engine": f"transformers {transformers.__version__} generate (torch {torch.__version__}, {torch.cuda.get_device_name()})",
                "seconds": seconds,
                "ids": out[:, ids.shape[1] :].tolist(),
            }
        )
    )


if __name__ == "__main__":
    main()
