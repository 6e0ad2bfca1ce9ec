// Masked LMs and DistilBERT as ONNX: the bert_mlm fixture's logits (transformers') from
// onnxruntime-node; DistilBERT's masked LM and classifier give Anneal's logits; and
// transformers.js' fill-mask pipeline, loading an exported BERT masked LM from disk, scores
// the [MASK] position as the softmax of Anneal's logits, and its text-classification pipeline
// reads an exported DistilBERT classifier.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, pipeline, type FillMaskPipeline, type TextClassificationPipeline } from '@huggingface/transformers';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import {
  BERT_DEFAULTS,
  BertModelWithHead,
  DISTILBERT_DEFAULTS,
  DistilBertModelWithHead,
  loadPretrained,
  maxLogitDiff,
  readHfFixture,
} from '@anneal/modeling';
import { trainWordPiece } from '@anneal/tokenizers';
import { exportOnnx, onnxModelBytes } from './index.js';
import { annealLogits, i64, initializerNames } from './testing.js';

const MOBY = readFileSync(new URL('../../../datasets/moby-dick/moby-dick.txt', import.meta.url), 'utf8');
/** Every parameter moved off its initial value (biases start at 0, LayerNorm weights at 1: a graph that left them out would pass). */
const jitter = <M extends { params: Map<string, tf.Variable> }>(m: M, seed: number): M => {
  [...m.params.values()].forEach((p, i) =>
    p.assign(tf.tidy(() => tf.add(p, tf.randomUniform(p.shape, -0.3, 0.3, 'float32', seed + i)))),
  );
  return m;
};
const softmax = (x: number[]) => {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

describe('encoders as ONNX', () => {
  it("BertForMaskedLM: the bert_mlm fixture's logits from onnxruntime", async () => {
    await useBackend('cpu');
    const dir = fileURLToPath(new URL('../../../../shared/fixtures/hf/bert_mlm', import.meta.url));
    const io = JSON.parse(readFileSync(join(dir, 'io.json'), 'utf8'));
    const { input_ids: ids, attention_mask: mask, token_type_ids: types } = io.inputs as Record<string, number[][]>;
    const model = await loadPretrained(dir);
    const bytes = onnxModelBytes(model);
    const names = initializerNames(bytes);
    expect(new Set(names).size).toBe(names.length); // the tied decoder reuses the embedding's initializer
    const session = await ort.InferenceSession.create(bytes);
    expect(session.inputNames).toEqual(['input_ids', 'attention_mask', 'token_type_ids']);
    const r = await session.run({ input_ids: i64(ids), attention_mask: i64(mask), token_type_ids: i64(types) });
    expect(r.logits.dims).toEqual([ids.length, ids[0].length, (model.hfConfig().vocab_size as number) ?? 0]);
    expect(maxLogitDiff(readHfFixture(dir), r.logits.data as Float32Array)).toBeLessThan(1e-4);
    await session.release();
    model.dispose();
  });

  it.each(['mlm', 'classifier'] as const)("DistilBERT (%s): Anneal's logits from onnxruntime", async (head) => {
    await useBackend('cpu');
    const config = { ...DISTILBERT_DEFAULTS, vocabSize: 300, dim: 32, nLayers: 2, nHeads: 4, hiddenDim: 64 };
    const model = jitter(
      DistilBertModelWithHead.init({ ...config, initializerRange: 0.3 }, head, 5, ['a', 'b', 'c']),
      50,
    );
    const ids = [
      [2, 17, 45, 99, 3, 0],
      [2, 250, 8, 61, 77, 3],
    ];
    const mask = ids.map((r) => r.map((v, t) => (t < 5 || v !== 0 ? 1 : 0)));
    const ours = annealLogits(model, ids, mask);
    const session = await ort.InferenceSession.create(onnxModelBytes(model));
    expect(session.inputNames).toEqual(['input_ids', 'attention_mask']);
    const r = await session.run({ input_ids: i64(ids), attention_mask: i64(mask) });
    expect(r.logits.dims).toEqual(head === 'mlm' ? [2, 6, 300] : [2, 3]);
    const got = Array.from(r.logits.data as Float32Array);
    // (the padded position of row 0 is compared too: both compute it the same way)
    got.forEach((v, i) => expect(Math.abs(v - ours[i]), `logit ${i}`).toBeLessThan(1e-4));
    expect(Math.max(...ours) - Math.min(...ours)).toBeGreaterThan(1e-2); // not a constant output
    await session.release();
    model.dispose();
  });

  it("transformers.js: fill-mask scores Anneal's softmax; text-classification reads DistilBERT", async () => {
    await useBackend('cpu');
    const tok = await trainWordPiece([MOBY.slice(0, 40_000)], { vocabSize: 500 });
    const bert = jitter(
      BertModelWithHead.init(
        {
          ...BERT_DEFAULTS,
          vocabSize: 500,
          hiddenSize: 32,
          numHiddenLayers: 2,
          numAttentionHeads: 4,
          intermediateSize: 64,
          maxPositionEmbeddings: 64,
          initializerRange: 0.5,
        },
        'mlm',
        7,
      ),
      70,
    );
    const text = 'Call me [MASK]. Some years ago';
    const ids = tok.encode(text);
    const at = ids.indexOf(tok.tokenToId('[MASK]')!);
    expect(at).toBeGreaterThan(0);
    const row = tf.tidy(() =>
      Array.from(
        (bert.forward({ inputIds: tf.tensor2d([ids], undefined, 'int32') }).logits as tf.Tensor3D)
          .slice([0, at, 0], [1, 1, 500])
          .dataSync(),
      ),
    );
    const probs = softmax(row);
    const root = mkdtempSync(join(tmpdir(), 'anneal-tjs-enc-'));
    exportOnnx(bert, { outDir: join(root, 'bert-mlm'), tokenizer: tok });
    env.allowRemoteModels = false;
    env.localModelPath = root;
    const fill = (await pipeline('fill-mask', 'bert-mlm', { dtype: 'fp32' })) as FillMaskPipeline;
    const got = (await fill(text, { top_k: 5 })) as Array<{ token: number; score: number }>;
    const want = probs
      .map((p, id) => ({ id, p }))
      .sort((a, b) => b.p - a.p)
      .slice(0, 5);
    expect(got.map((g) => g.token)).toEqual(want.map((w) => w.id));
    got.forEach((g, k) => expect(Math.abs(g.score - want[k].p)).toBeLessThan(1e-4));
    await fill.dispose();

    const distil = jitter(
      DistilBertModelWithHead.init(
        {
          ...DISTILBERT_DEFAULTS,
          vocabSize: 500,
          dim: 32,
          nLayers: 2,
          nHeads: 4,
          hiddenDim: 64,
          initializerRange: 0.5,
        },
        'classifier',
        9,
        ['negative', 'positive'],
      ),
      90,
    );
    exportOnnx(distil, { outDir: join(root, 'distil-cls'), tokenizer: tok });
    const classify = (await pipeline('text-classification', 'distil-cls', {
      dtype: 'fp32',
    })) as TextClassificationPipeline;
    const review = 'The whale swam away from the ship.';
    const l = tf.tidy(() =>
      Array.from(distil.forward({ inputIds: tf.tensor2d([tok.encode(review)], undefined, 'int32') }).logits.dataSync()),
    );
    const p = softmax(l);
    const scores = (await classify(review, { top_k: 2 })) as Array<{ label: string; score: number }>;
    for (const s of scores) expect(Math.abs(s.score - p[s.label === 'negative' ? 0 : 1])).toBeLessThan(1e-4);
    expect(scores.map((s) => s.label).sort()).toEqual(['negative', 'positive']);
    await classify.dispose();
    bert.dispose();
    distil.dispose();
  });
});
