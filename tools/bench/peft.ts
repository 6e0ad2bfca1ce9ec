// LoRA and QLoRA against full fine-tuning of GPT-2 small (124M parameters) on the CPU torch
// backend: trainable parameters, ms per training step and peak process memory (each mode in
// its own process), plus the bytes NF4 with double quantization stores per base parameter.
//
//   npx tsx tools/bench/peft.ts
//
// LoRA: r 16, alpha 32 on c_attn, c_proj, c_fc. QLoRA: the same on an NF4 base (block 64,
// double quantization), quantized while loading. Batch 2 x 128 tokens, AdamW; one warm-up
// step, then 3 timed. Every mode loads the same float32 checkpoint (written first, to a
// temporary folder), and the NF4 checkpoint `anneal quantize` would write is measured too.
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { registerTorchBackend } from '@anneal/backend-torch';
import { AdamW, useBackend, valueAndGrads } from '@anneal/core';
import {
  GPT2_DEFAULTS,
  Gpt2LMHeadModel,
  causalLmLossSum,
  loadPretrained,
  type PretrainedModel,
} from '@anneal/modeling';
import { LoraConfigSchema, LoraModel } from '@anneal/peft-lora';
import { loadQuantized, saveQuantized, type QuantizationReport } from '@anneal/quantization';
import { runSelf } from './child.js';

type Mode = 'full' | 'lora' | 'qlora';
interface Row {
  mode: Mode;
  trainable: number;
  total: number;
  msPerStep: number;
  maxRssMB: number;
  bytesPerParam?: number;
}

const B = 2;
const T = 128;

const NF4 = { method: 'nf4', blockSize: 64, doubleQuant: true } as const;

/** Writes the float32 checkpoint every mode loads, and its NF4 version; prints their sizes. */
async function save(dir: string): Promise<void> {
  registerTorchBackend({ warn: () => undefined });
  await useBackend('torch', {});
  const model = Gpt2LMHeadModel.init({ ...GPT2_DEFAULTS, residPdrop: 0, embdPdrop: 0, attnPdrop: 0 }, 1);
  mkdirSync(join(dir, 'f32'));
  await model.savePretrained(join(dir, 'f32'));
  model.dispose();
  const { model: q } = await loadQuantized(join(dir, 'f32'), NF4);
  await saveQuantized(q, join(dir, 'nf4'));
  const mb = (d: string) => statSync(join(dir, d, 'model.safetensors')).size / 2 ** 20;
  console.log(JSON.stringify({ f32MB: mb('f32'), nf4MB: mb('nf4') }));
}

async function child(mode: Mode, dir: string): Promise<void> {
  registerTorchBackend({ warn: () => undefined });
  await useBackend('torch', {});
  let model: PretrainedModel;
  let report: QuantizationReport | undefined;
  if (mode === 'qlora') ({ model, report } = await loadQuantized(join(dir, 'f32'), NF4));
  else model = await loadPretrained(join(dir, 'f32'));
  const total = model.numParameters;
  const lora =
    mode === 'full'
      ? undefined
      : new LoraModel(
          model,
          LoraConfigSchema.parse({ r: 16, loraAlpha: 32, targetModules: ['c_attn', 'c_proj', 'c_fc'] }),
          1,
        );
  const params = lora ? lora.params : model.params;
  const net = lora ?? model;
  const opt = new AdamW(params, { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0 });
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % GPT2_DEFAULTS.vocabSize);
  const step = () => {
    const { value, grads } = valueAndGrads(params, () => {
      const { sum, count } = causalLmLossSum(
        net.forward({ inputIds: tf.tensor2d(ids, [B, T], 'int32') }).logits as tf.Tensor3D,
        ids,
      );
      return tf.div(sum, count) as tf.Scalar;
    });
    value.dataSync();
    opt.apply(grads, 1e-4);
    tf.dispose([value, ...grads.values()]);
  };
  step();
  const t0 = performance.now();
  for (let i = 0; i < 3; i++) step();
  let trainable = 0;
  for (const p of params.values()) trainable += p.size;
  const row: Row = {
    mode,
    trainable,
    total,
    msPerStep: (performance.now() - t0) / 3,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
    ...(report && { bytesPerParam: report.storedBytes / report.parameters }),
  };
  console.log(JSON.stringify(row));
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3] as Mode, process.argv[4]);
  if (process.argv[2] === '--save') return save(process.argv[3]);
  process.env.OPENBLAS_NUM_THREADS ??= '1';
  const dir = mkdtempSync(join(tmpdir(), 'anneal-bench-peft-'));
  const self = fileURLToPath(import.meta.url);
  const sizes = runSelf<{ f32MB: number; nf4MB: number }>(self, ['--save', dir]);
  const rows = (['full', 'lora', 'qlora'] as const)
    .map((m) => runSelf<Row>(self, ['--child', m, dir]))
    .filter((r): r is Row => r !== undefined);
  rmSync(dir, { recursive: true, force: true });
  const full = rows.find((r) => r.mode === 'full');
  console.log(
    `\nGPT-2 small (${((full?.total ?? 0) / 1e6).toFixed(1)}M parameters), torch backend on CPU, batch ${B} x ${T} tokens\n`,
  );
  console.log(
    '| mode | trainable parameters | ms/step | peak RSS (MB) | RSS vs full | bytes per quantized parameter |',
  );
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const vs = full ? `${((100 * r.maxRssMB) / full.maxRssMB).toFixed(0)}%` : 'n/a';
    console.log(
      `| ${r.mode} | ${r.trainable} (${((100 * r.trainable) / r.total).toFixed(2)}%) | ${r.msPerStep.toFixed(0)} | ${r.maxRssMB.toFixed(0)} | ${vs} | ${r.bytesPerParam?.toFixed(3) ?? '-'} |`,
    );
  }
  if (sizes)
    console.log(
      `\nmodel.safetensors: float32 ${sizes.f32MB.toFixed(1)} MB, NF4 + double quantization (saveQuantized / anneal quantize) ${sizes.nf4MB.toFixed(1)} MB (${((100 * sizes.nf4MB) / sizes.f32MB).toFixed(0)}%)`,
    );
}

await main();
