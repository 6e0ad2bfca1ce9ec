// Decoding's matrix products: 1, 8 and 16 rows by GPT-2-small's weights, as stored (x W for
// GPT-2's Conv1D [in, out], x Wᵀ for nn.Linear's [out, in] and the tied head), on the torch
// backend (its few-row kernels, packages/backend-torch/src/native/kernels/fewrow.h) against
// PyTorch's torch.mm on the same OpenBLAS in the same run. Each product takes the next of enough
// copies of the weight (≥ 128 MB) that it comes from memory, not the 32 MB cache, as in decoding.
//
//   npx tsx tools/bench/few-rows.ts
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { registerTorchBackend } from '@anneal/backend-torch';
import { useBackend } from '@anneal/core';
import { pythonWithTorch } from './python.js';

process.env.OPENBLAS_NUM_THREADS ??= '1'; // Anneal's default threading, inherited by the peer (docs/benchmarks.md)
const SHAPES: Array<[string, number, number, boolean]> = [
  ['attn.c_attn (x W)', 768, 2304, false],
  ['mlp.c_fc (x W)', 768, 3072, false],
  ['mlp.c_proj (x W)', 3072, 768, false],
  ['q_proj-like (x Wᵀ)', 768, 3072, true],
  ['down_proj-like (x Wᵀ)', 3072, 768, true],
  ['tied head (x Wᵀ)', 768, 50257, true],
];
const ROWS = [1, 8, 16];
const copiesFor = (k: number, n: number) => Math.max(2, Math.ceil(128e6 / (k * n * 4)));

function anneal(m: number, k: number, n: number, transposed: boolean): number {
  const ws = Array.from({ length: copiesFor(k, n) }, (_, i) =>
    tf.randomUniform(transposed ? [n, k] : [k, n], -1, 1, 'float32', i),
  );
  const x = tf.randomUniform([m, k], -1, 1, 'float32', 99);
  let best = Infinity;
  for (let rep = 0; rep < 5; rep++) {
    const t0 = performance.now();
    for (const w of ws) tf.matMul(x, w, false, transposed).dispose(); // the torch backend runs synchronously
    best = Math.min(best, (performance.now() - t0) / ws.length);
  }
  tf.dispose([x, ...ws]);
  return best;
}

registerTorchBackend({ warn: () => undefined });
await useBackend('torch', {});
const ours = SHAPES.map(([, k, n, t]) => ROWS.map((m) => anneal(m, k, n, t)));

const py = `
import torch, time, json, math
shapes, rows = json.loads('${JSON.stringify(SHAPES.map(([, k, n, t]) => [k, n, t]))}'), ${JSON.stringify(ROWS)}
torch.set_num_threads(2)
out = []
for k, n, t in shapes:
    ws = [torch.rand(n, k) * 2 - 1 if t else torch.rand(k, n) * 2 - 1 for _ in range(max(2, math.ceil(128e6 / (k * n * 4))))]
    r = []
    for m in rows:
        x = torch.rand(m, k) * 2 - 1
        best = 1e9
        for _ in range(5):
            t0 = time.perf_counter()
            for w in ws: torch.mm(x, w.t() if t else w)
            best = min(best, (time.perf_counter() - t0) / len(ws))
        r.append(best * 1e3)
    out.append(r)
print(json.dumps({"name": f"PyTorch {torch.__version__}", "ms": out}))
`;
const r = spawnSync(pythonWithTorch(), ['-c', py], { encoding: 'utf8', env: process.env });
const peer = r.status === 0 ? (JSON.parse(r.stdout.trim()) as { name: string; ms: number[][] }) : undefined;
if (!peer) console.error(`PyTorch peer skipped: ${r.stderr.trim().split('\n').pop()}`);

console.log(
  `\nms per product (weight GB/s), weights from memory, OpenBLAS ${process.env.OPENBLAS_NUM_THREADS} thread(s)\n`,
);
console.log(`| weight | [in, out] | rows | Anneal torch | ${peer?.name ?? 'PyTorch'} torch.mm | speed-up |`);
console.log('|---|---|---:|---:|---:|---:|');
SHAPES.forEach(([name, k, n], s) =>
  ROWS.forEach((m, i) => {
    const a = ours[s][i];
    const p = peer?.ms[s][i];
    const gbs = (ms: number) => ((k * n * 4) / ms / 1e6).toFixed(1);
    const peerCell = p === undefined ? '' : `${p.toFixed(3)} (${gbs(p)})`;
    const speedup = p === undefined ? '' : `${(p / a).toFixed(2)}x`;
    console.log(`| ${name} | [${k}, ${n}] | ${m} | ${a.toFixed(3)} (${gbs(a)}) | ${peerCell} | ${speedup} |`);
  }),
);
