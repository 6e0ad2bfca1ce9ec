// The Llama family exported to ONNX and run by onnxruntime-node, on the shared fixtures that
// transformers made (Llama, Qwen3, Mistral with a sliding window, SmolLM3 with NoPE layers,
// Phi-3 with fused projections, Gemma 3): logits equal transformers' and Anneal's at every real
// position, in one pass and through past_key_values (the cache holds the key/value heads).
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { LlamaForCausalLM, headDimOf, loadPretrained, readHfFixture } from '@anneal/modeling';
import { onnxModelBytes } from './index.js';
import { i64 } from './testing.js';

describe.each(['llama', 'qwen3', 'mistral', 'smollm3', 'phi3', 'gemma3'])(
  '%s as ONNX, run by onnxruntime-node',
  (name) => {
    it("gives transformers' and Anneal's logits, in one pass and through the cache", async () => {
      await useBackend('cpu');
      const dir = fileURLToPath(new URL(`../../../../shared/fixtures/hf/${name}`, import.meta.url));
      const f = readHfFixture(dir);
      const model = (await loadPretrained(dir)) as LlamaForCausalLM;
      const c = model.config;
      const session = await ort.InferenceSession.create(onnxModelBytes(model));
      const [B, T, V] = [f.ids.length, f.ids[0].length, c.vocabSize];
      const KV = c.numKeyValueHeads;
      const D = headDimOf(c);
      const positions = f.ids.map((r) => r.map((_, t) => t)); // right-padded: transformers' default arange
      const past = (n: number) =>
        Object.fromEntries(
          Array.from({ length: c.numHiddenLayers }, (_, l) =>
            ['key', 'value'].map((kv) => [
              `past_key_values.${l}.${kv}`,
              new ort.Tensor('float32', new Float32Array(0), [n, KV, 0, D]),
            ]),
          ).flat(),
        );
      const full = await session.run({
        input_ids: i64(f.ids),
        attention_mask: i64(f.mask),
        position_ids: i64(positions),
        ...past(B),
      });
      const got = full.logits.data as Float32Array;
      const ours = tf.tidy(() =>
        model
          .forward({
            inputIds: tf.tensor2d(f.ids, undefined, 'int32'),
            attentionMask: tf.tensor2d(f.mask, undefined, 'int32'),
            positionIds: tf.tensor2d(positions, undefined, 'int32'),
          })
          .logits.dataSync(),
      );
      const split = 7;
      const first = await session.run({
        input_ids: i64(f.ids.map((r) => r.slice(0, split))),
        attention_mask: i64(f.mask.map((r) => r.slice(0, split))),
        position_ids: i64(positions.map((r) => r.slice(0, split))),
        ...past(B),
      });
      const cache = Object.fromEntries(
        Object.entries(first)
          .filter(([k]) => k.startsWith('present.'))
          .map(([k, v]) => [k.replace('present.', 'past_key_values.'), v]),
      );
      const rest = await session.run({
        input_ids: i64(f.ids.map((r) => r.slice(split))),
        attention_mask: i64(f.mask),
        position_ids: i64(positions.map((r) => r.slice(split))),
        ...cache,
      });
      const later = rest.logits.data as Float32Array;
      expect((rest['present.0.key'] as ort.Tensor).dims).toEqual([B, KV, T, D]);
      let [hf, anneal, cached] = [0, 0, 0];
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++) {
          if (!f.mask[b][t]) continue;
          for (let v = 0; v < V; v++) {
            const i = (b * T + t) * V + v;
            hf = Math.max(hf, Math.abs(got[i] - f.logits[i]));
            anneal = Math.max(anneal, Math.abs(got[i] - ours[i]));
            if (t >= split) cached = Math.max(cached, Math.abs(got[i] - later[(b * (T - split) + t - split) * V + v]));
          }
        }
      expect(hf).toBeLessThan(1e-4);
      expect(anneal).toBeLessThan(1e-4);
      expect(cached).toBeLessThan(1e-4);
      model.dispose();
    });
  },
);
