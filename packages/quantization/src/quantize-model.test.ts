// A quantized model computes what its float32 original does up to the code book's error and
// holds no float32 copy of its projections (QLoRA training: test/qlora.test.ts).
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, useBackend } from '@anneal/core';
import { tinyGpt2, tinyLlama } from '@anneal/modeling';
import { quantize } from './index.js';

const gpt2 = () => tinyGpt2(3);
const llama = () => tinyLlama(3);
const IDS = Int32Array.from({ length: 2 * 12 }, (_, i) => (i * 17 + 5) % 61);
const logits = (m: { forward: (a: { inputIds: tf.Tensor2D }) => { logits: tf.Tensor } }) =>
  tf.tidy(() => Float32Array.from(m.forward({ inputIds: tf.tensor2d(IDS, [2, 12], 'int32') }).logits.dataSync()));
const relErr = (got: Float32Array, want: Float32Array) =>
  Math.sqrt(got.reduce((s, v, i) => s + (v - want[i]) ** 2, 0) / want.reduce((s, v) => s + v * v, 0));

describe('quantize(model)', () => {
  beforeAll(async () => {
    await useBackend('cpu', {});
  });

  it('nf4, fp4 and int8 forward passes stay near float32 (int8 nearest), for Conv1D (GPT-2) and Linear (Llama) layouts', () => {
    for (const make of [gpt2, llama]) {
      const want = logits(make());
      const errs: Record<string, number> = {};
      for (const method of ['nf4', 'fp4', 'int8'] as const) {
        const m = make();
        const r = quantize(m, { method, blockSize: 64, doubleQuant: true });
        expect(r.layers).toBe(make === gpt2 ? 8 : 14); // gpt2: c_attn, c_proj, c_fc, mlp c_proj; llama: q, k, v, o, gate, up, down per layer
        errs[method] = relErr(logits(m), want);
        m.dispose();
      }
      expect(errs.int8).toBeLessThan(0.01);
      expect(errs.nf4).toBeLessThan(0.15);
      expect(errs.int8).toBeLessThan(errs.nf4);
      expect(errs.nf4).toBeGreaterThan(0); // really quantized
    }
  });

  it('frees the float32 projections and stores nf4 + double quantization at under 0.52 bytes per parameter', async () => {
    const m = gpt2();
    const before = tf.memory().numBytes;
    const r = quantize(m, { method: 'nf4', blockSize: 64, doubleQuant: true });
    expect(before - tf.memory().numBytes).toBe(r.float32Bytes);
    expect(r.storedBytes / r.parameters).toBeLessThan(0.52);
    await expect(m.savePretrained('/nonexistent')).rejects.toThrow(ConfigError);
    m.dispose();
  });
});
