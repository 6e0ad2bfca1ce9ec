// The weight-stored variants and opsets of an export: float16 weights (model_fp16.onnx) and
// int8 weight-only (model_quantized.onnx, per-row scales) run in onnxruntime close to the
// float32 graph at half and about a quarter of its size, and transformers.js loads them by
// its dtype names (fp16, q8) and decodes what onnxruntime decodes; opsets 18-21 (ReduceMean's
// axes as an input) give the opset-17 logits; the float16 conversion matches IEEE 754 by hand.
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, pipeline, type TextGenerationPipeline } from '@huggingface/transformers';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, loadPretrained, readHfFixture } from '@anneal/modeling';
import { trainByteLevelBpe } from '@anneal/tokenizers';
import { exportOnnx, onnxModelBytes, quantizeRows, toFloat16 } from './index.js';
import { i64 } from './testing.js';

const MOBY = readFileSync(new URL('../../../datasets/moby-dick/moby-dick.txt', import.meta.url), 'utf8');
const fixture = (name: string) => fileURLToPath(new URL(`../../../../shared/fixtures/hf/${name}`, import.meta.url));

/** Logits [B·T·V] of a decoder graph in one pass (no past). */
async function logitsOf(bytes: Uint8Array, ids: number[][], mask: number[][], layers: number, kv: number, d: number) {
  const session = await ort.InferenceSession.create(bytes);
  const feed: Record<string, ort.Tensor> = {
    input_ids: i64(ids),
    attention_mask: i64(mask),
    position_ids: i64(ids.map((r) => r.map((_, t) => t))),
  };
  for (let l = 0; l < layers; l++)
    for (const n of ['key', 'value'])
      feed[`past_key_values.${l}.${n}`] = new ort.Tensor('float32', new Float32Array(0), [ids.length, kv, 0, d]);
  return (await session.run(feed)).logits.data as Float32Array;
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe('ONNX weight variants and opsets', () => {
  it('converts to float16 as IEEE 754 does (hand-checked bits) and quantizes rows symmetrically', () => {
    const x = Float32Array.from([
      1,
      -2,
      65504,
      65520,
      1 / 3,
      6.103515625e-5,
      5.960464477539063e-8,
      0,
      -0,
      0.1,
      NaN,
      1e-9,
    ]);
    expect(Array.from(toFloat16(x), (h) => h.toString(16))).toEqual([
      '3c00',
      'c000',
      '7bff',
      '7c00',
      '3555',
      '400',
      '1',
      '0',
      '8000',
      '2e66',
      '7e00',
      '0',
    ]);
    const { q, scale } = quantizeRows(Float32Array.from([0.5, -1, 0.25, 0, 0, 0]), 2, 3);
    expect(Array.from(q)).toEqual([64, -127, 32, 0, 0, 0]);
    expect(Array.from(scale)).toEqual([Math.fround(1 / 127), 1]);
  });

  it('fp16 and int8 graphs stay close to float32 at half and about a quarter of the size; opsets 18-21 equal 17', async () => {
    await useBackend('cpu');
    const f = readHfFixture(fixture('llama'));
    const model = await loadPretrained(fixture('llama'));
    const shape = [2, 2, 16] as const; // layers, key/value heads, head dim
    const f32Bytes = onnxModelBytes(model);
    const f32 = await logitsOf(f32Bytes, f.ids, f.mask, ...shape);
    for (const opset of [18, 21])
      expect(maxDiff(await logitsOf(onnxModelBytes(model, { opset }), f.ids, f.mask, ...shape), f32)).toBeLessThan(
        1e-5,
      );
    const f16Bytes = onnxModelBytes(model, { weights: 'float16' });
    const q8Bytes = onnxModelBytes(model, { weights: 'int8' });
    const scale = maxAbs(f32);
    expect(maxDiff(await logitsOf(f16Bytes, f.ids, f.mask, ...shape), f32)).toBeLessThan(2e-3 * scale);
    expect(maxDiff(await logitsOf(q8Bytes, f.ids, f.mask, ...shape), f32)).toBeLessThan(5e-2 * scale);
    expect(f16Bytes.length / f32Bytes.length).toBeLessThan(0.52);
    expect(q8Bytes.length / f32Bytes.length).toBeLessThan(0.3);
    expect(() => onnxModelBytes(model, { opset: 16 })).toThrow(/opset 16 is not one Anneal writes/);
    model.dispose();
  });

  it('transformers.js loads model_fp16.onnx and model_quantized.onnx by dtype and decodes as onnxruntime does', async () => {
    await useBackend('cpu');
    const tok = await trainByteLevelBpe([MOBY.slice(0, 40_000)], {
      vocabSize: 400,
      specialTokens: ['<|endoftext|>'],
      eosToken: '<|endoftext|>',
    });
    const model = Gpt2LMHeadModel.init(
      { ...GPT2_DEFAULTS, vocabSize: 400, nPositions: 64, nLayer: 2, nHead: 2, nEmbd: 32, initializerRange: 0.4 },
      3,
    );
    const root = mkdtempSync(join(tmpdir(), 'anneal-variants-'));
    const r = exportOnnx(model, { outDir: join(root, 'gpt2'), tokenizer: tok, variants: ['fp16', 'int8'] });
    expect(r.files.filter((x) => x.startsWith('onnx/'))).toEqual([
      'onnx/model.onnx',
      'onnx/model_fp16.onnx',
      'onnx/model_quantized.onnx',
    ]);
    const size = (file: string) => statSync(join(root, 'gpt2', 'onnx', file)).size;
    expect(size('model_quantized.onnx')).toBeLessThan(size('model.onnx') / 2);
    env.allowRemoteModels = false;
    env.localModelPath = root;
    const prompt = 'Call me Ishmael.';
    const ids = tok.encode(prompt);
    for (const [dtype, file] of [
      ['fp16', 'model_fp16.onnx'],
      ['q8', 'model_quantized.onnx'],
    ] as const) {
      // greedy decoding of 12 tokens by hand through onnxruntime, without a cache
      const session = await ort.InferenceSession.create(join(root, 'gpt2', 'onnx', file));
      const seq = [...ids];
      for (let n = 0; n < 12; n++) {
        const feed: Record<string, ort.Tensor> = {
          input_ids: i64([seq]),
          attention_mask: i64([seq.map(() => 1)]),
          position_ids: i64([seq.map((_, t) => t)]),
        };
        for (let l = 0; l < 2; l++)
          for (const kv of ['key', 'value'])
            feed[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, 2, 0, 16]);
        const logits = (await session.run(feed)).logits.data as Float32Array;
        const last = logits.subarray((seq.length - 1) * 400, seq.length * 400);
        let best = 0;
        for (let v = 1; v < 400; v++) if (last[v] > last[best]) best = v;
        seq.push(best);
        if (best === tok.eosTokenId) break;
      }
      const gen = (await pipeline('text-generation', 'gpt2', { dtype })) as TextGenerationPipeline;
      const out = (await gen(prompt, { max_new_tokens: 12, do_sample: false })) as Array<{ generated_text: string }>;
      expect(out[0].generated_text, dtype).toBe(
        prompt + tok.decode(seq.slice(ids.length), { skipSpecialTokens: true }),
      );
      await gen.dispose();
    }
    model.dispose();
  });
});
