// Whole-model checks of the torch backend (they need @anneal/modeling, which the
// backend package itself may not import): GPT-2 against transformers, and a full
// training step that leaks nothing. Required in CI, skipped with a reason elsewhere.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADDON_PATH, registerTorchBackend, type TorchBackend } from '@anneal/backend-torch';
import { AdamW, clipGradNorm, parseSafetensors, readSafetensors, useBackend, valueAndGrads } from '@anneal/core';
import { dequantize, loadQuantized, saveQuantized, type QuantizationConfig } from '@anneal/quantization';
import {
  GPT2_DEFAULTS,
  Gpt2LMHeadModel,
  causalLmLoss,
  causalLmLossSum,
  crossEntropySum,
  attention,
  gelu,
  generate,
  layerNorm,
  loadPretrainedSync,
  maxLogitDiff,
  weightsFromTensors,
  readHfFixture,
  rmsNorm,
  seq2seqGenerate,
  type T5ForConditionalGeneration,
} from '@anneal/modeling';

const required = process.env.CI === 'true' || Boolean(process.env.ANNEAL_REQUIRE_TORCH);
const d = existsSync(ADDON_PATH) || required ? describe : describe.skip;

d('GPT-2 on the torch backend', () => {
  let backend: TorchBackend;
  beforeAll(async () => {
    registerTorchBackend({ warn: () => undefined });
    await useBackend('torch', {});
    backend = tf.backend() as TorchBackend;
  });

  it('fused layer norm, RMS norm, GELU, cross-entropy and attention (torch) equal the tfjs op chains (cpu), values and gradients', async () => {
    const run = () =>
      tf.tidy(() => {
        const x = tf.randomNormal([3, 5, 16], 0, 2, 'float32', 1);
        const g = tf.randomNormal([16], 1, 0.3, 'float32', 2);
        const b = tf.randomNormal([16], 0, 0.3, 'float32', 3);
        const w = tf.randomNormal([3, 5, 16], 0, 1, 'float32', 4);
        const padding = tf.mul(tf.tensor4d([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1], [3, 1, 1, 5]), -1e9);
        const targets = Int32Array.from([3, -100, 0, 15, 7, -100, 9, 1, 2, 4, 5, 6, -100, 8, 11]);
        const f = (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) =>
          tf.add(
            tf.sum(
              tf.mul(
                tf.add(
                  tf.add(layerNorm(xi, gi, bi, 1e-5), rmsNorm(xi, gi, 1e-6)),
                  tf.add(gelu(xi, 'tanh'), gelu(xi, 'none')),
                ),
                w,
              ),
            ),
            tf.add(
              tf.mul(crossEntropySum(tf.reshape(xi, [15, 16]) as tf.Tensor2D, targets).sum, 0.5),
              // attention over [B=3, H=1, T=5, D=16] with a causal bias plus a padding bias [B, 1, 1, T]
              tf.sum(
                tf.mul(
                  attention(
                    tf.expandDims(xi, 1),
                    tf.expandDims(tf.mul(xi, gi), 1),
                    tf.expandDims(tf.add(xi, bi), 1),
                    tf.add(tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([5, 5]), -1, 0)), -1e9), padding),
                    0.25,
                  ),
                  tf.expandDims(w, 1),
                ),
              ),
            ),
          );
        const { value, grads } = tf.valueAndGrads(f)([x, g, b]);
        return [value, ...grads].map((t) => Array.from(t.dataSync()));
      });
    await useBackend('cpu', {});
    const want = run();
    await useBackend('torch', {});
    expect(tf.getKernel('AnnealLayerNorm', 'torch')).toBeDefined();
    expect(tf.getKernel('AnnealRmsNorm', 'torch')).toBeDefined();
    const got = run();
    got.forEach((arr, i) =>
      arr.forEach((v, j) =>
        expect(Math.abs(v - want[i][j]), `output ${i}[${j}]`).toBeLessThanOrEqual(
          2e-5 * Math.max(1, Math.abs(want[i][j])),
        ),
      ),
    );
  });

  // Causal attention without padding is flagged `causal` so that a GPU runs SDPA's
  // is_causal kernel (flash under bf16) without reading the bias; it must equal attention
  // through the explicit causal bias. On cpu the flag changes nothing.
  const causalAttention = (causal: boolean) =>
    tf.tidy(() => {
      const [B, H, T, D] = [2, 3, 33, 16];
      const q = tf.randomNormal([B, H, T, D], 0, 1, 'float32', 11);
      const k = tf.randomNormal([B, H, T, D], 0, 1, 'float32', 12);
      const v = tf.randomNormal([B, H, T, D], 0, 1, 'float32', 13);
      const w = tf.randomNormal([B, H, T, D], 0, 1, 'float32', 14);
      const bias = tf.reshape(tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9), [1, 1, T, T]);
      const y = attention(q, k, v, bias, 0.25, undefined, causal); // [B, H, T, D]
      const grads = tf.grads((qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor) =>
        tf.sum(tf.mul(attention(qi, ki, vi, bias, 0.25, undefined, causal), w)),
      )([q, k, v]);
      return [y, ...grads].map((t) => Float32Array.from(t.dataSync())); // y, dq, dk, dv
    });
  const relErr = (got: Float32Array, want: Float32Array) => {
    let d = 0;
    let n = 0;
    want.forEach((x, i) => ((d += (got[i] - x) ** 2), (n += x * x)));
    return Math.sqrt(d / n);
  };

  it('causal attention (the is_causal kernel on a GPU) equals attention through the causal bias on cpu, values and gradients', async () => {
    await useBackend('cpu', {});
    const want = causalAttention(false);
    await useBackend('torch', {});
    const got = causalAttention(true);
    got.forEach((arr, i) => expect(relErr(arr, want[i]), `output ${i}`).toBeLessThan(2e-5));
  });

  it('attention dropout in the fused kernel: a seeded mask (the same again in backward), kept values scaled, exact gradients', () => {
    const [B, T, rate] = [2, 24, 0.25];
    tf.tidy(() => {
      const q = tf.randomNormal([B, 1, T, 8], 0, 1, 'float32', 21);
      const k = tf.randomNormal([B, 1, T, 8], 0, 1, 'float32', 22);
      const eye = tf.reshape(tf.eye(T), [1, 1, T, T]); // v = I: y is the (dropped) probabilities themselves
      const bias = tf.zeros([1, 1, T, T]);
      const probs = attention(q, k, eye, bias, 0.5).dataSync();
      const dropped = attention(q, k, eye, bias, 0.5, { rate, seed: 7 }).dataSync();
      let zeros = 0;
      dropped.forEach((x, i) => {
        if (x === 0) zeros++;
        else expect(Math.abs(x - probs[i] / (1 - rate))).toBeLessThan(1e-6);
      });
      expect(Math.abs(zeros / dropped.length - rate)).toBeLessThan(0.05);
      expect(Array.from(attention(q, k, eye, bias, 0.5, { rate, seed: 7 }).dataSync())).toEqual(Array.from(dropped));
      expect(Array.from(attention(q, k, eye, bias, 0.5, { rate, seed: 8 }).dataSync())).not.toEqual(
        Array.from(dropped),
      );
      // the gradient along a random direction against a central difference of the same (seeded) function
      const v = tf.randomNormal([B, 1, T, 8], 0, 1, 'float32', 23);
      const w = tf.randomNormal([B, 1, T, 8], 0, 1, 'float32', 24);
      const f = (qi: tf.Tensor, vi: tf.Tensor) => tf.sum(tf.mul(attention(qi, k, vi, bias, 0.5, { rate, seed: 7 }), w));
      const [dq, dv] = tf.grads(f)([q, v]);
      const [uq, uv] = [tf.randomNormal(q.shape, 0, 1, 'float32', 25), tf.randomNormal(v.shape, 0, 1, 'float32', 26)];
      const eps = 1e-2;
      const at = (s: number) => f(tf.add(q, tf.mul(uq, s)), tf.add(v, tf.mul(uv, s))).dataSync()[0];
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      const analytic = tf.add(tf.sum(tf.mul(dq, uq)), tf.sum(tf.mul(dv, uv))).dataSync()[0];
      expect(Math.abs(numeric - analytic) / Math.abs(analytic)).toBeLessThan(1e-2);
    });
  });

  it('attention in query blocks (long sequences) equals one block: outputs, log-sum-exp and gradients; dropout masks redrawn per block', () => {
    const [B, H, T, D, scale] = [2, 3, 29, 8, 0.35];
    const run = (name: string, inputs: Record<string, tf.Tensor>, attrs: object) =>
      tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as unknown as tf.Tensor[];
    tf.tidy(() => {
      const q = tf.randomNormal([B, H, T, D], 0, 1, 'float32', 31);
      const k = tf.randomNormal([B, H, T, D], 0, 1, 'float32', 32);
      const v = tf.randomNormal([B, H, T, D], 0, 1, 'float32', 33);
      const dy = tf.randomNormal([B, H, T, D], 0, 1, 'float32', 34);
      const causal = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9).reshape([1, 1, T, T]);
      const padding = tf.mul(tf.randomUniform([B, 1, 1, T], 0, 1, 'float32', 35).greater(0.8), -1e9); // broadcast over queries
      for (const bias of [causal, padding]) {
        const [y1, lse1] = run('AnnealAttention', { q, k, v, bias }, { scale, causal: false });
        const [y5, lse5] = run('AnnealAttention', { q, k, v, bias }, { scale, causal: false, block: 5 }); // 29 = 5·5 + 4
        expect(relErr(y5.dataSync() as Float32Array, y1.dataSync() as Float32Array)).toBeLessThan(1e-6);
        expect(relErr(lse5.dataSync() as Float32Array, lse1.dataSync() as Float32Array)).toBeLessThan(1e-6);
        const g1 = run('AnnealAttentionGrad', { dy, q, k, v, bias, lse: lse1 }, { scale });
        const g5 = run('AnnealAttentionGrad', { dy, q, k, v, bias, lse: lse5 }, { scale, block: 5 });
        g5.forEach((g, i) =>
          expect(relErr(g.dataSync() as Float32Array, g1[i].dataSync() as Float32Array), `gradient ${i}`).toBeLessThan(
            1e-5,
          ),
        );
      }
      // With v = I the output is the dropped probabilities, and dv = yᵀ dy: the backward pass
      // redraws each block's mask exactly
      const eye = tf.reshape(tf.eye(T), [1, 1, T, T]).tile([B, H, 1, 1]);
      const drop = { scale, causal: false, dropout: 0.3, seed: 11, block: 5 };
      const [y, lse] = run('AnnealAttention', { q, k, v: eye, bias: causal }, drop);
      const [probs] = run('AnnealAttention', { q, k, v: eye, bias: causal }, { scale, causal: false });
      const [yv, pv] = [y.dataSync(), probs.dataSync()];
      let zeros = 0;
      yv.forEach((x, i) => {
        if (x === 0 && pv[i] !== 0) zeros++;
        else expect(Math.abs(x - pv[i] / 0.7)).toBeLessThan(1e-6);
      });
      expect(zeros / pv.filter((p) => p !== 0).length).toBeGreaterThan(0.2);
      expect(zeros / pv.filter((p) => p !== 0).length).toBeLessThan(0.4);
      const dyT = tf.randomNormal([B, H, T, T], 0, 1, 'float32', 36);
      const [, , dv] = run('AnnealAttentionGrad', { dy: dyT, q, k, v: eye, bias: causal, lse }, drop);
      expect(
        relErr(dv.dataSync() as Float32Array, tf.matMul(y, dyT, true, false).dataSync() as Float32Array),
      ).toBeLessThan(1e-5);
      // the same masks again for the same seed
      const [again] = run('AnnealAttention', { q, k, v: eye, bias: causal }, drop);
      expect(Array.from(again.dataSync())).toEqual(Array.from(yv));
    });
  });

  it('GPT-2 with attention dropout: activation checkpointing draws the same masks (gradients within 1e-6)', () => {
    const model = Gpt2LMHeadModel.init(
      {
        ...GPT2_DEFAULTS,
        vocabSize: 61,
        nPositions: 32,
        nEmbd: 32,
        nHead: 2,
        nLayer: 2,
        attnPdrop: 0.2,
        residPdrop: 0,
        embdPdrop: 0,
      },
      3,
    );
    const ids = Array.from({ length: 2 }, (_, b) => Array.from({ length: 16 }, (_, t) => (b * 13 + t * 5) % 61));
    const gradsOf = (on: boolean) => {
      model.gradientCheckpointing = on;
      const { value, grads } = valueAndGrads(
        model.params,
        () =>
          causalLmLoss(
            model.forward({ inputIds: tf.tensor2d(ids, [2, 16], 'int32'), training: true, dropoutSeed: 4 }).logits,
            ids,
          ).loss,
      );
      const out = new Map([...grads].map(([n, g]) => [n, g.dataSync()]));
      tf.dispose([value, ...grads.values()]);
      return out;
    };
    const plain = gradsOf(false);
    const ckpt = gradsOf(true);
    for (const [n, g] of plain) {
      const scale = Math.max(...Array.from(g, Math.abs));
      const worst = Math.max(...Array.from(g, (x, i) => Math.abs(x - ckpt.get(n)![i])));
      expect(worst / scale, n).toBeLessThanOrEqual(1e-6);
    }
    model.dispose();
  });

  const onGpu = () => backend.addon.info().device.startsWith('cuda');
  it.runIf(process.env.ANNEAL_DEVICE?.startsWith('cuda'))(
    'on a GPU under bf16 autocast, fused attention (flash when causal) stays within bfloat16 precision of float32 attention',
    async () => {
      await useBackend('torch', {});
      expect(onGpu()).toBe(true);
      const exact = causalAttention(true);
      backend.addon.configure({ autocast: 'bf16' });
      try {
        for (const causal of [true, false]) {
          const got = causalAttention(causal);
          got.forEach((arr, i) => {
            const e = relErr(arr, exact[i]);
            expect(e, `causal ${causal}, output ${i}`).toBeLessThan(2e-2);
            expect(e, `causal ${causal}, output ${i} really ran in bfloat16`).toBeGreaterThan(1e-4);
          });
        }
      } finally {
        backend.addon.configure({ autocast: 'none' });
      }
    },
  );

  it('GPT-2 without a mask (the causal flag) gives the logits of GPT-2 with an all-ones mask (the bias)', async () => {
    await useBackend('torch', {});
    const model = Gpt2LMHeadModel.init(
      { ...GPT2_DEFAULTS, vocabSize: 97, nPositions: 64, nEmbd: 32, nHead: 4, nLayer: 2 },
      5,
    );
    const ids = Int32Array.from({ length: 2 * 40 }, (_, i) => (i * 31 + 7) % 97);
    const [plain, masked] = tf.tidy(() => [
      Float32Array.from(model.forward({ inputIds: tf.tensor2d(ids, [2, 40], 'int32') }).logits.dataSync()),
      Float32Array.from(
        model
          .forward({
            inputIds: tf.tensor2d(ids, [2, 40], 'int32'),
            attentionMask: tf.ones([2, 40], 'int32') as tf.Tensor2D,
          })
          .logits.dataSync(),
      ),
    ]);
    expect(relErr(plain, masked)).toBeLessThan(1e-5);
    model.dispose();
  });

  it('matches transformers on the GPT-2 fixture (logits, loss, gradient norms)', async () => {
    const dir = fileURLToPath(new URL('../../shared/fixtures/hf/gpt2/', import.meta.url));
    const io = JSON.parse(readFileSync(join(dir, 'io.json'), 'utf8'));
    const buf = readFileSync(join(dir, 'logits.bin'));
    const ref = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const model = Gpt2LMHeadModel.fromPretrained(dir);
    const ids = io.inputs.input_ids as number[][];
    const mask = io.inputs.attention_mask as number[][];
    const [B, T, V] = io.logits.shape;
    const { value, grads } = valueAndGrads(model.params, () => {
      const logits = model.forward({
        inputIds: tf.tensor2d(ids, [B, T], 'int32'),
        attentionMask: tf.tensor2d(mask, [B, T], 'int32'),
      }).logits;
      const got = logits.dataSync();
      let maxDiff = 0;
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++)
          if (mask[b][t])
            for (let v = 0; v < V; v++)
              maxDiff = Math.max(maxDiff, Math.abs(got[(b * T + t) * V + v] - ref[(b * T + t) * V + v]));
      expect(maxDiff).toBeLessThan(1e-4);
      return causalLmLoss(logits, ids).loss;
    });
    expect(value.dataSync()[0]).toBeCloseTo(io.loss, 5);
    for (const [name, want] of Object.entries(io.grad_norms as Record<string, number>)) {
      const n = tf.tidy(() => tf.norm(grads.get(name)!).dataSync()[0]);
      expect(Math.abs(n - want) / Math.max(want, 1e-3), name).toBeLessThan(1e-3);
    }
    tf.dispose([value, ...grads.values()]);
    model.dispose();
  });

  it('gives the logits, loss and gradients of the cpu backend for a whole GPT-2 forward/backward (1e-5 relative)', async () => {
    const run = () => {
      const model = Gpt2LMHeadModel.init(
        { ...GPT2_DEFAULTS, vocabSize: 97, nPositions: 16, nLayer: 2, nHead: 4, nEmbd: 32 },
        5,
      );
      const ids = Array.from({ length: 2 }, (_, b) => Array.from({ length: 16 }, (_, t) => (b * 31 + t * 7) % 97));
      const mask = [new Array(16).fill(1), [...new Array(12).fill(1), 0, 0, 0, 0]];
      let logits: number[] = [];
      const { value, grads } = valueAndGrads(model.params, () => {
        const l = model.forward({
          inputIds: tf.tensor2d(ids, [2, 16], 'int32'),
          attentionMask: tf.tensor2d(mask, [2, 16], 'int32'),
        }).logits;
        logits = Array.from(l.dataSync());
        return causalLmLoss(l, ids).loss;
      });
      const out = {
        logits,
        loss: value.dataSync()[0],
        grads: [...grads].map(([n, g]) => [n, Array.from(g.dataSync())] as const),
      };
      tf.dispose([value, ...grads.values()]);
      model.dispose();
      return out;
    };
    await useBackend('cpu', {});
    const want = run();
    await useBackend('torch', {});
    const got = run();
    const close = (a: number, b: number) => Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b));
    expect(got.logits.every((v, i) => close(v, want.logits[i]))).toBe(true);
    expect(close(got.loss, want.loss)).toBe(true);
    got.grads.forEach(([name, g], k) => {
      expect(name).toBe(want.grads[k][0]);
      const bad = g.findIndex((v, i) => !close(v, want.grads[k][1][i]));
      expect(bad, `${name}[${bad}]: ${g[bad]} vs ${want.grads[k][1][bad]}`).toBe(-1);
    });
  });

  it.each(['llama', 'bert_mlm', 'bert_seqcls', 'gpt2_seqcls'])(
    'matches transformers on the %s fixture (logits at real positions, 1e-4)',
    (name) => {
      const dir = fileURLToPath(new URL(`../../shared/fixtures/hf/${name}/`, import.meta.url));
      const io = JSON.parse(readFileSync(join(dir, 'io.json'), 'utf8'));
      const { input_ids: ids, attention_mask: mask, token_type_ids: types } = io.inputs as Record<string, number[][]>;
      const [B, T] = [ids.length, ids[0].length];
      const model = loadPretrainedSync(dir);
      const got = tf.tidy(() =>
        model
          .forward({
            inputIds: tf.tensor2d(ids, [B, T], 'int32'),
            attentionMask: tf.tensor2d(mask, [B, T], 'int32'),
            ...(types && { tokenTypeIds: tf.tensor2d(types, [B, T], 'int32') }),
          })
          .logits.dataSync(),
      );
      expect(maxLogitDiff(readHfFixture(dir), got)).toBeLessThan(1e-4);
      if (io.generate)
        expect(
          generate(model as never, [io.generate.prompt_ids], { maxNewTokens: io.generate.max_new_tokens })[0],
        ).toEqual(io.generate.output_ids);
      model.dispose();
    },
  );

  it.each(['qwen3', 'mistral', 'smollm3', 'phi3', 'gemma3'])(
    'matches transformers on the %s fixture: logits (1e-4), loss (1e-5), every gradient norm (1e-3), greedy tokens',
    (name) => {
      const dir = fileURLToPath(new URL(`../../shared/fixtures/hf/${name}/`, import.meta.url));
      const io = JSON.parse(readFileSync(join(dir, 'io.json'), 'utf8'));
      const { input_ids: ids, attention_mask: mask } = io.inputs as Record<string, number[][]>;
      const [B, T] = [ids.length, ids[0].length];
      const model = loadPretrainedSync(dir);
      const { value, grads } = valueAndGrads(model.params, () => {
        const logits = model.forward({
          inputIds: tf.tensor2d(ids, [B, T], 'int32'),
          attentionMask: tf.tensor2d(mask, [B, T], 'int32'),
        }).logits as tf.Tensor3D;
        expect(maxLogitDiff(readHfFixture(dir), logits.dataSync())).toBeLessThan(1e-4);
        return causalLmLoss(logits, ids).loss;
      });
      expect(Math.abs(value.dataSync()[0] - io.loss) / io.loss).toBeLessThan(1e-5);
      for (const [pname, want] of Object.entries(io.grad_norms as Record<string, number>)) {
        const n = tf.tidy(() => tf.norm(grads.get(pname)!).dataSync()[0]);
        expect(Math.abs(n - want) / Math.max(want, 1e-3), pname).toBeLessThan(1e-3);
      }
      tf.dispose([value, ...grads.values()]);
      const g = io.generate;
      expect(generate(model as never, [g.prompt_ids], { maxNewTokens: g.max_new_tokens })[0]).toEqual(g.output_ids[0]);
      model.dispose();
    },
  );

  it('matches transformers on the t5 fixture: logits at every position (1e-4), loss (1e-5), every gradient norm (1e-3), greedy tokens with and without the cache', () => {
    const dir = fileURLToPath(new URL('../../shared/fixtures/hf/t5/', import.meta.url));
    const f = readHfFixture(dir);
    const labels = f.io.inputs.labels as number[][];
    const model = loadPretrainedSync(dir) as T5ForConditionalGeneration;
    const [B, T] = [labels.length, labels[0].length];
    const { value, grads } = valueAndGrads(model.params, () => {
      const logits = model.forward({
        inputIds: tf.tensor2d(f.ids, undefined, 'int32'),
        attentionMask: tf.tensor2d(f.mask, undefined, 'int32'),
        decoderInputIds: tf.tensor2d(model.shiftRight(labels), undefined, 'int32'),
      }).logits;
      const got = Array.from(logits.dataSync());
      expect(got.reduce((m, v, i) => Math.max(m, Math.abs(v - f.logits[i])), 0)).toBeLessThan(1e-4);
      const { sum, count } = crossEntropySum(
        tf.reshape(logits, [B * T, -1]) as tf.Tensor2D,
        Int32Array.from(labels.flat()),
      );
      return tf.div(sum, count) as tf.Scalar;
    });
    expect(Math.abs(value.dataSync()[0] - f.io.loss) / f.io.loss).toBeLessThan(1e-5);
    for (const [pname, want] of Object.entries(f.io.grad_norms as Record<string, number>)) {
      expect(grads.get(pname), pname).toBeTruthy();
      const n = tf.tidy(() => tf.norm(grads.get(pname)!).dataSync()[0]);
      expect(Math.abs(n - want) / Math.max(want, 1e-6), pname).toBeLessThan(1e-3);
    }
    tf.dispose([value, ...grads.values()]);
    const g = f.io.generate.greedy as {
      prompt_ids: number[];
      output_ids: number[][];
      kwargs: { max_new_tokens: number };
    };
    for (const useCache of [true, false])
      expect(seq2seqGenerate(model, [g.prompt_ids], { maxNewTokens: g.kwargs.max_new_tokens, useCache })).toEqual(
        g.output_ids,
      );
    model.dispose();
  });

  it('leaks nothing over GPT-2 training steps: numDataIds flat, native count equal', () => {
    const model = Gpt2LMHeadModel.init(
      { ...GPT2_DEFAULTS, vocabSize: 50, nPositions: 8, nLayer: 1, nHead: 2, nEmbd: 16 },
      3,
    );
    const opt = new AdamW(model.params, { betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.1 });
    const ids = Int32Array.from({ length: 16 }, (_, i) => (i * 7) % 50);
    const counts: number[] = [];
    for (let s = 0; s < 6; s++) {
      const { value, grads } = valueAndGrads(model.params, () => {
        const { sum, count } = causalLmLossSum(
          model.forward({ inputIds: tf.tensor2d(ids, [2, 8], 'int32'), training: true, dropoutSeed: s }).logits,
          ids,
        );
        return tf.div(sum, count) as tf.Scalar;
      });
      const clipped = clipGradNorm(grads, 1);
      opt.apply(clipped.grads, 1e-2);
      tf.dispose([value, ...clipped.grads.values()]);
      counts.push(backend.numDataIds());
      expect(backend.nativeCount()).toBe(backend.numDataIds());
    }
    expect(new Set(counts.slice(1)).size).toBe(1);
    model.dispose();
    opt.dispose();
  });

  it('dequantizes NF4, FP4 and int8 weights on the device, bit-identical to the host, and saves the same quantized file', async () => {
    // odd sizes: n not a multiple of the block, of 8, or of 4 (the codes travel as int32 words)
    const dir = join(mkdtempSync(join(tmpdir(), 'anneal-q-torch-')), 'f32');
    mkdirSync(dir);
    await useBackend('cpu', {});
    const m = Gpt2LMHeadModel.init(
      {
        ...GPT2_DEFAULTS,
        vocabSize: 61,
        nPositions: 32,
        nEmbd: 36,
        nHead: 2,
        nLayer: 1,
        residPdrop: 0,
        embdPdrop: 0,
        attnPdrop: 0,
      },
      5,
    );
    await m.savePretrained(dir);
    m.dispose();
    const methods: QuantizationConfig[] = [
      { method: 'nf4', blockSize: 64, doubleQuant: true },
      { method: 'fp4', blockSize: 30, doubleQuant: false },
      { method: 'int8', blockSize: 64, doubleQuant: false },
    ];
    const weightsOn = async (backend: 'cpu' | 'torch', c: QuantizationConfig) => {
      await useBackend(backend, {});
      const { model } = await loadQuantized(dir, c);
      const out = join(mkdtempSync(join(tmpdir(), 'anneal-q-torch-')), 'q');
      await saveQuantized(model, out);
      dequantize(model);
      const w = new Map([...model.params].map(([k, p]) => [k, Array.from(p.dataSync())]));
      model.dispose();
      return { w, file: readFileSync(join(out, 'model.safetensors')) };
    };
    for (const c of methods) {
      const host = await weightsOn('cpu', c);
      const device = await weightsOn('torch', c);
      expect(tf.getBackend()).toBe('torch');
      expect(tf.getKernel(c.method === 'int8' ? 'AnnealDequantInt8' : 'AnnealDequant4bit', 'torch')).toBeDefined();
      for (const [k, v] of host.w) expect(device.w.get(k), `${c.method} ${k}`).toEqual(v);
      expect(Buffer.compare(device.file, host.file), c.method).toBe(0);
    }
  });

  it('reads checkpoint tensors from the file straight into torch memory (F32 fixture; F16, BF16 by hand-checked bits)', () => {
    expect(tf.getKernel('AnnealReadFile', 'torch')).toBeDefined();
    const file = fileURLToPath(new URL('../../shared/fixtures/hf/gpt2/model.safetensors', import.meta.url));
    const lazy = readSafetensors(file).tensors;
    const whole = parseSafetensors(readFileSync(file), file).tensors;
    const names = ['transformer.wte.weight', 'transformer.h.0.attn.c_attn.bias', 'transformer.ln_f.weight'];
    const { params } = weightsFromTensors(
      names.map((n) => [n, whole.get(n)!.shape]),
      [],
      new Map(names.map((n) => [n, lazy.get(n)!])),
      file,
    );
    for (const n of names) expect(Array.from(params.get(n)!.dataSync()), n).toEqual(Array.from(whole.get(n)!.data));
    // 1, -2, 0.5, 65504 as F16 (0x3c00 0xc000 0x3800 0x7bff); 1, -2, 0.5, 3 as BF16 (0x3f80 0xc000 0x3f00 0x4040)
    const header = Buffer.from(
      JSON.stringify({
        h: { dtype: 'F16', shape: [4], data_offsets: [0, 8] },
        b: { dtype: 'BF16', shape: [2, 2], data_offsets: [8, 16] },
      }),
    );
    const bytes = Buffer.alloc(8 + header.length + 16);
    bytes.writeBigUInt64LE(BigInt(header.length), 0);
    header.copy(bytes, 8);
    [0x3c00, 0xc000, 0x3800, 0x7bff, 0x3f80, 0xc000, 0x3f00, 0x4040].forEach((v, i) =>
      bytes.writeUInt16LE(v, 8 + header.length + 2 * i),
    );
    const half = join(mkdtempSync(join(tmpdir(), 'anneal-f16-')), 'h.safetensors');
    writeFileSync(half, bytes);
    const { params: p } = weightsFromTensors(
      [
        ['h', [4]],
        ['b', [2, 2]],
      ],
      [],
      readSafetensors(half).tensors,
      half,
    );
    expect(Array.from(p.get('h')!.dataSync())).toEqual([1, -2, 0.5, 65504]);
    expect(Array.from(p.get('b')!.dataSync())).toEqual([1, -2, 0.5, 3]);
  });
});
