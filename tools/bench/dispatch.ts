// Per-op dispatch overhead: microseconds per tf.add of two 4-element tensors (so the
// arithmetic is negligible), per backend, against the same loop in PyTorch.
//
//   npx tsx tools/bench/dispatch.ts
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { registerTorchBackend } from '@anneal/backend-torch';
import { useBackend, type BackendName } from '@anneal/core';
import { pythonWithTorch } from './python.js';

const N = 20000;
const rows: Array<[string, number]> = [];
try {
  registerTorchBackend({ warn: () => undefined });
} catch (e) {
  console.error(`torch backend skipped: ${(e as Error).message}`);
}
for (const b of ['cpu', 'wasm', 'torch'] as BackendName[]) {
  try {
    await useBackend(b, {});
  } catch {
    continue;
  }
  const x = tf.tensor1d([1, 2, 3, 4]);
  const y = tf.tensor1d([5, 6, 7, 8]);
  for (let i = 0; i < 1000; i++) tf.add(x, y).dispose();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) tf.add(x, y).dispose();
  rows.push([`tfjs ${b}`, ((performance.now() - t0) * 1000) / N]);
  tf.dispose([x, y]);
}
const py = `
import torch, time
x = torch.tensor([1., 2, 3, 4]); y = torch.tensor([5., 6, 7, 8])
for _ in range(1000): x + y
t0 = time.perf_counter()
for _ in range(${N}): x + y
print((time.perf_counter() - t0) * 1e6 / ${N})
`;
const r = spawnSync(pythonWithTorch(), ['-c', py], { encoding: 'utf8' });
if (r.status === 0) rows.push(['PyTorch (eager, from Python)', Number(r.stdout.trim())]);
console.log('\n| engine | µs per small add (alloc + dispatch + free) |');
console.log('|---|---:|');
for (const [name, us] of rows) console.log(`| ${name} | ${us.toFixed(2)} |`);
