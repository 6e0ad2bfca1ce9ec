// Peak memory (process RSS) and time of one training step, Anneal (torch backend) against
// PyTorch (tools/bench/memory_torch.py) in the same run, each configuration in its own
// process so that its high-water mark is its own.
//
//   npx tsx tools/bench/memory.ts qwen [SEQ]     Qwen2.5-0.5B shape (hidden 896, 24 layers, 14/2 heads,
//                                                intermediate 4864, vocab 151936), LoRA r 16 on every
//                                                linear layer of the blocks, batch 1 x SEQ (2048)
//   npx tsx tools/bench/memory.ts gpt2           GPT-2 small in full, 2048 tokens a step as 8 x 256 and 1 x 2048
//   npx tsx tools/bench/memory.ts autocast [SEQ] GPT-2 small in full, 1 x SEQ (1024), float32 and bf16 autocast
//                                                (torch.autocast on the CPU for the peer)
//   npx tsx tools/bench/memory.ts child JSON     (one measurement; what the others run)
//
// Random weights of the real shapes (nothing is downloaded): memory and time do not depend
// on the values. One step to warm up, then `steps` timed (0: the first step is the time).
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { registerTorchBackend } from '@anneal/backend-torch';
import { AdamW, useBackend, valueAndGrads } from '@anneal/core';
import { initFromHfConfig, type CausalLm } from '@anneal/modeling';
import { LoraConfigSchema, LoraModel } from '@anneal/peft-lora';
import { causalLmBatchLoss } from '@anneal/training';
import { runJson, runSelf } from './child.js';
import { pythonWithTorch } from './python.js';

interface Spec {
  model: 'qwen' | 'gpt2';
  batch: number;
  seq: number;
  ckpt: boolean;
  /** train.lossChunkSize (Anneal only). */
  chunk: number | 'auto';
  /** bf16 autocast (Anneal: the torch backend's; PyTorch: torch.autocast('cpu', torch.bfloat16)). */
  autocast?: boolean;
  /** GPT-2's dropout rates (Anneal only; default 0, as the peer has none). */
  dropout?: number;
  steps: number;
}

interface Row {
  engine: string;
  msPerStep: number;
  maxRssMB: number;
  initRssMB: number;
  trainable: number;
}

const QWEN_05B = {
  model_type: 'qwen2',
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  vocab_size: 151936,
  max_position_embeddings: 32768,
  rope_theta: 1000000.0,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
};

// dropout off: the PyTorch peer has none
const GPT2_SMALL = {
  model_type: 'gpt2',
  vocab_size: 50257,
  n_positions: 2048,
  n_embd: 768,
  n_layer: 12,
  n_head: 12,
  resid_pdrop: 0,
  embd_pdrop: 0,
  attn_pdrop: 0,
};

async function child(s: Spec): Promise<void> {
  registerTorchBackend({ warn: () => undefined, autocast: s.autocast ? 'bf16' : 'none' });
  await useBackend('torch', {});
  const drop = s.dropout ?? 0;
  const gpt2 = { ...GPT2_SMALL, resid_pdrop: drop, embd_pdrop: drop, attn_pdrop: drop };
  const base = initFromHfConfig(s.model === 'qwen' ? QWEN_05B : gpt2, 1, 'memory.ts');
  base.gradientCheckpointing = s.ckpt;
  const lora =
    s.model === 'qwen'
      ? new LoraModel(base, LoraConfigSchema.parse({ r: 16, loraAlpha: 32, targetModules: 'all-linear' }), 1)
      : undefined;
  const lm = (lora ?? base) as unknown as CausalLm;
  const params = lora ? lora.params : base.params;
  const opt = new AdamW(params, { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
  const V = s.model === 'qwen' ? QWEN_05B.vocab_size : GPT2_SMALL.vocab_size;
  const ids = Int32Array.from({ length: s.batch * s.seq }, (_, i) => (i * 7919) % V);
  const initRssMB = process.resourceUsage().maxRSS / 1024;
  const step = () => {
    const { value, grads } = valueAndGrads(params, () => {
      const inputIds = tf.tensor2d(ids, [s.batch, s.seq], 'int32');
      const { sum, count } = causalLmBatchLoss(lm, { inputIds, training: true }, ids, { lossChunkSize: s.chunk });
      return tf.div(sum, count) as tf.Scalar;
    });
    value.dataSync();
    opt.apply(grads, 1e-4);
    tf.dispose([value, ...grads.values()]);
  };
  let t0 = performance.now();
  step();
  const first = performance.now() - t0;
  t0 = performance.now();
  for (let i = 0; i < s.steps; i++) step();
  const what = [
    s.ckpt ? 'checkpointing' : '',
    s.chunk !== 0 ? `loss chunks (${s.chunk})` : '',
    drop ? `dropout ${drop}` : '',
    s.autocast ? 'bf16 autocast' : '',
  ]
    .filter(Boolean)
    .join(' + ');
  const row: Row = {
    engine: `Anneal torch${lora ? ' + LoRA' : ''}${what ? `, ${what}` : ''}`,
    msPerStep: s.steps ? (performance.now() - t0) / s.steps : first,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
    initRssMB,
    trainable: [...params.values()].filter((v) => v.trainable).reduce((n, v) => n + v.size, 0),
  };
  console.log(JSON.stringify(row));
}

const anneal = (s: Spec) => runSelf<Row>(fileURLToPath(import.meta.url), ['child', JSON.stringify(s)]);
const pytorch = (s: Spec) => {
  const row = runJson<Row>(pythonWithTorch(), [
    fileURLToPath(new URL('./memory_torch.py', import.meta.url)),
    JSON.stringify(s),
  ]);
  if (row && s.ckpt) row.engine += ', checkpointing';
  if (row && s.autocast) row.engine += ', bf16 autocast';
  return row;
};

/** Rows of [tokens, measurement, the PyTorch row it is compared with]. */
function table(title: string, rows: Array<[string, Row | undefined, Row | undefined]>): void {
  console.log(`\n${title}\n`);
  console.log('| tokens | engine | peak RSS (MB) | after init (MB) | vs PyTorch | ms/step | trainable |');
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const [tokens, r, peer] of rows) {
    if (!r) continue;
    const vs = peer ? `${(r.maxRssMB / peer.maxRssMB).toFixed(2)}x` : 'n/a';
    console.log(
      `| ${tokens} | ${r.engine} | ${r.maxRssMB.toFixed(0)} | ${r.initRssMB.toFixed(0)} | ${vs} | ${r.msPerStep.toFixed(0)} | ${r.trainable} |`,
    );
  }
}

async function main(): Promise<void> {
  const [what, arg] = process.argv.slice(2);
  if (what === 'child') return child(JSON.parse(arg) as Spec);
  process.env.OPENBLAS_NUM_THREADS ??= '1'; // Anneal's default threading, inherited by the peer (docs/benchmarks.md)
  if (what === 'qwen') {
    const seq = Number(arg ?? 2048);
    const s: Spec = { model: 'qwen', batch: 1, seq, ckpt: false, chunk: 0, steps: 0 };
    const plain = pytorch(s);
    const rows: Array<[string, Row | undefined, Row | undefined]> = [
      [`1 x ${seq}`, plain, plain],
      [`1 x ${seq}`, pytorch({ ...s, ckpt: true }), plain],
      [`1 x ${seq}`, anneal(s), plain],
      [`1 x ${seq}`, anneal({ ...s, ckpt: true }), plain],
      [`1 x ${seq}`, anneal({ ...s, chunk: 'auto' }), plain],
      [`1 x ${seq}`, anneal({ ...s, ckpt: true, chunk: 'auto' }), plain],
    ];
    table(
      `Qwen2.5-0.5B shape, LoRA r 16 on all linear layers of the blocks, batch 1 x ${seq}, one step (fwd + bwd + AdamW); ` +
        'vs PyTorch: against PyTorch + LoRA without checkpointing',
      rows,
    );
  } else if (what === 'gpt2') {
    const rows: Array<[string, Row | undefined, Row | undefined]> = [];
    for (const [batch, seq] of [
      [8, 256],
      [1, 2048],
    ]) {
      const s: Spec = { model: 'gpt2', batch, seq, ckpt: false, chunk: 0, steps: 1 };
      const peer = pytorch(s);
      rows.push([`${batch} x ${seq}`, peer, peer], [`${batch} x ${seq}`, anneal(s), peer]);
    }
    // GPT-2's own dropout (0.1), attention dropout included, against the peer without any
    rows.push([
      '1 x 2048',
      anneal({ model: 'gpt2', batch: 1, seq: 2048, ckpt: false, chunk: 0, steps: 1, dropout: 0.1 }),
      rows[2][1],
    ]);
    table('GPT-2 small (124M) in full, 2048 tokens a step, one step (fwd + bwd + AdamW); vs PyTorch: same shape', rows);
  } else if (what === 'autocast') {
    const seq = Number(arg ?? 1024);
    const s: Spec = { model: 'gpt2', batch: 1, seq, ckpt: false, chunk: 0, steps: 1 };
    const [plain, auto] = [pytorch(s), pytorch({ ...s, autocast: true })];
    table(`GPT-2 small (124M) in full, 1 x ${seq}, one step; float32 and bf16 autocast; vs PyTorch: the same mode`, [
      [`1 x ${seq}`, plain, plain],
      [`1 x ${seq}`, auto, auto],
      [`1 x ${seq}`, anneal(s), plain],
      [`1 x ${seq}`, anneal({ ...s, autocast: true }), auto],
      [`1 x ${seq}`, anneal({ ...s, autocast: true, chunk: 'auto' }), auto],
    ]);
  } else {
    throw new Error('usage: memory.ts qwen [SEQ] | gpt2 | autocast [SEQ] | child JSON');
  }
}

await main();
