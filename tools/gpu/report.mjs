// The table tools/gpu/check.sh prints last: every benchmark row it wrote to $OUT/<run>.json,
// each against the transformers (or peft / TRL-style) eager row of the same workload measured
// in the same call. Usage: node tools/gpu/report.mjs OUT_DIR "GPU name"
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, gpu = 'GPU'] = process.argv.slice(2);
// run name -> the run whose Python row is its peer (same batch and workload)
const RUNS = [
  ['b16', 'b16', 'GPT-2 124M, batch 16 x 1024'],
  ['b16-graph', 'b16', 'GPT-2 124M, batch 16 x 1024'],
  ['b16-recorded', 'b16', 'GPT-2 124M, batch 16 x 1024'],
  ['b16-bf16', 'b16', 'GPT-2 124M, batch 16 x 1024'],
  ['b16-pad', 'b16', 'GPT-2 124M, batch 16 x 1024'],
  ['b16-all', 'b16', 'GPT-2 124M, batch 16 x 1024'],
  ['b16-lce', 'b16', 'GPT-2 124M, batch 16 x 1024'],
  ['b16-best', 'b16', 'GPT-2 124M, batch 16 x 1024'],
  ['b16-compile', 'b16', 'GPT-2 124M, batch 16 x 1024'],
  ['b8', 'b8', 'GPT-2 124M, batch 8 x 1024'],
  ['b8-graph', 'b8', 'GPT-2 124M, batch 8 x 1024'],
  ['b8-recorded', 'b8', 'GPT-2 124M, batch 8 x 1024'],
  ['b8-all', 'b8', 'GPT-2 124M, batch 8 x 1024'],
  ['b8-best', 'b8', 'GPT-2 124M, batch 8 x 1024'],
  ['lora-graph', 'lora-graph', 'LoRA r16 (c_attn, c_proj, c_fc), batch 16 x 1024'],
  ['lora-recorded', 'lora-recorded', 'LoRA r16 (c_attn, c_proj, c_fc), batch 16 x 1024'],
  ['qwen3-lora-graph', 'qwen3-lora-graph', 'Qwen3-0.6B-shaped, LoRA r16 (all linear), batch 4 x 2048'],
  ['dpo', 'dpo', 'DPO step, 8 pairs = 16 x 1024'],
  ['dpo-recorded', 'dpo-recorded', 'DPO step, 8 pairs = 16 x 1024'],
];
const rows = (name) =>
  existsSync(join(dir, `${name}.json`)) ? JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) : [];
const isPython = (r) => !r.engine.startsWith('Anneal');

console.log(`\n## ${gpu}: training steps, Anneal against transformers in the same call\n`);
console.log(
  '| workload | engine | ms/step | tokens/s | vs eager peer | MFU | host reads/step | live MB after warm-up → end | GPU MB (nvidia-smi) | loss first → last |',
);
console.log('|---|---|---:|---:|---:|---:|---:|---|---:|---|');
for (const [name, peerRun, workload] of RUNS) {
  const peer = rows(peerRun).find((r) => isPython(r) && !/torch\.compile/.test(r.engine));
  for (const r of rows(name)) {
    if (name !== peerRun && isPython(r) && !/torch\.compile/.test(r.engine)) continue; // shown with its own run
    const vs = peer ? `${(r.tokensPerSec / peer.tokensPerSec).toFixed(2)}x` : 'n/a';
    const reads = r.hostReadsPerStep == null ? 'n/a' : r.hostReadsPerStep.toFixed(2);
    const mb = (b) => (b / 2 ** 20).toFixed(0);
    console.log(
      `| ${workload} | ${r.engine} | ${r.msPerStep.toFixed(1)} | ${r.tokensPerSec.toFixed(0)} | ${vs} | ${(r.mfu * 100).toFixed(1)}% | ${reads} | ${mb(r.liveBytesStart)} → ${mb(r.liveBytesEnd)} | ${r.gpuMemMB ?? 'n/a'} | ${r.lossFirst.toFixed(3)} → ${r.lossLast.toFixed(3)} |`,
    );
  }
}
