// What a recorded step saves on CPU: ms per training step of a small GPT-2 on the torch
// backend, dispatched kernel by kernel from JS against the same step recorded once and
// replayed from C++ (core FunctionalStep + backend-torch RecordedStep: the same kernels,
// bit-identical results), with PyTorch eager running the same model and step in the same
// run as the peer. Small shapes show the dispatch cost; the quickstart shape shows what is
// left of it when the arithmetic grows.
//
//   npx tsx tools/bench/recorded-step.ts        (PyTorch row: Debian's python3-torch)
//   ANNEAL_DEVICE=cuda:0 ... on a GPU machine (tools/gpu/check.sh runs it there)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { RecordedStep, registerTorchBackend } from '@anneal/backend-torch';
import { AdamW, FunctionalStep, useBackend } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, causalLmTargets, crossEntropySumOfTargets } from '@anneal/modeling';
import { pythonWithTorch } from './python.js';

interface Shape {
  name: string;
  B: number;
  T: number;
  V: number;
  C: number;
  L: number;
  H: number;
}
const SHAPES: Shape[] = [
  { name: 'tiny (dispatch-bound)', B: 2, T: 32, V: 512, C: 64, L: 2, H: 4 },
  { name: 'quickstart', B: 16, T: 64, V: 2048, C: 128, L: 4, H: 4 },
];
const STEPS = Number(process.env.BENCH_STEPS ?? 30);

function anneal(s: Shape, record: boolean): { ms: number; kernels: number; graph: string } {
  const cfg = {
    ...GPT2_DEFAULTS,
    vocabSize: s.V,
    nPositions: s.T,
    nEmbd: s.C,
    nHead: s.H,
    nLayer: s.L,
    residPdrop: 0,
    embdPdrop: 0,
    attnPdrop: 0,
  };
  const model = Gpt2LMHeadModel.init(cfg, 1);
  const opt = new AdamW(model.params, { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 });
  const fstep = new FunctionalStep(model.params, opt, ([ids, targets, count]) => {
    const logits = model.forward({ inputIds: ids as tf.Tensor2D }).logits; // [B, T, V]
    return tf.div(
      crossEntropySumOfTargets(tf.reshape(logits, [s.B * s.T, s.V]) as tf.Tensor2D, targets as tf.Tensor1D),
      count,
    ) as tf.Scalar;
  });
  const rec = new RecordedStep(fstep.fn, { warmup: 1 });
  const ids = Int32Array.from({ length: s.B * s.T }, (_, i) => (i * 7919) % s.V);
  const { targets, count } = causalLmTargets(ids, s.B, s.T);
  const step = () => {
    const batch = [tf.tensor2d(ids, [s.B, s.T], 'int32'), tf.tensor1d(targets, 'int32'), tf.scalar(count)];
    const [lr, t] = [tf.scalar(1e-3), tf.scalar(opt.step + 1)];
    const inputs = fstep.inputs(batch, lr, t);
    const loss = fstep.take(record ? rec.run(inputs) : tf.tidy(() => fstep.fn(inputs)));
    loss.dataSync(); // the loss read each step, as PyTorch's .item() below
    tf.dispose([loss, ...batch, lr, t]);
  };
  for (let i = 0; i < 5; i++) step(); // warm-up (and, recorded: 1 dispatched + 2 recorded + graph set-up)
  const t0 = performance.now();
  for (let i = 0; i < STEPS; i++) step();
  const ms = (performance.now() - t0) / STEPS;
  const onCpu = (process.env.ANNEAL_DEVICE ?? 'cpu') === 'cpu';
  const graph = rec.stats.fallback
    ? `not replayed: ${rec.stats.fallback}`
    : onCpu
      ? `replayed ${rec.stats.replayed} (no CUDA graph on cpu)`
      : rec.stats.graph;
  const out = { ms, kernels: rec.stats.calls, graph };
  rec.dispose();
  model.dispose();
  opt.dispose();
  return out;
}

function pytorch(s: Shape): number | undefined {
  const dir = fileURLToPath(new URL('.', import.meta.url));
  const device = (process.env.ANNEAL_DEVICE ?? 'cpu').replace(/^cuda:(\d+)$/, 'cuda:$1');
  const py = `
import sys, time, torch, torch.nn.functional as F
sys.path.insert(0, ${JSON.stringify(dir)})
from train_throughput_torch import build
torch.manual_seed(0)
dev = ${JSON.stringify(device)}
if dev != "cpu":
    torch.set_default_device(dev)  # the peer model makes its position ids in forward (torch >= 2.0)
B, T, V, C, L, H = ${s.B}, ${s.T}, ${s.V}, ${s.C}, ${s.L}, ${s.H}
model = build(V, T, C, H, L).to(dev)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
ids = torch.arange(B * T).mul(7919).remainder(V).view(B, T).to(dev)
def step():
    logits = model(ids)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
    loss.backward(); opt.step(); opt.zero_grad(set_to_none=True); loss.item()
for _ in range(5): step()
t0 = time.perf_counter()
for _ in range(${STEPS}): step()
print((time.perf_counter() - t0) * 1000 / ${STEPS})
`;
  const r = spawnSync(pythonWithTorch(), ['-c', py], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(`PyTorch peer skipped: ${(r.stderr || '').trim().split('\n').pop()}`);
    return undefined;
  }
  return Number(r.stdout.trim().split('\n').pop());
}

registerTorchBackend({ warn: () => undefined });
await useBackend('torch', {});
console.log(
  `\nTraining step (forward, backward, AdamW, loss read each step), torch backend on ${process.env.ANNEAL_DEVICE ?? 'cpu'}, ${STEPS} timed steps after 5\n`,
);
console.log(
  '| shape | kernels/step | Anneal dispatched ms | Anneal recorded ms | saved per step | PyTorch eager ms | replay |',
);
console.log('|---|---:|---:|---:|---:|---:|---|');
for (const s of SHAPES) {
  const d = anneal(s, false);
  const r = anneal(s, true);
  const p = pytorch(s);
  const label = `${s.name}: B${s.B} T${s.T} V${s.V} C${s.C} L${s.L}`;
  console.log(
    `| ${label} | ${r.kernels} | ${d.ms.toFixed(2)} | ${r.ms.toFixed(2)} | ${(d.ms - r.ms).toFixed(2)} ms (${(((d.ms - r.ms) / d.ms) * 100).toFixed(0)}%) | ${p?.toFixed(2) ?? 'n/a'} | ${r.graph} |`,
  );
}
