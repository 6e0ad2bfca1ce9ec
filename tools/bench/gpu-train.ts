// GPT-2 124M training throughput on one GPU: Anneal (torch backend on cuda:0, bf16
// autocast, fused attention and AdamW) against Hugging Face transformers (GPT2LMHeadModel
// from config, SDPA attention, bf16 autocast, fused AdamW) in the same machine's PyTorch,
// in one invocation. Same initial weights (transformers' initialisation, saved as safetensors
// and loaded by Anneal), shape, data, optimizer and schedule of host reads (the loss every
// 10 steps); no dropout, no clipping. Each engine runs in its own process.
//
//   bash tools/gpu/run.sh node --import tsx tools/bench/gpu-train.ts      (on the GPU machine)
//   BENCH_BATCH=8 BENCH_STEPS=100 ...                                      (other sizes)
//   BENCH_LORA=1 ...      LoRA SFT step: r 16, alpha 32 on c_attn, c_proj, c_fc, no weight decay
//                         (Anneal's @anneal/peft-lora against peft's get_peft_model)
//   BENCH_RECORD=1 ...    Anneal's step as a recorded step (core FunctionalStep + the torch
//                         backend's RecordedStep): recorded after one dispatched step, then
//                         replayed from C++, through a CUDA graph on a GPU (with DPO: the
//                         policy's step; the reference's forward stays dispatched)
//   BENCH_HF_COMPILE=1 .. the transformers peer runs torch.compile(model) (default mode)
//   BENCH_PRECISION=bf16  Anneal keeps activations in bfloat16 (precision: bf16)
//   BENCH_LINEAR_CE=1     with BENCH_RECORD: the LM head and loss as one chunked kernel (no [N, V] logits)
//   ANNEAL_PAD_GEMM=1     Anneal pads unaligned GEMM dimensions (the 50257 vocabulary) to 64
//   BENCH_ANNEAL=0 / BENCH_HF=0   leave out one side (rows of several runs go in one table)
//   BENCH_MODEL=qwen3-0.6b  Qwen3-0.6B's shape (random weights, transformers' initialisation),
//                         seq 2048 (BENCH_CTX), with BENCH_LORA=1 LoRA r 16 on all linear layers
//                         (peft's "all-linear"); BENCH_QWEN3_CONFIG (JSON) overrides parts of the
//                         shape, e.g. a 2-layer model to try the benchmark on a CPU
//   BENCH_DPO=1 ...       DPO step (TRL's defaults): BENCH_BATCH pairs as one concatenated
//                         [2B, T] forward (chosen rows, then rejected), the first half of each
//                         row the shared prompt (not scored), a frozen reference copy, sigmoid
//                         loss, beta 0.1, lr 1e-6 (@anneal/dpo against the same step written
//                         in PyTorch on transformers' model: TRL itself need not be installed)
//
// MFU = tokens/s x (6 N + 12 L T C) / peak, N = parameters without the position table
// (nanoGPT's estimate), peak = BENCH_PEAK_TFLOPS (default 989: H100 SXM dense bf16, datasheet). DPO adds the
// reference's forward pass: (8 N + 16 L T C) per token.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { loadAddon, RecordedStep, registerTorchBackend } from '@anneal/backend-torch';
import { AdamW, FunctionalStep, useBackend, valueAndGrads } from '@anneal/core';
import {
  GPT2_DEFAULTS,
  Gpt2LMHeadModel,
  initFromHfConfig,
  loadPretrainedSync,
  causalLmLossSum,
  causalLmTargets,
  crossEntropySumOfTargets,
  linearCrossEntropySum,
} from '@anneal/modeling';
import { batchLogps, batchLogpsOfTargets, dpoLoss, logpsTargets } from '@anneal/dpo';
import { LoraConfigSchema, LoraModel } from '@anneal/peft-lora';
import { runJson, runSelf } from './child.js';
import { pythonWithTorch } from './python.js';

export interface GpuRow {
  engine: string;
  batch: number;
  ctx: number;
  steps: number;
  msPerStep: number;
  tokensPerSec: number;
  /** Host reads per step (device -> host copies), measured where the engine can count them. */
  hostReadsPerStep: number | null;
  /** Bytes held by live tensors after warm-up and at the end (growth = a leak). */
  liveBytesStart: number;
  liveBytesEnd: number;
  /** Live tensors after warm-up and at the end (tfjs's count, or the number of CUDA tensors the allocator holds). */
  tensorsStart: number;
  tensorsEnd: number;
  gpuMemMB: number | null;
  lossFirst: number;
  lossLast: number;
}

const QWEN3 = process.env.BENCH_MODEL === 'qwen3-0.6b';
/** Qwen/Qwen3-0.6B's config.json (the shape; the weights are random), with BENCH_QWEN3_CONFIG's overrides. */
export const QWEN3_CONFIG: Record<string, number | string | boolean> = {
  model_type: 'qwen3',
  vocab_size: 151936,
  hidden_size: 1024,
  intermediate_size: 3072,
  num_hidden_layers: 28,
  num_attention_heads: 16,
  num_key_value_heads: 8,
  head_dim: 128,
  max_position_embeddings: 40960,
  rope_theta: 1000000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
  hidden_act: 'silu',
  attention_bias: false,
  attention_dropout: 0,
  ...(JSON.parse(process.env.BENCH_QWEN3_CONFIG ?? '{}') as Record<string, number>),
};
const VOCAB = QWEN3 ? Number(QWEN3_CONFIG.vocab_size) : 50257;
const B = Number(process.env.BENCH_BATCH ?? 16);
const T = Number(process.env.BENCH_CTX ?? (QWEN3 ? 2048 : 1024));
const STEPS = Number(process.env.BENCH_STEPS ?? 200);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 20);
const LOG_EVERY = Number(process.env.BENCH_LOG_EVERY ?? 10);
const LORA = process.env.BENCH_LORA === '1';
const DPO = process.env.BENCH_DPO === '1';
const LR = DPO ? 1e-6 : 6e-4;
const RECORD = process.env.BENCH_RECORD === '1';
const LINEAR_CE = process.env.BENCH_LINEAR_CE === '1' && RECORD && !LORA && !DPO && !QWEN3;
if (QWEN3 && DPO) throw new Error('BENCH_MODEL=qwen3-0.6b runs the (LoRA) SFT step, not DPO');

/**
 * The same token batches for every engine: 4 batches of [B, T] from MINSTD (s * 48271 mod
 * 2^31 - 1), whose products stay below 2^53, so JS numbers compute it exactly, as Python does.
 */
export function batches(b: number, t: number, vocab = 50257): Int32Array[] {
  let s = 1234567;
  return Array.from({ length: 4 }, () =>
    Int32Array.from({ length: b * t }, () => ((s = (s * 48271) % 2147483647), s % vocab)),
  );
}

/**
 * A DPO batch from the token batches: for pair k, chosen = row k of batch i, rejected = the
 * same prompt (first T/2 tokens) with the second half of row k of batch i + 1. ids [2B, T]
 * (chosen rows, then rejected rows) and labels with the prompt positions -100.
 */
export function dpoBatch(data: Int32Array[], i: number, b: number, t: number): { ids: Int32Array; labels: Int32Array } {
  const ids = new Int32Array(2 * b * t);
  const [a, next] = [data[i % data.length], data[(i + 1) % data.length]];
  for (let k = 0; k < b; k++) {
    ids.set(a.subarray(k * t, (k + 1) * t), k * t);
    ids.set(a.subarray(k * t, k * t + t / 2), (b + k) * t);
    ids.set(next.subarray(k * t + t / 2, (k + 1) * t), (b + k) * t + t / 2);
  }
  const labels = Int32Array.from(ids, (v, j) => (j % t < t / 2 ? -100 : v));
  return { ids, labels };
}

function gpuMemMB(pid: number): number | null {
  const r = spawnSync('nvidia-smi', ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'], {
    encoding: 'utf8',
  });
  const line = r.stdout?.split('\n').find((l) => l.split(',')[0]?.trim() === String(pid));
  return line ? Number(line.split(',')[1]) : null;
}

async function child(): Promise<void> {
  registerTorchBackend({
    device: process.env.ANNEAL_DEVICE ?? 'cuda:0',
    autocast: 'bf16',
    precision: process.env.BENCH_PRECISION === 'bf16' ? 'bf16' : 'float32',
    tf32: true,
    warn: (m) => process.stderr.write(m + '\n'),
  });
  await useBackend('torch', {});
  const addon = loadAddon();
  const init = process.env.BENCH_INIT_DIR;
  const gpt2 = () =>
    init
      ? Gpt2LMHeadModel.fromPretrained(init)
      : Gpt2LMHeadModel.init({ ...GPT2_DEFAULTS, residPdrop: 0, embdPdrop: 0, attnPdrop: 0 }, 1);
  const model = QWEN3 ? (init ? loadPretrainedSync(init) : initFromHfConfig(QWEN3_CONFIG, 1)) : gpt2();
  const targetModules = QWEN3 ? 'all-linear' : ['c_attn', 'c_proj', 'c_fc'];
  const lora = LORA
    ? new LoraModel(model, LoraConfigSchema.parse({ r: 16, loraAlpha: 32, targetModules }), 1)
    : undefined;
  // DPO's reference: a frozen copy of the initial policy (TRL's default without peft)
  const ref = DPO ? gpt2() : undefined;
  const params = lora ? lora.params : model.params;
  const net = lora ?? model;
  const opt = new AdamW(params, { betas: [0.9, 0.95], eps: 1e-8, weightDecay: LORA || DPO ? 0 : 0.1 }); // TRL's DPO: no weight decay
  const data = batches(B, T, VOCAB);
  const losses: number[] = [];
  let pending: tf.Scalar[] = [];
  // The recorded step: the same forward, loss and AdamW as a function of its inputs (ids,
  // targets, token count, lr, step, parameters, moments), replayed after it was recorded.
  // (DPO: inputs ids [2B, T], targets, mask, counts and the reference's log-probs [2B].)
  const fstep = new FunctionalStep(params, opt, ([ids, targets, count, mask, refLogps]) => {
    if (DPO) {
      const p = batchLogpsOfTargets(
        net.forward({ inputIds: ids as tf.Tensor2D }).logits as tf.Tensor3D,
        targets as tf.Tensor1D,
        mask as tf.Tensor2D,
        count as tf.Tensor1D,
      ).logps; // [2B]
      const half = (t: tf.Tensor, k: number) => tf.slice(t, [k * B], [B]) as tf.Tensor1D;
      const { losses } = dpoLoss(
        {
          policyChosenLogps: half(p, 0),
          policyRejectedLogps: half(p, 1),
          referenceChosenLogps: half(refLogps, 0),
          referenceRejectedLogps: half(refLogps, 1),
        },
        { beta: 0.1, lossType: 'sigmoid' },
      );
      return tf.mean(losses) as tf.Scalar;
    }
    if (LINEAR_CE && model instanceof Gpt2LMHeadModel) {
      const hidden = tf.reshape(model.hidden({ inputIds: ids as tf.Tensor2D }), [
        B * T,
        model.config.nEmbd,
      ]) as tf.Tensor2D; // [B*T, C]
      return tf.div(linearCrossEntropySum(hidden, model.lmHeadWeight, targets as tf.Tensor1D), count) as tf.Scalar;
    }
    const logits = net.forward({ inputIds: ids as tf.Tensor2D }).logits as tf.Tensor3D; // [B, T, V]
    return tf.div(
      crossEntropySumOfTargets(tf.reshape(logits, [B * T, logits.shape[2]]) as tf.Tensor2D, targets as tf.Tensor1D),
      count,
    ) as tf.Scalar;
  });
  const recorded = new RecordedStep(fstep.fn, { warmup: 1, cudaGraph: process.env.BENCH_CUDA_GRAPH !== '0' });
  const clmInputs = (ids: Int32Array): tf.Tensor[] => {
    const { targets, count } = causalLmTargets(ids, B, T);
    return [tf.tensor2d(ids, [B, T], 'int32'), tf.tensor1d(targets, 'int32'), tf.scalar(count)];
  };
  const dpoInputs = (i: number): tf.Tensor[] => {
    const { ids, labels } = dpoBatch(data, i, B, T);
    const { targets, mask, counts } = logpsTargets(labels, 2 * B, T);
    const x = tf.tensor2d(ids, [2 * B, T], 'int32');
    const dev = [
      tf.tensor1d(targets, 'int32'),
      tf.tensor1d(counts.map((c) => Math.max(1, c))),
      tf.tensor2d(mask, [2 * B, T]),
    ] as const;
    const refLogps = tf.tidy(
      () => batchLogpsOfTargets(ref!.forward({ inputIds: x }).logits as tf.Tensor3D, dev[0], dev[2], dev[1]).logps,
    ); // [2B], no gradient
    return [x, ...dev, refLogps];
  };
  const recordedStep = (i: number): tf.Scalar => {
    const batch = DPO ? dpoInputs(i) : clmInputs(data[i % data.length]);
    const [lr, stepT] = [tf.scalar(LR), tf.scalar(opt.step + 1)];
    const loss = fstep.take(recorded.run(fstep.inputs(batch, lr, stepT)));
    tf.dispose([...batch, lr, stepT]);
    return loss;
  };
  const step = (i: number) => {
    if (RECORD) {
      pending.push(recordedStep(i));
      if ((i + 1) % LOG_EVERY === 0) {
        losses.push(pending[pending.length - 1].dataSync()[0]);
        tf.dispose(pending);
        pending = [];
      }
      return;
    }
    let loss: () => tf.Scalar;
    let refLogps: tf.Tensor1D | undefined;
    if (ref) {
      const { ids, labels } = dpoBatch(data, i, B, T);
      const x = () => tf.tensor2d(ids, [2 * B, T], 'int32');
      refLogps = tf.tidy(() => batchLogps(ref.forward({ inputIds: x() }).logits as tf.Tensor3D, labels).logps); // [2B], no gradient
      loss = () => {
        const p = batchLogps(net.forward({ inputIds: x() }).logits as tf.Tensor3D, labels).logps; // [2B]
        const half = (t: tf.Tensor1D, k: number) => tf.slice(t, [k * B], [B]) as tf.Tensor1D;
        const { losses } = dpoLoss(
          {
            policyChosenLogps: half(p, 0),
            policyRejectedLogps: half(p, 1),
            referenceChosenLogps: half(refLogps!, 0),
            referenceRejectedLogps: half(refLogps!, 1),
          },
          { beta: 0.1, lossType: 'sigmoid' },
        );
        return tf.mean(losses) as tf.Scalar;
      };
    } else {
      const ids = data[i % data.length];
      loss = () => {
        const { sum, count } = causalLmLossSum(
          net.forward({ inputIds: tf.tensor2d(ids, [B, T], 'int32') }).logits as tf.Tensor3D,
          ids,
        );
        return tf.div(sum, count) as tf.Scalar;
      };
    }
    const { value, grads } = valueAndGrads(params, loss);
    refLogps?.dispose();
    opt.apply(grads, LR);
    tf.dispose([...grads.values()]);
    pending.push(value);
    if ((i + 1) % LOG_EVERY === 0) {
      losses.push(pending[pending.length - 1].dataSync()[0]); // the one host read: the logged loss
      tf.dispose(pending);
      pending = [];
    }
  };
  for (let i = 0; i < WARMUP; i++) step(i);
  const start = {
    bytes: addon.bytes(),
    tensors: tf.memory().numTensors,
    reads: addon.downloads(),
    t: performance.now(),
  };
  for (let i = WARMUP; i < STEPS; i++) step(i);
  const ms = (performance.now() - start.t) / (STEPS - WARMUP); // ends on a logged (synchronising) step
  const row: GpuRow = {
    engine: `Anneal torch backend (libtorch ${addon.info().torchVersion}, ${addon.info().device})${lora ? `, LoRA (${lora.numTrainableParameters} trainable)` : ''}${ref ? ', DPO (@anneal/dpo)' : ''}${addon.info().precision === 'bf16' ? ', precision bf16' : ''}${addon.info().padGemm ? ', GEMMs padded' : ''}${LINEAR_CE ? ', chunked linear + cross-entropy' : ''}${RECORD ? `, recorded step (${recorded.stats.calls} kernels; replayed ${recorded.stats.replayed}/${STEPS}; CUDA graph: ${recorded.stats.graph}${recorded.stats.fallback ? `; NOT replayed: ${recorded.stats.fallback}` : ''})` : ', dispatched from JS'}`,
    batch: B,
    ctx: T,
    steps: STEPS,
    msPerStep: ms,
    tokensPerSec: ((DPO ? 2 : 1) * B * T * 1000) / ms,
    hostReadsPerStep: (addon.downloads() - start.reads) / (STEPS - WARMUP),
    liveBytesStart: start.bytes,
    liveBytesEnd: addon.bytes(),
    tensorsStart: start.tensors,
    tensorsEnd: tf.memory().numTensors,
    gpuMemMB: gpuMemMB(process.pid),
    lossFirst: losses[0],
    lossLast: losses[losses.length - 1],
  };
  console.log(JSON.stringify(row));
}

function flopsPerToken(): number {
  if (QWEN3) {
    const q = QWEN3_CONFIG as Record<string, number>;
    const [C, L, A] = [q.hidden_size, q.num_hidden_layers, q.num_attention_heads * q.head_dim];
    const kv = q.num_key_value_heads * q.head_dim;
    const perLayer = C * A + 2 * C * kv + A * C + 3 * C * q.intermediate_size; // q, k, v, o; gate, up, down
    return 6 * (L * perLayer + q.vocab_size * C) + 12 * L * T * A; // + the (tied) head's product
  }
  const c = GPT2_DEFAULTS;
  const C = c.nEmbd;
  const perLayer = 4 * C * C + 4 * C + 8 * C * C + 5 * C + 4 * C; // attention (qkv, proj) and MLP weights and biases, two layer norms
  const n = c.vocabSize * C + c.nLayer * perLayer + 2 * C; // wte (tied head) + blocks + ln_f, without wpe
  return DPO ? 8 * n + 16 * c.nLayer * T * C : 6 * n + 12 * c.nLayer * T * C;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child();
  const rows: GpuRow[] = [];
  const py = fileURLToPath(new URL('./gpu_train_hf.py', import.meta.url));
  // transformers writes its freshly initialised model here; Anneal starts from the same weights.
  const initDir = mkdtempSync(join(tmpdir(), 'anneal-gpu-bench-'));
  const env = {
    BENCH_HF_COMPILE: process.env.BENCH_HF_COMPILE ?? '0',
    BENCH_BATCH: String(B),
    BENCH_STEPS: String(STEPS),
    BENCH_WARMUP: String(WARMUP),
    BENCH_INIT_DIR: initDir,
    BENCH_LORA: LORA ? '1' : '0',
    BENCH_DPO: DPO ? '1' : '0',
    BENCH_LOG_EVERY: String(LOG_EVERY),
    BENCH_CTX: String(T),
    BENCH_MODEL: QWEN3 ? 'qwen3-0.6b' : 'gpt2',
    BENCH_QWEN3_CONFIG: JSON.stringify(QWEN3_CONFIG),
  };
  Object.assign(process.env, env);
  const hf = process.env.BENCH_HF === '0' ? undefined : runJson<GpuRow>(pythonWithTorch(), [py]);
  if (!hf) delete process.env.BENCH_INIT_DIR; // nothing saved: Anneal initialises its own
  const ours =
    process.env.BENCH_ANNEAL === '0' ? undefined : runSelf<GpuRow>(fileURLToPath(import.meta.url), ['--child']);
  rmSync(initDir, { recursive: true, force: true });
  if (hf) rows.push(hf);
  if (ours) rows.push(ours);
  const peak = Number(process.env.BENCH_PEAK_TFLOPS ?? 989) * 1e12; // H100 SXM datasheet by default; tools/gpu/check.sh sets the H200's measured 790
  console.log(
    `\n${QWEN3 ? `Qwen3-0.6B-shaped (${QWEN3_CONFIG.num_hidden_layers} layers, random weights)` : 'GPT-2 124M'}${LORA ? ` with LoRA (r 16 on ${QWEN3 ? 'all linear layers' : 'c_attn, c_proj, c_fc'})` : ''}${DPO ? ', DPO step (policy + frozen reference), ' + B + ' pairs =' : ','} batch ${DPO ? 2 * B : B} x ${T} tokens, ${STEPS} steps (${WARMUP} warm-up), bf16 autocast, AdamW fused, loss read every ${LOG_EVERY} steps, MFU against ${peak / 1e12} TFLOP/s\n`,
  );
  console.log(
    '| engine | ms/step | tokens/s | vs transformers | MFU | host reads/step | live MB (tensors) after warm-up → end | GPU MB (nvidia-smi) | loss @20 → @end |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---|---:|---|');
  for (const r of rows) {
    const vs = hf ? `${(r.tokensPerSec / hf.tokensPerSec).toFixed(2)}x` : 'n/a';
    const mfu = ((r.tokensPerSec * flopsPerToken()) / peak) * 100;
    const reads = r.hostReadsPerStep === null ? 'n/a' : r.hostReadsPerStep.toFixed(2);
    console.log(
      `| ${r.engine} | ${r.msPerStep.toFixed(1)} | ${r.tokensPerSec.toFixed(0)} | ${vs} | ${mfu.toFixed(1)}% | ${reads} | ${(r.liveBytesStart / 2 ** 20).toFixed(0)} (${r.tensorsStart}) → ${(r.liveBytesEnd / 2 ** 20).toFixed(0)} (${r.tensorsEnd}) | ${r.gpuMemMB ?? 'n/a'} | ${r.lossFirst.toFixed(3)} → ${r.lossLast.toFixed(3)} |`,
    );
  }
  if (process.env.BENCH_JSON_OUT)
    writeFileSync(
      process.env.BENCH_JSON_OUT,
      JSON.stringify(
        rows.map((r) => ({ ...r, mfu: (r.tokensPerSec * flopsPerToken()) / peak, peakTflops: peak / 1e12 })),
      ) + '\n',
    );
  if ((!hf && process.env.BENCH_HF !== '0') || (!ours && process.env.BENCH_ANNEAL !== '0')) process.exitCode = 1;
}

await main();
