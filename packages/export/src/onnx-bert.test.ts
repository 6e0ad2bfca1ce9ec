// A BERT sequence classifier (the shipped classifiers' and reward models' architecture)
// exported to ONNX: onnxruntime-node gives Anneal's logits on a padded batch, and
// transformers.js' text-classification pipeline, loading the folder from disk, gives the
// softmax of Anneal's logits under the model's own label names.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { env, pipeline, type TextClassificationPipeline } from '@huggingface/transformers';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { BERT_DEFAULTS, BertModelWithHead } from '@anneal/modeling';
import { trainWordPiece } from '@anneal/tokenizers';
import { exportOnnx, onnxModelBytes } from './index.js';
import { annealLogits, i64 } from './testing.js';

const MOBY = readFileSync(new URL('../../../datasets/moby-dick/moby-dick.txt', import.meta.url), 'utf8');

describe('a BERT classifier as ONNX', () => {
  it("gives Anneal's logits in onnxruntime and its scores in transformers.js text-classification", async () => {
    await useBackend('cpu');
    const tok = await trainWordPiece([MOBY.slice(0, 40_000)], { vocabSize: 500 });
    const config = {
      ...BERT_DEFAULTS,
      vocabSize: 500,
      hiddenSize: 32,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      intermediateSize: 64,
      maxPositionEmbeddings: 64,
      initializerRange: 0.3,
    };
    const model = BertModelWithHead.init(config, 'classifier', 4, ['negative', 'positive']);
    const texts = ['Call me Ishmael.', 'The whale swam away from the ship and the sea was calm.'];
    const enc = texts.map((t) => tok.encode(t));
    const T = Math.max(...enc.map((e) => e.length));
    const ids = enc.map((e) => [...e, ...new Array<number>(T - e.length).fill(tok.padTokenId ?? 0)]);
    const mask = enc.map((e) => [...e.map(() => 1), ...new Array<number>(T - e.length).fill(0)]);
    const ours = annealLogits(model, ids, mask);
    const session = await ort.InferenceSession.create(onnxModelBytes(model));
    expect(session.inputNames).toEqual(['input_ids', 'attention_mask', 'token_type_ids']);
    const r = await session.run({
      input_ids: i64(ids),
      attention_mask: i64(mask),
      token_type_ids: i64(ids.map((row) => row.map(() => 0))),
    });
    expect(r.logits.dims).toEqual([2, 2]);
    Array.from(r.logits.data as Float32Array).forEach((v, i) => expect(Math.abs(v - ours[i])).toBeLessThan(1e-4));
    expect(Math.abs(ours[0] - ours[1])).toBeGreaterThan(1e-3); // the two labels differ: a real check

    const root = mkdtempSync(join(tmpdir(), 'anneal-tjs-bert-'));
    exportOnnx(model, { outDir: join(root, 'bert-cls'), tokenizer: tok });
    env.allowRemoteModels = false;
    env.localModelPath = root;
    const classify = (await pipeline('text-classification', 'bert-cls', {
      dtype: 'fp32',
    })) as TextClassificationPipeline;
    for (let b = 0; b < texts.length; b++) {
      const got = (await classify(texts[b], { top_k: 2 })) as Array<{ label: string; score: number }>;
      const [l0, l1] = [ours[2 * b], ours[2 * b + 1]];
      const p1 = 1 / (1 + Math.exp(l0 - l1));
      const want = { negative: 1 - p1, positive: p1 };
      for (const g of got) expect(Math.abs(g.score - want[g.label as 'negative' | 'positive'])).toBeLessThan(1e-4);
      expect(got.map((g) => g.label).sort()).toEqual(['negative', 'positive']);
    }
    await classify.dispose();
    model.dispose();
  });
});
