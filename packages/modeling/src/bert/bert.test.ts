// BERT against transformers: the bert_mlm fixture (BertForMaskedLM, token_type_ids, 7
// masked positions) and bert_seqcls (BertForSequenceClassification, 3 labels).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend, valueAndGrads } from '@anneal/core';
import {
  DISTILBERT_DEFAULTS,
  DistilBertModelWithHead,
  crossEntropySum,
  loadPretrainedSync,
  maxLogitDiff,
  readHfFixture,
  type BertModelWithHead,
} from '../index.js';

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

describe('masked-LM logits at chosen rows (logitsAt)', () => {
  it('BERT (the fixture) and DistilBERT: exactly the rows of the full logits', async () => {
    await useBackend('cpu');
    const bert = loadPretrainedSync(join(FIXTURES, 'bert_mlm')) as BertModelWithHead;
    const distil = DistilBertModelWithHead.init(
      {
        ...DISTILBERT_DEFAULTS,
        vocabSize: 60,
        dim: 32,
        nLayers: 2,
        nHeads: 4,
        hiddenDim: 64,
        maxPositionEmbeddings: 16,
      },
      'mlm',
      3,
    );
    const [B, T] = [2, 8];
    const ids = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => 5 + ((b * 7 + t * 3) % 50)));
    const at = [1, 4, 9, 15]; // flattened positions b·T + t
    for (const model of [bert, distil] as Array<{ forward: BertModelWithHead['forward'] }>)
      tf.tidy(() => {
        const inputIds = tf.tensor2d(ids, [B, T], 'int32');
        const full = model.forward({ inputIds }).logits as tf.Tensor3D; // [B, T, V]
        const V = full.shape[2];
        const want = tf.gather(tf.reshape(full, [B * T, V]), tf.tensor1d(at, 'int32')).dataSync();
        const rows = model.forward({ inputIds, logitsAt: tf.tensor1d(at, 'int32') }).logits;
        expect(rows.shape).toEqual([at.length, V]);
        const got = rows.dataSync();
        want.forEach((w, i) => expect(Math.abs(got[i] - w)).toBeLessThan(1e-5));
      });
    bert.dispose();
    distil.dispose();
  });
});
