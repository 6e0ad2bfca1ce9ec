// Sequence classification on a decoder: the gpt2_seqcls fixture (GPT2ForSequenceClassification,
// regression with one label, pooled at the last non-pad token) and save/load round trips.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend, valueAndGrads } from '@anneal/core';
import {
  DISTILBERT_DEFAULTS,
  DecoderForSequenceClassification,
  DistilBertModelWithHead,
  LlamaForCausalLM,
  classifierFrom,
  loadPretrainedSync,
} from './index.js';

const FIXTURES = fileURLToPath(new URL('../../../../shared/fixtures/hf/', import.meta.url));

describe('GPT2ForSequenceClassification fixture', () => {
  const dir = join(FIXTURES, 'gpt2_seqcls');
  const io = JSON.parse(readFileSync(join(dir, 'io.json'), 'utf8'));
  const ids = io.inputs.input_ids as number[][];
  const mask = io.inputs.attention_mask as number[][];
  let model: DecoderForSequenceClassification;
  beforeAll(async () => {
    await useBackend('cpu');
    model = loadPretrainedSync(dir) as DecoderForSequenceClassification;
  });

  const run = () =>
    model.forward({ inputIds: tf.tensor2d(ids, [2, 16], 'int32'), attentionMask: tf.tensor2d(mask, [2, 16], 'int32') })
      .logits;

  it('pools at the last real token (15 and 11) and reproduces the logits', () => {
    expect(model.lastTokenIndex(ids)).toEqual([15, 11]);
    const got = tf.tidy(() => run().arraySync()) as number[][];
    got.forEach((row, b) => row.forEach((v, j) => expect(Math.abs(v - io.logits.values[b][j])).toBeLessThan(1e-4)));
  });

  it('reproduces the MSE loss and every gradient norm', () => {
    const labels = tf.tensor1d(io.inputs.labels);
    const { value, grads } = valueAndGrads(
      model.params,
      () => tf.mean(tf.square(tf.sub(tf.reshape(run(), [2]), labels))) as tf.Scalar,
    );
    expect(Math.abs(value.dataSync()[0] - io.loss) / io.loss).toBeLessThan(1e-5);
    for (const [name, want] of Object.entries(io.grad_norms as Record<string, number>)) {
      const n = tf.tidy(() => tf.norm(grads.get(name)!).dataSync()[0]);
      expect(Math.abs(n - want) / Math.max(want, 1e-3), name).toBeLessThan(1e-3);
    }
    tf.dispose([value, labels, ...grads.values()]);
  });

  it('round-trips through savePretrained with the same config and tensors', async () => {
    const out = mkdtempSync(join(tmpdir(), 'anneal-seqcls-'));
    await model.savePretrained(out);
    const back = loadPretrainedSync(out) as DecoderForSequenceClassification;
    expect(back.hfConfig()).toMatchObject({
      architectures: ['GPT2ForSequenceClassification'],
      pad_token_id: 0,
      id2label: { 0: 'LABEL_0' },
    });
    for (const [n, p] of model.params)
      expect(Array.from(back.params.get(n)!.dataSync())).toEqual(Array.from(p.dataSync()));
  });
});

describe('a score head on a Llama trunk', () => {
  it('starts from a causal LM, drops its LM head, and scores every token (value head) or the last one', async () => {
    await useBackend('cpu');
    const lm = LlamaForCausalLM.fromPretrained(join(FIXTURES, 'llama'));
    const clf = DecoderForSequenceClassification.init(
      { arch: 'llama', config: lm.config },
      { numLabels: 1, padTokenId: 0 },
      3,
      lm,
    );
    expect(clf.params.has('lm_head.weight')).toBe(false);
    expect(clf.layers.has('lm_head')).toBe(false);
    const ids = [
      [5, 6, 7, 0],
      [8, 9, 10, 11],
    ];
    const scores = tf.tidy(() =>
      clf.tokenScores({ inputIds: tf.tensor2d(ids, [2, 4], 'int32') }).arraySync(),
    ) as number[][][];
    const pooled = tf.tidy(() =>
      clf.forward({ inputIds: tf.tensor2d(ids, [2, 4], 'int32') }).logits.arraySync(),
    ) as number[][];
    expect(pooled[0][0]).toBeCloseTo(scores[0][2][0], 6);
    expect(pooled[1][0]).toBeCloseTo(scores[1][3][0], 6);
    const out = mkdtempSync(join(tmpdir(), 'anneal-llama-cls-'));
    await clf.savePretrained(out);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).architectures).toEqual([
      'LlamaForSequenceClassification',
    ]);
    expect((loadPretrainedSync(out) as DecoderForSequenceClassification).params.size).toBe(clf.params.size);
  });
});

describe('classifierFrom', () => {
  it('puts a fresh head on a DistilBERT MLM: encoder weights copied, head new, one score per sequence', async () => {
    await useBackend('cpu');
    const mlm = DistilBertModelWithHead.init(
      {
        ...DISTILBERT_DEFAULTS,
        vocabSize: 50,
        dim: 16,
        hiddenDim: 32,
        nLayers: 1,
        nHeads: 2,
        maxPositionEmbeddings: 16,
      },
      'mlm',
      1,
    );
    const rm = classifierFrom(mlm, ['LABEL_0'], 0, 2);
    expect(rm.hfConfig().architectures).toEqual(['DistilBertForSequenceClassification']);
    for (const [name, p] of mlm.params) {
      if (rm.params.has(name))
        expect(Array.from(rm.params.get(name)!.dataSync()), name).toEqual(Array.from(p.dataSync()));
    }
    expect(rm.params.get('classifier.weight')!.shape).toEqual([1, 16]);
    expect(
      rm.forward({
        inputIds: tf.tensor2d(
          [
            [1, 2, 3],
            [4, 5, 0],
          ],
          [2, 3],
          'int32',
        ),
        attentionMask: tf.tensor2d(
          [
            [1, 1, 1],
            [1, 1, 0],
          ],
          [2, 3],
          'int32',
        ),
      }).logits.shape,
    ).toEqual([2, 1]);
  });
});
