// Phi-3 with longrope (the 128k-context checkpoints' rope_scaling) as ONNX: the graph picks the
// short factors while max(position_ids) + 1 fits original_max_position_embeddings and the long
// ones beyond, as transformers and Anneal do. onnxruntime-node gives Anneal's logits for a
// sequence within the original context, for one beyond it, and position by position through
// the cache as a generation crosses the boundary.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { initFromHfConfig, type LlamaForCausalLM } from '@anneal/modeling';
import { onnxModelBytes } from './index.js';
import { emptyPast, i64 } from './testing.js';

describe('Phi-3 longrope as ONNX', () => {
  it("gives Anneal's logits within and beyond the original context, and through the cache across it", async () => {
    await useBackend('cpu');
    const phi3 = JSON.parse(
      readFileSync(fileURLToPath(new URL('../../../../shared/fixtures/hf/phi3/config.json', import.meta.url)), 'utf8'),
    );
    const R = 8; // rotary dimensions: head 16 × partial_rotary_factor 0.5 -> 4 frequencies
    const model = initFromHfConfig(
      {
        ...phi3,
        original_max_position_embeddings: 12,
        max_position_embeddings: 64,
        rope_scaling: {
          rope_type: 'longrope',
          short_factor: [1, 1.3, 1.9, 2.5].slice(0, R / 2),
          long_factor: [3, 7, 19, 40].slice(0, R / 2),
        },
        initializer_range: 0.2,
      },
      8,
    ) as LlamaForCausalLM;
    const c = model.config;
    const session = await ort.InferenceSession.create(onnxModelBytes(model));
    const KV = c.numKeyValueHeads;
    const D = c.hiddenSize / c.numAttentionHeads;
    const empty = (B: number) => emptyPast(c.numHiddenLayers, B, KV, D);
    const anneal = (ids: number[][]) =>
      tf.tidy(() => Array.from(model.forward({ inputIds: tf.tensor2d(ids, undefined, 'int32') }).logits.dataSync()));
    const ort1 = async (ids: number[][]) =>
      Array.from(
        (
          await session.run({
            input_ids: i64(ids),
            attention_mask: i64(ids.map((r) => r.map(() => 1))),
            position_ids: i64(ids.map((r) => r.map((_, t) => t))),
            ...empty(ids.length),
          })
        ).logits.data as Float32Array,
      );
    const close = (a: number[], b: number[]) => {
      expect(a.length).toBe(b.length);
      a.forEach((v, i) => expect(Math.abs(v - b[i]), `logit ${i}`).toBeLessThan(1e-4));
    };
    const ids = Array.from({ length: 20 }, (_, t) => 3 + ((t * 37) % 900));
    const short = [ids.slice(0, 10)]; // within the original 12
    const long = [ids]; // 20: beyond it
    close(await ort1(short), anneal(short));
    close(await ort1(long), anneal(long));
    // the factors matter: the first 10 positions of the long sequence differ from the short run's
    const [s, l] = [anneal(short), anneal(long)];
    expect(Math.max(...s.map((v, i) => Math.abs(v - l[i])))).toBeGreaterThan(1e-3);

    // one token at a time through the cache, from 8 to 16 positions: Anneal's logits at each length
    let past = empty(1);
    const prompt = ids.slice(0, 8);
    let r = await session.run({
      input_ids: i64([prompt]),
      attention_mask: i64([prompt.map(() => 1)]),
      position_ids: i64([prompt.map((_, t) => t)]),
      ...past,
    });
    for (let t = 8; t < 16; t++) {
      past = Object.fromEntries(Object.keys(past).map((k) => [k, r[k.replace('past_key_values', 'present')]]));
      r = await session.run({
        input_ids: i64([[ids[t]]]),
        attention_mask: i64([ids.slice(0, t + 1).map(() => 1)]),
        position_ids: i64([[t]]),
        ...past,
      });
      // Anneal through its own cache: the prompt, then one token at a time up to position t
      const want = tf.tidy(() => {
        const ids2 = (rows: number[][]) => tf.tensor2d(rows, undefined, 'int32');
        let out = model.forward({ inputIds: ids2([prompt]), useCache: true });
        for (let u = 8; u <= t; u++)
          out = model.forward({ inputIds: ids2([[ids[u]]]), pastKeyValues: out.pastKeyValues, useCache: true });
        return Array.from(out.logits.dataSync()).slice(-c.vocabSize);
      });
      close(Array.from(r.logits.data as Float32Array), want);
    }
    await session.release();
    model.dispose();
  });
});
