// runEval: each task's numbers equal the metric functions applied to the model's own
// outputs; a task the model cannot do is a clear error; results land in eval.json and
// TensorBoard.
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, useBackend } from '@anneal/core';
import { DecoderForSequenceClassification, GPT2_DEFAULTS, Gpt2LMHeadModel, generate } from '@anneal/modeling';
import {
  EvalConfigSchema,
  accuracy,
  perplexity,
  rouge,
  runEval,
  writeEvalResults,
  type EvalTokenizer,
} from './index.js';

const tok: EvalTokenizer = {
  encode: (t) => Array.from(t, (c) => c.charCodeAt(0) % 64),
  decode: (ids) => String.fromCharCode(...ids.map((i) => 64 + i)),
  eosTokenId: undefined,
  padTokenId: 0,
};
const config = {
  ...GPT2_DEFAULTS,
  vocabSize: 64,
  nPositions: 64,
  nLayer: 1,
  nHead: 2,
  nEmbd: 16,
  initializerRange: 0.3,
};

describe('runEval', () => {
  const dir = mkdtempSync(join(tmpdir(), 'anneal-eval-'));
  const write = (name: string, rows: object[]) => (
    writeFileSync(join(dir, name), rows.map((r) => JSON.stringify(r)).join('\n') + '\n'),
    join(dir, name)
  );
  let lm: Gpt2LMHeadModel;
  beforeAll(async () => {
    await useBackend('cpu', {});
    lm = Gpt2LMHeadModel.init(config, 1);
  });

  it('perplexity and generation metrics equal the metric functions on the model outputs', async () => {
    const texts = write('texts.jsonl', [{ text: 'abc abc abc' }, { text: 'hello world' }]);
    const pc = write('pc.jsonl', [
      { prompt: 'Q1 ', completion: 'yes' },
      { prompt: 'Q2 ', completion: 'no' },
    ]);
    const cfg = EvalConfigSchema.parse({
      model: 'x',
      tasks: {
        perplexity: { data: texts, stride: 4 },
        generation: { data: pc, maxNewTokens: 3, metrics: ['rouge', 'exact_match'] },
      },
    });
    const r = await runEval(cfg, lm, tok);
    expect(r['perplexity/perplexity']).toBeCloseTo(
      perplexity(lm, tok, ['abc abc abc', 'hello world'], { stride: 4 }).perplexity,
      8,
    );
    const preds = ['Q1 ', 'Q2 '].map((p) => {
      const ids = tok.encode(p);
      return tok.decode(generate(lm, [ids], { maxNewTokens: 3 })[0].slice(ids.length)).trim();
    });
    expect(r['generation/rouge1']).toBeCloseTo(rouge(preds, ['yes', 'no']).rouge1.fmeasure, 12);
    expect(r['generation/exact_match']).toBe(0);
  });

  it('classification and reward scores come from a sequence-classification model', async () => {
    const clf = DecoderForSequenceClassification.init(
      { arch: 'gpt2', config },
      { numLabels: 2, padTokenId: 0, labels: ['neg', 'pos'] },
      2,
    );
    const cls = write('cls.jsonl', [
      { text: 'good', label: 'pos' },
      { text: 'bad', label: 'neg' },
      { text: 'fine', label: 'pos' },
    ]);
    const cfg = EvalConfigSchema.parse({ model: 'x', tasks: { classification: { data: cls } } });
    const r = await runEval(cfg, clf, tok);
    const preds = ['good', 'bad', 'fine'].map((t) => {
      const s = tf.tidy(() =>
        Array.from(clf.forward({ inputIds: tf.tensor2d([tok.encode(t)], [1, t.length], 'int32') }).logits.dataSync()),
      );
      return s.indexOf(Math.max(...s));
    });
    expect(r['classification/accuracy']).toBe(accuracy(preds, [1, 0, 1]));
    const rm = DecoderForSequenceClassification.init({ arch: 'gpt2', config }, { numLabels: 1, padTokenId: 0 }, 3);
    const pref = write('pref.jsonl', [{ prompt: 'P ', chosen: 'aa', rejected: 'bb' }]);
    const rr = await runEval(EvalConfigSchema.parse({ model: 'x', tasks: { reward: { data: pref } } }), rm, tok);
    const score = (s: string) =>
      tf.tidy(
        () => rm.forward({ inputIds: tf.tensor2d([tok.encode(s)], [1, s.length], 'int32') }).logits.dataSync()[0],
      );
    expect(rr['reward/margin']).toBeCloseTo(score('P aa') - score('P bb'), 6);
    await expect(
      runEval(EvalConfigSchema.parse({ model: 'x', tasks: { perplexity: { data: cls } } }), clf, tok),
    ).rejects.toThrow(ConfigError);
    await expect(runEval(cfg, lm, tok)).rejects.toThrow(/needs a sequence-classification model/);
  });

  it('writes eval.json and TensorBoard scalars', () => {
    const out = mkdtempSync(join(tmpdir(), 'anneal-evalout-'));
    const file = writeEvalResults(out, { 'perplexity/perplexity': 12.5 }, { model: 'm' }, 7);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({
      model: 'm',
      results: { 'perplexity/perplexity': 12.5 },
    });
    expect(readdirSync(out).some((f) => f.startsWith('events.out.tfevents'))).toBe(true);
    expect(readFileSync(join(out, 'metrics.jsonl'), 'utf8')).toContain('"eval/perplexity/perplexity":12.5');
    expect(existsSync(join(out, 'eval.json'))).toBe(true);
  });
});
