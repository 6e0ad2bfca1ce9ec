// Training-step throughput of the quickstart model on each available tfjs backend,
// against PyTorch (CPU) running the same GPT-2 on the same machine, in one run.
//
//   npm run bench            (PyTorch row needs Debian's python3-torch: apt-get install python3-torch)
//
// Model: GPT-2, 4 layers, 4 heads, 128 wide, vocab 2048, 64 tokens x batch 16 (configs/quickstart.yaml).
import { spawnSync } from 'node:child_process';
import { pythonWithTorch } from './python.js';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { registerTorchBackend } from '@anneal/backend-torch';
import { AdamW, clipGradNorm, useBackend, valueAndGrads, type BackendName } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, causalLmLossSum } from '@anneal/modeling';

const B = 16;
const T = 64;
const V = 2048;
const config = {
  ...GPT2_DEFAULTS,
  vocabSize: V,
  nPositions: T,
  nLayer: 4,
  nHead: 4,
  nEmbd: 128,
  residPdrop: 0,
  embdPdrop: 0,
  attnPdrop: 0,
};

async function bench(backend: BackendName, steps: number): Promise<{ name: string; msPerStep: number } | undefined> {
  try {
    await useBackend(backend, {});
  } catch {
    return undefined;
  }
  const model = Gpt2LMHeadModel.init(config, 1);
  const opt = new AdamW(model.params, { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 });
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % V);
  const step = () => {
    const { value, grads } = valueAndGrads(model.params, () => {
      const { sum, count } = causalLmLossSum(
        model.forward({ inputIds: tf.tensor2d(ids, [B, T], 'int32') }).logits,
        ids,
      );
      return tf.div(sum, count) as tf.Scalar;
    });
    value.dataSync();
    value.dispose();
    const clipped = clipGradNorm(grads, 1.0);
    opt.apply(clipped.grads, 1e-3);
    tf.dispose([...clipped.grads.values()]);
  };
  step(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  const msPerStep = (performance.now() - t0) / steps;
  model.dispose();
  opt.dispose();
  return { name: `tfjs ${tf.getBackend()}`, msPerStep };
}

function torchPeer(steps: number, threads: number): { name: string; msPerStep: number } | undefined {
  const script = fileURLToPath(new URL('./train_step_torch.py', import.meta.url));
  const r = spawnSync(pythonWithTorch(), [script, String(steps), String(threads)], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(`PyTorch peer skipped: ${r.stderr.trim().split('\n').pop()}`);
    return undefined;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

const cores = (await import('node:os')).cpus().length;
try {
  registerTorchBackend({ warn: () => undefined });
} catch (e) {
  console.error(`torch backend skipped: ${(e as Error).message}`);
}
const rows = [
  await bench('cpu', 2),
  await bench('wasm', 10),
  await bench('torch', 10),
  await bench('tensorflow', 10),
  torchPeer(10, 1),
  torchPeer(10, cores),
].filter((r) => r !== undefined);
// The comparison column is against single-threaded PyTorch: tfjs-wasm runs one thread in Node.
const torch = rows.find((r) => r.name.startsWith('PyTorch'));
console.log(
  `\nGPT-2 training step (fwd + bwd + clip + AdamW), B=${B} T=${T} vocab=${V}, 4x128, on ${process.arch} with ${cores} cores\n`,
);
console.log('| engine | ms/step | tokens/s | speed vs PyTorch 1 thread |');
console.log('|---|---:|---:|---:|');
for (const r of rows) {
  const tps = (B * T * 1000) / r.msPerStep;
  console.log(
    `| ${r.name} | ${r.msPerStep.toFixed(0)} | ${tps.toFixed(0)} | ${torch ? (torch.msPerStep / r.msPerStep).toFixed(3) + 'x' : 'n/a'} |`,
  );
}
