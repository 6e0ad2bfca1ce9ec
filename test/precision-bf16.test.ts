// precision: bf16 on the torch backend (activations and their gradients in bfloat16,
// parameters, optimizer state, reductions and the loss in float32) against the float32
// run of the same GPT-2 from the same weights; and GEMM padding (padGemm), which must not
// change a product. Required in CI (the addon is built there), skipped elsewhere.
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ADDON_PATH,
  loadAddon,
  registerTorchBackend,
  type NativeAddon,
  type TorchBackend,
} from '@anneal/backend-torch';
import { AdamW, Rng, useBackend, valueAndGrads } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, causalLmLossSum } from '@anneal/modeling';

const required = process.env.CI === 'true' || Boolean(process.env.ANNEAL_REQUIRE_TORCH);
const d = existsSync(ADDON_PATH) || required ? describe : describe.skip;

const CFG = {
  ...GPT2_DEFAULTS,
  vocabSize: 97,
  nPositions: 32,
  nEmbd: 64,
  nHead: 4,
  nLayer: 2,
  residPdrop: 0,
  embdPdrop: 0,
  attnPdrop: 0,
};
const [B, T] = [8, 32];
const ids = (seed: number) => {
  const rng = new Rng(seed);
  return Int32Array.from({ length: B * T }, () => Math.floor(rng.next() * CFG.vocabSize));
};

d('precision bf16 (torch backend)', () => {
  let addon: NativeAddon;
  let backend: TorchBackend;
  beforeAll(async () => {
    registerTorchBackend({ warn: () => undefined });
    await useBackend('torch', {});
    addon = loadAddon();
    backend = tf.backend() as TorchBackend;
  });
  afterEach(() => addon.configure({ precision: 'float32', autocast: 'none', padGemm: false }));

  const logitsOf = (model: Gpt2LMHeadModel) => {
    const before = addon.bytes();
    const logits = tf.tidy(() => model.forward({ inputIds: tf.tensor2d(ids(1), [B, T], 'int32') }).logits);
    const bytes = addon.bytes() - before;
    const values = logits.dataSync() as Float32Array;
    logits.dispose();
    return { values, bytes };
  };

  it('GPT-2 logits: bfloat16 activations (2 bytes each) within bf16 rounding of float32', () => {
    const model = Gpt2LMHeadModel.init(CFG, 3);
    const f32 = logitsOf(model);
    addon.configure({ precision: 'bf16' });
    expect(addon.info().precision).toBe('bf16');
    const bf16 = logitsOf(model);
    expect(f32.bytes).toBe(B * T * CFG.vocabSize * 4);
    expect(bf16.bytes).toBe(B * T * CFG.vocabSize * 2); // the logits are a bfloat16 tensor in libtorch
    const scale = f32.values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    let worst = 0;
    f32.values.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - bf16.values[i]))));
    expect(worst).toBeLessThan(0.03 * scale);
    expect(worst).toBeGreaterThan(0); // it did run in bfloat16
    model.dispose();
  });

  /** Trains a fresh model for `steps` steps; returns the losses and the live bytes at the end of each forward. */
  function train(mode: { precision?: 'bf16' | 'float32'; autocast?: 'bf16' | 'none' }, steps: number) {
    addon.configure({ precision: mode.precision ?? 'float32', autocast: mode.autocast ?? 'none' });
    const model = Gpt2LMHeadModel.init(CFG, 3);
    const opt = new AdamW(model.params, { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 });
    const losses: number[] = [];
    const forwardBytes: number[] = [];
    const gradBytes: number[] = [];
    const tensors: number[] = [];
    for (let i = 0; i < steps; i++) {
      const x = ids(10 + (i % 2));
      const { value, grads } = valueAndGrads(model.params, () => {
        const { sum, count } = causalLmLossSum(model.forward({ inputIds: tf.tensor2d(x, [B, T], 'int32') }).logits, x);
        const loss = tf.div(sum, count) as tf.Scalar;
        forwardBytes.push(addon.bytes()); // everything saved for the backward pass is alive here
        return loss;
      });
      for (const g of grads.values()) expect(g.dtype).toBe('float32');
      opt.apply(grads, 1e-2);
      losses.push(value.dataSync()[0]);
      value.dispose();
      const withGrads = addon.bytes();
      tf.dispose([...grads.values()]);
      gradBytes.push(withGrads - addon.bytes()); // what the gradients' own storage held
      tensors.push(tf.memory().numTensors);
    }
    const resting = addon.bytes();
    model.dispose();
    opt.dispose();
    return { losses, forwardBytes, gradBytes, tensors, resting };
  }
  const paramCount = () => {
    const model = Gpt2LMHeadModel.init(CFG, 3);
    const n = [...model.params.values()].reduce((s, v) => s + v.size, 0);
    model.dispose();
    return n;
  };

  it('trains as float32 does, within bf16 rounding; saves half-size activations for backward; leaks nothing', () => {
    const f32 = train({ precision: 'float32' }, 12);
    const bf16 = train({ precision: 'bf16' }, 12);
    bf16.losses.forEach((l, i) =>
      expect(Math.abs(l - f32.losses[i]), `step ${i + 1}`).toBeLessThan(0.03 * f32.losses[i]),
    );
    expect(bf16.losses[11]).toBeLessThan(bf16.losses[0] - 0.5); // it learns
    expect(new Set(bf16.tensors.slice(2)).size).toBe(1);
    expect(backend.nativeCount()).toBe(backend.numDataIds());
    // bytes saved for backward = live at the end of the forward, less what rests between steps
    const saved = (r: { forwardBytes: number[]; resting: number }) => r.forwardBytes[5] - r.resting;
    expect(saved(bf16)).toBeLessThan(0.62 * saved(f32));
  });

  it("bf16 autocast keeps torch.autocast's dtypes: bfloat16 products saved for backward, float32 gradients", () => {
    const f32 = train({}, 12);
    const auto = train({ autocast: 'bf16' }, 12);
    auto.losses.forEach((l, i) =>
      expect(Math.abs(l - f32.losses[i]), `step ${i + 1}`).toBeLessThan(0.03 * f32.losses[i]),
    );
    expect(auto.losses.some((l, i) => l !== f32.losses[i])).toBe(true); // it did run in bfloat16
    expect(auto.losses[11]).toBeLessThan(auto.losses[0] - 0.5); // it learns
    expect(new Set(auto.tensors.slice(2)).size).toBe(1);
    expect(backend.nativeCount()).toBe(backend.numDataIds());
    // Every weight gradient is float32 (4 bytes a parameter), though the products computing it were bfloat16
    const n = paramCount();
    auto.gradBytes.forEach((b) => expect(b).toBe(4 * n));
    f32.gradBytes.forEach((b) => expect(b).toBe(4 * n));
    // Products (q, k, v, attention output, MLP hidden, the logits) are saved as bfloat16; the
    // residual stream and the norms' outputs stay float32, as under torch.autocast: in between
    // float32 (1.0) and precision bf16 (below 0.62); 0.68 when written.
    const saved = (r: { forwardBytes: number[]; resting: number }) => r.forwardBytes[5] - r.resting;
    expect(saved(auto)).toBeLessThan(0.75 * saved(f32));
    expect(saved(auto)).toBeGreaterThan(0.5 * saved(f32));
  });

  it('GEMM padding: unaligned products (M 1031, N 1029; K 1027) and their gradients equal the unpadded ones', () => {
    addon.configure({ autocast: 'bf16' });
    const run = () =>
      tf.tidy(() => {
        const a = tf.randomNormal([1031, 40], 0, 1, 'float32', 1); // [M, K]: M padded
        const b = tf.randomNormal([1029, 40], 0, 1, 'float32', 2); // used transposed: N padded
        const c = tf.randomNormal([40, 1027], 0, 1, 'float32', 3); // inner dimension K padded
        const w = tf.randomNormal([1031, 1029], 0, 1, 'float32', 4);
        const f = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
          tf.add(tf.sum(tf.mul(tf.matMul(x, y, false, true), w)), tf.sum(tf.matMul(z, z, false, true)));
        const { value, grads } = tf.valueAndGrads(f)([a, b, c]);
        return [value, ...grads, tf.matMul(a, b, false, true)].map((t) => t.dataSync() as Float32Array);
      });
    const plain = run();
    addon.configure({ padGemm: true });
    expect(addon.info().padGemm).toBe(true);
    const padded = run();
    padded.forEach((arr, k) => {
      const scale = plain[k].reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const worst = arr.reduce((m, v, i) => Math.max(m, Math.abs(v - plain[k][i])), 0);
      // Products return bfloat16 under autocast (as torch.autocast's do), and the padded and
      // unpadded ones sum in other orders (other BLAS blockings, other cuBLAS kernels): a float32
      // difference of 1e-6 can round to neighbouring bfloat16 values, one ulp (2^-7 relative) apart.
      // Padding read as data would be off by O(scale).
      expect(worst, `output ${k}`).toBeLessThanOrEqual(2 ** -7 * scale);
    });
  });
});
