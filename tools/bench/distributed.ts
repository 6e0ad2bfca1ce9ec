// Data parallelism on CPU: (1) Gloo all-reduce on loopback, Anneal's c10d bindings against
// PyTorch's torch.distributed (the same Gloo underneath) in one run; (2) shape A's training
// step (GPT-2, vocab 8192, ctx 128, d 256, 4 layers) on 1 process vs 2 processes with the
// same global batch, i.e. what `anneal launch --nproc 2` costs or gains on this machine.
//   npx tsx tools/bench/distributed.ts
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { ProcessGroup, registerTorchBackend } from '@anneal/backend-torch';
import { AdamW, freeLocalPort, useBackend } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, causalLmLossSum } from '@anneal/modeling';
import { accumulatedGradients } from '@anneal/training';
import { cpus } from 'node:os';

const SELF = fileURLToPath(import.meta.url);
const SIZES_MB = [1, 16, 64];
const REPS = 5;
const STEPS = 6;

/** Runs `world` copies of a command with torchrun's variables; resolves with rank 0's last JSON line. */
async function ranks(cmd: string, args: string[], world: number, threads: number): Promise<Record<string, unknown>> {
  const port = await freeLocalPort();
  const outs = await Promise.all(
    Array.from(
      { length: world },
      (_, rank) =>
        new Promise<string>((res, rej) => {
          const p = spawn(cmd, args, {
            env: {
              ...process.env,
              RANK: String(rank),
              WORLD_SIZE: String(world),
              MASTER_ADDR: '127.0.0.1',
              MASTER_PORT: String(port),
              ANNEAL_NUM_THREADS: String(threads),
              OMP_NUM_THREADS: String(threads),
            },
          });
          let out = '';
          let err = '';
          p.stdout.on('data', (b) => (out += b));
          p.stderr.on('data', (b) => (err += b));
          p.on('close', (code) =>
            code === 0 ? res(out) : rej(new Error(`rank ${rank}: ${err.trim().split('\n').pop()}`)),
          );
        }),
    ),
  );
  return JSON.parse(outs[0].trim().split('\n').pop()!);
}

async function allReduceChild(): Promise<void> {
  registerTorchBackend({ warn: () => undefined });
  await useBackend('torch', {});
  const pg = ProcessGroup.init({
    rank: Number(process.env.RANK),
    worldSize: Number(process.env.WORLD_SIZE),
    masterAddr: '127.0.0.1',
    masterPort: Number(process.env.MASTER_PORT),
  });
  const ms: Record<number, number> = {};
  for (const mb of SIZES_MB) {
    const t = tf.ones([(mb << 20) / 4]);
    tf.dispose(pg.allReduce([t], 'sum'));
    pg.barrier();
    const t0 = performance.now();
    for (let i = 0; i < REPS; i++) tf.dispose(pg.allReduce([t], 'sum'));
    ms[mb] = (performance.now() - t0) / REPS;
    t.dispose();
  }
  if (pg.rank === 0) console.log(JSON.stringify({ engine: 'Anneal c10d bindings (gloo)', ms }));
  pg.destroy();
}

/** Shape A training steps; with WORLD_SIZE > 1 each rank takes its share of the global batch. */
async function stepChild(globalBatch: number): Promise<void> {
  registerTorchBackend({ warn: () => undefined });
  await useBackend('torch', {});
  const world = Number(process.env.WORLD_SIZE ?? 1);
  const pg =
    world > 1
      ? ProcessGroup.init({
          rank: Number(process.env.RANK),
          worldSize: world,
          masterAddr: '127.0.0.1',
          masterPort: Number(process.env.MASTER_PORT),
        })
      : undefined;
  const s = { vocab: 8192, ctx: 128, d: 256, heads: 4, layers: 4 };
  const B = globalBatch / world;
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
  const ids = Int32Array.from({ length: B * s.ctx }, (_, i) => (i * 7919 + (pg?.rank ?? 0)) % s.vocab);
  const step = () => {
    const { grads } = accumulatedGradients(
      model.params,
      [
        () =>
          causalLmLossSum(
            model.forward({ inputIds: tf.tensor2d(ids, [B, s.ctx], 'int32') }).logits as tf.Tensor3D,
            ids,
          ),
      ],
      pg,
    );
    opt.apply(grads, 1e-4);
    tf.dispose([...grads.values()]);
  };
  step(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < STEPS; i++) step();
  const ms = (performance.now() - t0) / STEPS;
  if ((pg?.rank ?? 0) === 0) console.log(JSON.stringify({ ms, tokensPerSecond: (globalBatch * s.ctx) / (ms / 1000) }));
  pg?.destroy();
}

const mode = process.argv[2];
if (mode === 'allreduce') await allReduceChild();
else if (mode === 'step') await stepChild(Number(process.argv[3]));
else {
  const cores = cpus().length;
  console.log(`## Gloo all-reduce on loopback, 2 processes, 1 thread each (${cores} cores), mean of ${REPS}\n`);
  const ours = await ranks(process.execPath, ['--import', 'tsx', SELF, 'allreduce'], 2, 1);
  const peer = await ranks(
    '/usr/bin/python3',
    [fileURLToPath(new URL('./allreduce_torch.py', import.meta.url)), SIZES_MB.join(','), String(REPS)],
    2,
    1,
  ).catch((e) => ({ engine: `PyTorch (skipped: ${(e as Error).message})`, ms: {} }));
  console.log('| engine | ' + SIZES_MB.map((m) => `${m} MB: ms (bus GB/s)`).join(' | ') + ' |');
  console.log('|---|' + SIZES_MB.map(() => '---:').join('|') + '|');
  for (const r of [ours, peer] as Array<{ engine: string; ms: Record<number, number> }>) {
    // bus bandwidth as NCCL-tests report it: size / time x 2 (n - 1) / n, which is 1 for n = 2
    const cell = (mb: number) =>
      r.ms[mb] ? `${r.ms[mb].toFixed(2)} (${((mb << 20) / (r.ms[mb] / 1000) / 1e9).toFixed(2)})` : '—';
    console.log(`| ${r.engine} | ${SIZES_MB.map(cell).join(' | ')} |`);
  }
  console.log(`\n## Shape A training step: 1 process vs 2 (anneal launch --nproc 2), ${cores} cores\n`);
  const rows: Array<[string, Record<string, number>]> = [
    [
      `1 process, ${cores} threads, batch 8`,
      (await ranks(process.execPath, ['--import', 'tsx', SELF, 'step', '8'], 1, cores)) as Record<string, number>,
    ],
    [
      `2 processes, ${Math.max(1, cores / 2)} thread(s) each, batch 4 + 4`,
      (await ranks(process.execPath, ['--import', 'tsx', SELF, 'step', '8'], 2, Math.max(1, cores / 2))) as Record<
        string,
        number
      >,
    ],
    [
      `2 processes, ${Math.max(1, cores / 2)} thread(s) each, batch 8 + 8`,
      (await ranks(process.execPath, ['--import', 'tsx', SELF, 'step', '16'], 2, Math.max(1, cores / 2))) as Record<
        string,
        number
      >,
    ],
  ];
  const base = rows[0][1].tokensPerSecond;
  console.log('| run | ms/step | tokens/s | vs 1 process |');
  console.log('|---|---:|---:|---:|');
  for (const [name, r] of rows)
    console.log(
      `| ${name} | ${r.ms.toFixed(0)} | ${r.tokensPerSecond.toFixed(0)} | ${(r.tokensPerSecond / base).toFixed(2)}x |`,
    );
}
