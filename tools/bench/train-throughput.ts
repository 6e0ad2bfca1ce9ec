// Tokens/s of a full GPT-2 training step (forward, backward, AdamW) and peak memory, per
// engine, for two shapes, against the same model in PyTorch run in the same invocation.
// Each (shape, engine) runs in its own process so that peak RSS is its own.
//
//   npx tsx tools/bench/train-throughput.ts            (all rows; B on wasm takes minutes)
//   npx tsx tools/bench/train-throughput.ts A          (shape A only)
//   npx tsx tools/bench/train-throughput.ts B torch    (shape B, the torch backend and PyTorch only)
//
// A: vocab 8192, ctx 128, d 256, 4 heads, 4 layers, batch 8
// B: GPT-2 small (vocab 50257, d 768, 12 layers, 12 heads), ctx 256, batch 2
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { registerTorchBackend } from '@anneal/backend-torch';
import { AdamW, useBackend, valueAndGrads, type BackendName } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, causalLmLossSum } from '@anneal/modeling';
import { pythonWithTorch } from './python.js';
import { runJson, runSelf } from './child.js';

const SHAPES = {
  A: { vocab: 8192, ctx: 128, d: 256, heads: 4, layers: 4, batch: 8, steps: 5 },
  B: { vocab: 50257, ctx: 256, d: 768, heads: 12, layers: 12, batch: 2, steps: 2 },
} as const;
type ShapeName = keyof typeof SHAPES;

interface Row {
  engine: string;
  msPerStep: number;
  maxRssMB: number;
}

async function child(shapeName: ShapeName, engine: BackendName): Promise<void> {
  const s = SHAPES[shapeName];
  if (engine === 'torch') registerTorchBackend({ warn: () => undefined });
  await useBackend(engine, {});
  const model = Gpt2LMHeadModel.init(
    {
      ...GPT2_DEFAULTS,
      vocabSize: s.vocab,
      nPositions: s.ctx,
      nEmbd: s.d,
      nHead: s.heads,
      nLayer: s.layers,
      residPdrop: 0,
      embdPdrop: 0,
      attnPdrop: 0,
    },
    1,
  );
  const opt = new AdamW(model.params, { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 });
  const ids = Int32Array.from({ length: s.batch * s.ctx }, (_, i) => (i * 7919) % s.vocab);
  const step = () => {
    const { value, grads } = valueAndGrads(model.params, () => {
      const { sum, count } = causalLmLossSum(
        model.forward({ inputIds: tf.tensor2d(ids, [s.batch, s.ctx], 'int32') }).logits,
        ids,
      );
      return tf.div(sum, count) as tf.Scalar;
    });
    value.dataSync();
    opt.apply(grads, 1e-4);
    tf.dispose([value, ...grads.values()]);
  };
  step();
  const steps = engine === 'cpu' ? 1 : s.steps;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  const row: Row = {
    engine: `Anneal tfjs ${engine}`,
    msPerStep: (performance.now() - t0) / steps,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
  };
  console.log(JSON.stringify(row));
}

function runChild(args: string[], cmd?: string, pre?: string[]): Row | undefined {
  return cmd ? runJson<Row>(cmd, [...(pre ?? []), ...args]) : runSelf<Row>(fileURLToPath(import.meta.url), args);
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3] as ShapeName, process.argv[4] as BackendName);
  // Same threading for every engine: ATen threads = cores (Anneal's default, and set in
  // the PyTorch peer), BLAS at one thread (Anneal's default; see docs/benchmarks.md).
  process.env.OPENBLAS_NUM_THREADS ??= '1';
  const only = process.argv[2] as ShapeName | undefined;
  for (const name of (only ? [only] : ['A', 'B']) as ShapeName[]) {
    const s = SHAPES[name];
    const tokens = s.batch * s.ctx;
    const engines = (name === 'A' ? ['torch', 'wasm', 'cpu'] : ['torch', 'wasm']).filter(
      (e) => !process.argv[3] || process.argv[3].split(',').includes(e),
    ) as BackendName[];
    const rows = engines.map((e) => runChild(['--child', name, e])).filter((r): r is Row => r !== undefined);
    const py = fileURLToPath(new URL('./train_throughput_torch.py', import.meta.url));
    const peer = runChild([name, JSON.stringify(s)], pythonWithTorch(), [py]);
    if (peer) rows.push(peer);
    console.log(
      `\nShape ${name}: vocab ${s.vocab}, ctx ${s.ctx}, d ${s.d}, ${s.heads} heads, ${s.layers} layers, batch ${s.batch}\n`,
    );
    console.log('| engine | ms/step | tokens/s | vs PyTorch | peak RSS (MB) | RSS vs PyTorch |');
    console.log('|---|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      const vs = peer ? `${(peer.msPerStep / r.msPerStep).toFixed(2)}x` : 'n/a';
      const rss = peer ? `${(r.maxRssMB / peer.maxRssMB).toFixed(2)}x` : 'n/a';
      console.log(
        `| ${r.engine} | ${r.msPerStep.toFixed(0)} | ${((tokens * 1000) / r.msPerStep).toFixed(0)} | ${vs} | ${r.maxRssMB.toFixed(0)} | ${rss} |`,
      );
    }
  }
}

await main();
