// BERT against transformers: the bert_mlm fixture (BertForMaskedLM, token_type_ids, 7
// masked positions) and bert_seqcls (BertForSequenceClassification, 3 labels).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend, valueAndGrads } from '@anneal/core';
import { crossEntropySum, loadPretrainedSync, maxLogitDiff, readHfFixture, type BertModelWithHead } from '../index.js';

const FIXTURES = fileURLToPath(new URL('../../../../../shared/fixtures/hf/', import.meta.url));

describe.each(['bert_mlm', 'bert_seqcls'])('%s fixture vs transformers', (name) => {
  const dir = join(FIXTURES, name);
  const io = JSON.parse(readFileSync(join(dir, 'io.json'), 'utf8'));
  const { input_ids: ids, attention_mask: mask, token_type_ids: types } = io.inputs as Record<string, number[][]>;
  const [B, T] = [ids.length, ids[0].length];
  let model: BertModelWithHead;
  beforeAll(async () => {
    await useBackend('cpu');
    model = loadPretrainedSync(dir) as BertModelWithHead;
  });
  const run = () =>
    model.forward({
      inputIds: tf.tensor2d(ids, [B, T], 'int32'),
      attentionMask: tf.tensor2d(mask, [B, T], 'int32'),
      tokenTypeIds: tf.tensor2d(types, [B, T], 'int32'),
    }).logits;

  it('reproduces the logits (real positions) to 1e-4', () => {
    expect(
      maxLogitDiff(
        readHfFixture(dir),
        tf.tidy(() => run().dataSync()),
      ),
    ).toBeLessThan(1e-4);
  });

  it('reproduces the loss and every gradient norm', () => {
    const loss = () => {
      const logits = run();
      if (name === 'bert_seqcls')
        return tf.div(
          crossEntropySum(logits as tf.Tensor2D, Int32Array.from(io.inputs.labels as number[])).sum,
          B,
        ) as tf.Scalar;
      const labels = Int32Array.from((io.inputs.labels as number[][]).flat());
      const { sum, count } = crossEntropySum(tf.reshape(logits, [B * T, -1]) as tf.Tensor2D, labels);
      return tf.div(sum, count) as tf.Scalar;
    };
    const { value, grads } = valueAndGrads(model.params, loss);
    expect(Math.abs(value.dataSync()[0] - io.loss) / io.loss).toBeLessThan(1e-5);
    for (const [pname, want] of Object.entries(io.grad_norms as Record<string, number>)) {
      const g = grads.get(pname);
      const n = g ? tf.tidy(() => tf.norm(g).dataSync()[0]) : 0;
      expect(Math.abs(n - want) / Math.max(want, 1e-3), pname).toBeLessThan(1e-3);
    }
    tf.dispose([value, ...grads.values()]);
  });

  it('round-trips through savePretrained with the fixture tensor names', async () => {
    const out = mkdtempSync(join(tmpdir(), `anneal-${name}-`));
    await model.savePretrained(out);
    const names = (f: string) => {
      const b = readFileSync(f);
      return Object.keys(JSON.parse(b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString())).sort();
    };
    expect(names(join(out, 'model.safetensors'))).toEqual(names(join(dir, 'model.safetensors')));
    const back = loadPretrainedSync(out);
    for (const [n, p] of model.params)
      expect(Array.from(back.params.get(n)!.dataSync())).toEqual(Array.from(p.dataSync()));
  });
});
