// Matrix products as backprop uses them (A @ B, A^T @ B, A @ B^T, A^T @ B^T) on tfjs
// backends, stock and with Anneal's kernels, against PyTorch on the same machine.
//
//   npx tsx tools/bench/matmul.ts
import { spawnSync } from 'node:child_process';
import { pythonWithTorch } from './python.js';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { registerTorchBackend } from '@anneal/backend-torch';
import { useBackend } from '@anneal/core';

const [M, K, N] = [1024, 128, 2048];
const VARIANTS = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;
const label = ([ta, tb]: readonly [boolean, boolean]) => `${ta ? 'A^T' : 'A'} @ ${tb ? 'B^T' : 'B'}`;

function gflops(ta: boolean, tb: boolean, reps: number): number {
  const a = tf.randomNormal(ta ? [K, M] : [M, K]);
  const b = tf.randomNormal(tb ? [N, K] : [K, N]);
  tf.matMul(a, b, ta, tb).dispose();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) {
    // All three backends run kernels synchronously, so no read-back is needed to time them.
    tf.matMul(a, b, ta, tb).dispose();
  }
  const s = (performance.now() - t0) / 1000 / reps;
  tf.dispose([a, b]);
  return (2 * M * K * N) / s / 1e9;
}

const rows: Array<[string, number[]]> = [];
await tf.setBackend('wasm'); // stock tfjs-backend-wasm, before Anneal registers its kernels
rows.push(['tfjs wasm (stock)', VARIANTS.map(([ta, tb]) => gflops(ta, tb, 3))]);
await useBackend('wasm', {});
rows.push(['tfjs wasm (Anneal kernels)', VARIANTS.map(([ta, tb]) => gflops(ta, tb, 5))]);
await useBackend('cpu', {});
rows.push(['tfjs cpu', VARIANTS.map(([ta, tb]) => gflops(ta, tb, 1))]);
try {
  registerTorchBackend({ warn: () => undefined });
  await useBackend('torch', {});
  rows.push([
    `Anneal torch (${process.env.ANNEAL_NUM_THREADS ?? 'all'} threads)`,
    VARIANTS.map(([ta, tb]) => gflops(ta, tb, 10)),
  ]);
} catch (e) {
  console.error(`torch backend skipped: ${(e as Error).message}`);
}

const py = `
import torch, time, json
M, K, N = ${M}, ${K}, ${N}
out = []
for ta, tb in [(0,0),(1,0),(0,1),(1,1)]:
    a = torch.randn(K, M) if ta else torch.randn(M, K)
    b = torch.randn(N, K) if tb else torch.randn(K, N)
    f = lambda: (a.T if ta else a) @ (b.T if tb else b)
    f(); t0 = time.perf_counter()
    for _ in range(20): f()
    out.append(2*M*K*N / ((time.perf_counter()-t0)/20) / 1e9)
print(json.dumps({"name": f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads)", "g": out}))
`;
const r = spawnSync(pythonWithTorch(), ['-c', py], { encoding: 'utf8' });
if (r.status === 0) {
  const j = JSON.parse(r.stdout.trim());
  rows.push([j.name, j.g]);
} else console.error('PyTorch peer skipped (apt-get install python3-torch)');

console.log(`\nGFLOP/s for [${M}x${K}] x [${K}x${N}] float32\n`);
console.log(`| engine | ${VARIANTS.map(label).join(' | ')} |`);
console.log(`|---|${VARIANTS.map(() => '---:').join('|')}|`);
for (const [name, g] of rows) console.log(`| ${name} | ${g.map((x) => x.toFixed(2)).join(' | ')} |`);
