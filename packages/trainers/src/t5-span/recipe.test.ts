// The span-corruption recipe: a tiny T5 from scratch (with a BPE tokenizer trained with T5's
// special tokens and sentinels) on a slice of Moby-Dick — the loss falls, eval/accuracy is
// logged, the tensor count stays flat, and a stopped run resumes exactly (cpu backend); the
// batch's inputs and targets give back each row.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { RunLogger, validateConfig } from '@anneal/core';
import { T5SpanConfigSchema, runT5Span, spanBatch } from '../index.js';

const dir = mkdtempSync(join(tmpdir(), 'anneal-t5span-'));
const corpus = join(dir, 'corpus.txt');
writeFileSync(
  corpus,
  readFileSync(new URL('../../../../datasets/moby-dick/moby-dick.txt', import.meta.url), 'utf8').slice(0, 15_000),
);
const config = (train: object = {}) =>
  validateConfig(T5SpanConfigSchema, {
    name: 't5span',
    recipe: 't5-span',
    seed: 3,
    backend: 'cpu',
    outputDir: mkdtempSync(join(dir, 'runs-')),
    tokenizer: { train: { vocabSize: 400 } },
    model: { config: { dModel: 32, dKv: 8, dFf: 64, numLayers: 2, numDecoderLayers: 2, numHeads: 4, dropoutRate: 0 } },
    data: {
      train: { path: corpus, textUnit: 'paragraph' },
      format: 'text',
      maxLength: 32,
      onBadRow: 'truncate',
      evalFraction: 0.1,
      cacheDir: null,
    },
    optim: { lr: 3e-3, weightDecay: 0 },
    schedule: { kind: 'constant' },
    train: { batchSize: 8, maxSteps: 40, logEvery: 10, evalEvery: 40, evalBatches: 1, saveEvery: 20, ...train },
  });

describe('T5 span-corruption recipe', () => {
  it('corrupts a batch so that inputs and targets give back each row', () => {
    const rows = [
      Int32Array.from({ length: 20 }, (_, i) => 200 + i),
      Int32Array.from({ length: 9 }, (_, i) => 300 + i),
    ];
    const b = spanBatch(
      rows,
      { seed: 1, noiseDensity: 0.15, meanNoiseSpanLength: 3, sentinel: (i) => 100 - i },
      { eos: 1, pad: 0, decoderStart: 0 },
    );
    b.inputIds.forEach((input, r) => {
      const target = b.labels[r].filter((t) => t !== -100);
      expect(target.at(-1)).toBe(1);
      const spans = new Map<number, number[]>();
      let cur = -1;
      for (const t of target.slice(0, -1))
        if (t <= 100) spans.set((cur = t), []);
        else spans.get(cur)!.push(t);
      const real = input.slice(
        0,
        b.attentionMask[r].reduce<number>((s, m) => s + m, 0),
      );
      expect(real.at(-1)).toBe(1); // EOS ends the encoder input
      expect(real.slice(0, -1).flatMap((t) => (t <= 100 ? spans.get(t)! : [t]))).toEqual(Array.from(rows[r]));
      expect(b.decoderInputIds[r][0]).toBe(0);
    });
  });

  it('trains a tiny T5 from scratch: the loss falls, flat tensors; resumes exactly', async () => {
    const losses: number[] = [];
    const counts = new Map<number, number>();
    const res = await runT5Span(config(), 't5.yaml', {
      onStep: (s, l) => (losses.push(l), counts.set(s, tf.memory().numTensors)),
    });
    const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
    expect(mean(losses.slice(-8))).toBeLessThan(mean(losses.slice(0, 4)) - 0.7);
    expect(counts.get(40)).toBe(counts.get(5));
    const keys = new Set(RunLogger.read(res.runDir).flatMap((m) => Object.keys(m)));
    for (const k of ['train/loss', 'eval/loss', 'eval/accuracy']) expect(keys).toContain(k);
    // stop at 20, resume to 40: the same losses as the straight run
    const again = config();
    let seen = 0;
    const stopped = await runT5Span(again, 't5.yaml', { onStep: () => seen++, shouldStop: () => seen >= 20 });
    const resumed: number[] = [];
    await runT5Span(again, 't5.yaml', { resume: stopped.runDir, onStep: (_, l) => resumed.push(l) });
    expect(resumed.length).toBe(20);
    resumed.forEach((l, i) =>
      expect(Math.abs(l - losses[20 + i]), `step ${21 + i}`).toBeLessThan(1e-6 * Math.max(1, l)),
    );
  });
});
