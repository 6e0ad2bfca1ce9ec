// Greedy decoding speed, Anneal against PyTorch in the same run, the same GPT-2-small weights
// and prompts (identical ids required), each measurement in its own process:
//
//   npx tsx tools/bench/generate.ts [NEW_TOKENS]      (default 128; 32-token prompts, batch 1 and 8)
//
// Anneal rows: the static KV cache with the decode step replayed natively (generate's
// default), the same step dispatched from JS (replay off), and the growing (concatenated)
// cache of before; and the static cache with the projections quantized to int8 weight-only
// (per-row scales, the fused AnnealInt8Linear product; the tied head stays float32), whose
// tokens are compared with PyTorch's float32 ones position by position. The PyTorch peer
// (generate_torch.py) decodes as transformers' GPT-2 does on a CPU (DynamicCache, eager
// attention); it also measures the machine's memory-copy bandwidth: batch-1 decoding reads
// every weight once per token, so weight bytes × tokens/s against that bandwidth says how close
// to the physical limit a row runs.
//
// On a GPU (ANNEAL_DEVICE=cuda:0 BENCH_BATCHES=1,8,64, as tools/gpu/check.sh runs it) the peer
// is transformers' own `generate` (generate_hf.py) and the rows are the float32 replayed and
// dispatched decode steps.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerTorchBackend } from '@anneal/backend-torch';
import { serializeSafetensors, useBackend, type TensorToWrite } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, generate, type GenerateStats } from '@anneal/modeling';
import { quantize } from '@anneal/quantization';
import { runJson, runSelf } from './child.js';
import { pythonWithTorch } from './python.js';

const CONFIG = { ...GPT2_DEFAULTS, residPdrop: 0, embdPdrop: 0, attnPdrop: 0 };
// ANNEAL_DEVICE=cuda:0 (tools/gpu/check.sh): transformers' generate is the peer; BENCH_BATCHES picks the batches
const DEVICE = process.env.ANNEAL_DEVICE ?? 'cpu';
const GPU = DEVICE.startsWith('cuda');
const BATCHES = (process.env.BENCH_BATCHES ?? '1,8').split(',').map(Number);
const PROMPT = 32;

type Mode = 'static' | 'dispatched' | 'dynamic' | 'int8';
interface Row {
  engine: string;
  seconds: number;
  ids: number[][];
  replayed?: number;
  copyBytesPerS?: number;
  weightBytes?: number;
}

const prompts = (batch: number) =>
  Array.from({ length: batch }, (_, b) => Array.from({ length: PROMPT }, (_, i) => (i * 7919 + b * 131 + 7) % 50257));

async function child(mode: Mode | 'save', batch: number, newTokens: number, file: string): Promise<void> {
  registerTorchBackend({ warn: () => undefined });
  await useBackend('torch', {});
  const model = Gpt2LMHeadModel.init(CONFIG, 1);
  if (mode === 'save') {
    const tensors = new Map<string, TensorToWrite>();
    for (const [name, v] of model.params)
      tensors.set(name, { dtype: 'F32', shape: v.shape, data: v.dataSync() as Float32Array });
    writeFileSync(file, serializeSafetensors(tensors));
    console.log('{}');
    return;
  }
  let weightBytes: number | undefined;
  if (mode === 'int8') {
    const r = quantize(model, { method: 'int8', blockSize: 64, doubleQuant: false });
    // what a token reads: the int8 projections and their scales, the float32 head (wte) and norms
    weightBytes =
      r.storedBytes +
      [...model.params.values()].reduce((n, p) => n + p.size * 4, 0) -
      CONFIG.nPositions * CONFIG.nEmbd * 4;
  }
  const o = {
    cache: mode === 'dynamic' ? ('dynamic' as const) : ('static' as const),
    replay: mode === 'static' || mode === 'int8',
  };
  const ps = prompts(batch);
  generate(model, ps, { maxNewTokens: 4, ...o }); // warm-up
  const stats: GenerateStats = {};
  const t0 = performance.now();
  const out = generate(model, ps, { maxNewTokens: newTokens, ...o, stats });
  const seconds = (performance.now() - t0) / 1000;
  const label = {
    static: 'static cache, decode step replayed',
    dispatched: 'static cache, dispatched',
    dynamic: 'growing cache',
    int8: 'static cache, replayed, int8 weight-only',
  };
  const row: Row = {
    engine: `Anneal torch, ${label[mode]}`,
    seconds,
    ids: out.map((r) => r.slice(PROMPT)),
    replayed: stats.replayed,
    weightBytes,
  };
  console.log(JSON.stringify(row));
}

async function main(): Promise<void> {
  const [what, ...rest] = process.argv.slice(2);
  if (what === 'child') return child(rest[0] as Mode | 'save', Number(rest[1]), Number(rest[2]), rest[3]);
  process.env.OPENBLAS_NUM_THREADS ??= '1'; // Anneal's default threading, inherited by the peer (docs/benchmarks.md)
  const newTokens = Number(what ?? 128);
  const file = join(mkdtempSync(join(tmpdir(), 'anneal-gen-')), 'gpt2.safetensors');
  const script = fileURLToPath(import.meta.url);
  runSelf(script, ['child', 'save', '1', '0', file]);
  let bandwidth = 0;
  let weightBytes = 0;
  const where = GPU ? DEVICE : `${cpus().length} cores`;
  const peerName = GPU ? 'transformers' : 'PyTorch';
  console.log(`\nGPT-2 small (124M, float32), ${PROMPT}-token prompts, ${newTokens} new tokens, greedy, ${where}\n`);
  console.log(
    `| batch | engine | new tokens/s | vs ${peerName} | weight GB/s (batch 1) | replayed steps | ids = ${peerName} |`,
  );
  console.log('|---:|---|---:|---:|---:|---:|---|');
  for (const batch of BATCHES) {
    const spec = { prompts: prompts(batch), newTokens, heads: CONFIG.nHead, layers: CONFIG.nLayer, device: DEVICE };
    const peer = runJson<Row>(pythonWithTorch(), [
      fileURLToPath(new URL(GPU ? './generate_hf.py' : './generate_torch.py', import.meta.url)),
      file,
      JSON.stringify(spec),
    ]);
    if (peer?.copyBytesPerS) [bandwidth, weightBytes] = [peer.copyBytesPerS, peer.weightBytes ?? 0];
    // on a GPU: the float32 decode step replayed and dispatched (int8's kernel is the CPU's)
    const modes: Mode[] = GPU ? ['static', 'dispatched'] : ['static', 'dispatched', 'dynamic', 'int8'];
    const rows = [
      peer,
      ...modes.map((m) => runSelf<Row>(script, ['child', m, String(batch), String(newTokens), file])),
    ];
    for (const r of rows) {
      if (!r) continue;
      const tps = (batch * newTokens) / r.seconds;
      const vs = peer ? `${(peer.seconds / r.seconds).toFixed(2)}x` : 'n/a';
      const gbs = batch === 1 ? (((r.weightBytes ?? weightBytes) * newTokens) / r.seconds / 1e9).toFixed(2) : '';
      // greedy decoding diverges for good at the first differing token: the shortest shared prefix of the rows
      const prefix = peer
        ? Math.min(
            ...r.ids.map((row, b) => row.findIndex((t, i) => t !== peer.ids[b][i])).map((i) => (i < 0 ? newTokens : i)),
          )
        : 0;
      const same = !peer
        ? 'n/a'
        : prefix === newTokens
          ? 'yes'
          : r.engine.includes('int8') || GPU // (cuBLAS picks its own summation order per shape)
            ? `first ${prefix} tokens`
            : 'NO';
      console.log(`| ${batch} | ${r.engine} | ${tps.toFixed(1)} | ${vs} | ${gbs} | ${r.replayed ?? ''} | ${same} |`);
    }
  }
  if (GPU) return;
  console.log(
    `\nMemory-copy bandwidth (256 MB float32 copy, read + write, best of 5): ${(bandwidth / 1e9).toFixed(2)} GB/s; ` +
      `weights read per token at batch 1: ${(weightBytes / 1e6).toFixed(0)} MB`,
  );
}

await main();
