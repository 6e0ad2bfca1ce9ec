// The seq2seq recipe with a tiny T5 (random init, a BPE with T5's special tokens) on the
// shipped sentiment questions (review -> " positive" / " negative"): pairs split at the loss
// mask with EOS on both sides, the loss falls, predict-with-generate metrics are logged (exact
// match, ROUGE, BLEU), LoRA on q and v trains the adapter only, a decoder-only checkpoint is
// refused by name.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { RunLogger, useBackend, validateConfig } from '@anneal/core';
import { T5ForConditionalGeneration, T5_DEFAULTS } from '@anneal/modeling';
import { trainByteLevelBpe } from '@anneal/tokenizers';
import { pairTexts, tinyGpt2Dir } from '@anneal/training';
import { Seq2SeqConfigSchema, runSeq2Seq, seq2seqBatch, seq2seqPairs } from '../index.js';

const DATA = fileURLToPath(new URL('../../../../datasets/sentiment/sft-prompt-completion.jsonl', import.meta.url));
let modelDir = '';
beforeAll(async () => {
  modelDir = mkdtempSync(join(tmpdir(), 'anneal-t5-tiny-'));
  const tok = await trainByteLevelBpe(pairTexts(300), {
    vocabSize: 400,
    specialTokens: ['<pad>', '</s>', '<unk>'],
    padToken: '<pad>',
    eosToken: '</s>',
    unkToken: '<unk>',
  });
  tok.save(modelDir);
  await useBackend('cpu');
  await T5ForConditionalGeneration.init(
    {
      ...T5_DEFAULTS,
      vocabSize: 400,
      dModel: 32,
      dKv: 8,
      dFf: 64,
      numLayers: 1,
      numDecoderLayers: 1,
      numHeads: 4,
      dropoutRate: 0,
    },
    1,
  ).savePretrained(modelDir);
});

const config = (o: Record<string, unknown> = {}, train: object = {}) =>
  validateConfig(Seq2SeqConfigSchema, {
    name: 's2s',
    recipe: 'seq2seq',
    backend: 'auto',
    outputDir: mkdtempSync(join(tmpdir(), 'anneal-s2s-')),
    model: { pretrained: modelDir },
    data: {
      train: DATA,
      format: 'prompt-completion',
      maxLength: 64,
      onBadRow: 'skip',
      evalFraction: 0.02,
      cacheDir: null,
    },
    generationMaxLength: 4,
    generationLimit: 16,
    optim: { lr: 3e-3, weightDecay: 0 },
    schedule: { kind: 'constant' },
    train: { batchSize: 16, maxSteps: 40, logEvery: 10, evalEvery: 40, evalBatches: 2, saveEvery: 40, ...train },
    ...o,
  });

describe('seq2seq recipe', () => {
  it('splits prompt-completion rows at the loss mask, EOS ending input and target; shifts the labels right', () => {
    const pairs = seq2seqPairs(
      [
        { kind: 'sequence', inputIds: Int32Array.from([5, 6, 7, 8, 1]), lossMask: Uint8Array.from([0, 0, 1, 1, 1]) },
        { kind: 'sequence', inputIds: Int32Array.from([9, 10]), lossMask: Uint8Array.from([0, 1]) },
      ],
      1,
    );
    expect(pairs).toEqual([
      { input: [5, 6, 1], target: [7, 8, 1] },
      { input: [9, 1], target: [10, 1] },
    ]);
    const b = seq2seqBatch(pairs, { pad: 0, decoderStart: 0 });
    expect(b.inputIds).toEqual([
      [5, 6, 1],
      [9, 1, 0],
    ]);
    expect(b.labels).toEqual([
      [7, 8, 1],
      [10, 1, -100],
    ]);
    expect(b.decoderInputIds).toEqual([
      [0, 7, 8],
      [0, 10, 1],
    ]);
  });

  it('learns: the loss falls; eval logs exact match, ROUGE and BLEU of generated targets', async () => {
    const losses: number[] = [];
    const res = await runSeq2Seq(config(), 's2s.yaml', { onStep: (_, l) => losses.push(l) });
    const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 3)) - 1);
    const keys = new Set(RunLogger.read(res.runDir).flatMap((m) => Object.keys(m)));
    for (const k of ['eval/loss', 'eval/exact_match', 'eval/rouge1', 'eval/rougeL', 'eval/bleu'])
      expect(keys).toContain(k);
    expect(res.eval!['eval/exact_match']).toBeGreaterThanOrEqual(0);
  });

  it('LoRA on q and v (evaluated by generating too); a decoder-only checkpoint is refused by name', async () => {
    const res = await runSeq2Seq(
      config({ peft: { r: 4, loraAlpha: 8, targetModules: ['q', 'v'] }, generationLimit: 4 }, { maxSteps: 2 }),
      's2s.yaml',
    );
    expect(res.step).toBe(2);
    expect(res.eval!['eval/rougeL']).toBeGreaterThanOrEqual(0);
    const gpt2 = await tinyGpt2Dir(pairTexts(50));
    const err = await runSeq2Seq(config({ model: { pretrained: gpt2 } }), 's2s.yaml').catch((e) => e);
    expect([err.field, err.message]).toEqual([
      'model.pretrained',
      `seq2seq needs an encoder–decoder (T5) checkpoint, and ${gpt2} is a gpt2`,
    ]);
  });
});
