// Weight-only int8 decoding. The fused int8 product (the torch backend's AnnealInt8Linear:
// codes widened in registers, a scale per row, AVX2 where the CPU has it) equals the product
// with the dequantized weight for the few-row products of decoding; a quantized model's
// few-row forward (fused) equals its many-row forward (dequantize, then one GEMM); gradients
// still flow to x; and on the fixtures int8 decoding keeps float32's greedy tokens' log-probs
// within a stated tolerance.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADDON_PATH, registerTorchBackend } from '@anneal/backend-torch';
import { hasAnnealKernel, runAnnealKernel, useBackend } from '@anneal/core';
import { generate, loadPretrainedSync, tinyGpt2, type CausalLm } from '@anneal/modeling';
import { quantize, quantizeInt8Rows } from '@anneal/quantization';

const FIXTURES = fileURLToPath(new URL('../../shared/fixtures/hf/', import.meta.url));
const d = existsSync(ADDON_PATH) || process.env.CI === 'true' ? describe : describe.skip;

d('weight-only int8 decoding (torch backend)', () => {
  beforeAll(async () => {
    registerTorchBackend({ warn: () => undefined });
    await useBackend('torch', {});
  });

  it('equals x (codes × scales)ᵀ for 1 to 9 rows and odd widths', () => {
    expect(hasAnnealKernel('AnnealInt8Linear')).toBe(true);
    for (const [n, rows, cols] of [
      [1, 37, 53],
      [3, 64, 768],
      [9, 17, 8],
    ]) {
      const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
      const q = quantizeInt8Rows(w, rows, cols);
      const padded = new Uint8Array(Math.ceil((rows * cols) / 4) * 4);
      padded.set(new Uint8Array(q.codes.buffer, q.codes.byteOffset, q.codes.byteLength));
      tf.tidy(() => {
        const x = tf.randomNormal([n, cols], 0, 1, 'float32', 7);
        const codes = tf.tensor1d(new Int32Array(padded.buffer), 'int32');
        const scales = tf.tensor1d(q.scales);
        const got = runAnnealKernel('AnnealInt8Linear', { x, codes, scales }, { rows, cols })[0].dataSync();
        const deq = tf.mul(tf.tensor2d(Float32Array.from(q.codes), [rows, cols]), tf.reshape(scales, [rows, 1]));
        const want = tf.matMul(x, deq, false, true).dataSync();
        let max = 0;
        let scale = 0;
        for (let i = 0; i < want.length; i++) {
          max = Math.max(max, Math.abs(got[i] - want[i]));
          scale = Math.max(scale, Math.abs(want[i]));
        }
        expect(max, `${n}x${rows}x${cols}`).toBeLessThan(1e-5 * scale);
      });
    }
  });

  it("a quantized GPT-2's one-row forward (fused) equals its batched forward (dequantized), and x gets gradients", () => {
    const m = tinyGpt2(3);
    quantize(m, { method: 'int8', blockSize: 64, doubleQuant: false });
    const ids = [[5, 9, 13, 22, 7, 1, 40, 2]];
    tf.tidy(() => {
      // 8 positions of one row: 8 rows of x per projection (fused); the same row 3 times: 24 rows (dequantized)
      const one = m.forward({ inputIds: tf.tensor2d(ids, undefined, 'int32') }).logits.dataSync();
      const many = m.forward({ inputIds: tf.tensor2d([ids[0], ids[0], ids[0]], undefined, 'int32') }).logits.dataSync();
      for (let i = 0; i < one.length; i++) expect(Math.abs(one[i] - many[i])).toBeLessThan(1e-4);
    });
    const layer = m.layers.get('transformer.h.0.attn.c_attn')! as unknown as { forward: (x: tf.Tensor) => tf.Tensor };
    const g = tf.tidy(() =>
      tf
        .grad((x: tf.Tensor) => tf.sum(layer.forward(x)))(tf.ones([2, 64]))
        .dataSync(),
    );
    expect(g.some((v) => v !== 0)).toBe(true);
    m.dispose();
  });

  it('keeps the log-probs of float32 greedy tokens within 0.02 nats on the gpt2 and llama fixtures', () => {
    for (const name of ['gpt2', 'llama']) {
      const f32 = loadPretrainedSync(join(FIXTURES, name)) as unknown as CausalLm & { dispose(): void };
      const prompt = [17, 250, 31, 999, 5];
      const [seq] = generate(f32, [prompt], { maxNewTokens: 20 });
      const logprobs = (m: CausalLm) =>
        tf.tidy(() => {
          const lp = tf
            .logSoftmax(m.forward({ inputIds: tf.tensor2d([seq], undefined, 'int32') }).logits)
            .arraySync() as number[][][];
          return seq.slice(prompt.length).map((t, i) => lp[0][prompt.length - 1 + i][t]);
        });
      const want = logprobs(f32);
      const q = loadPretrainedSync(join(FIXTURES, name));
      quantize(q, { method: 'int8', blockSize: 64, doubleQuant: false });
      const got = logprobs(q as unknown as CausalLm);
      const worst = Math.max(...got.map((v, i) => Math.abs(v - want[i])));
      expect(worst, name).toBeLessThan(0.02);
      expect(worst, name).toBeGreaterThan(0); // really quantized
      f32.dispose();
      q.dispose();
    }
  });
});
