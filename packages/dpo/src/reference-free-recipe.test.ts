// ORPO and CPO/SimPO as recipes on the shipped sentiment pairs with a tiny GPT-2: no reference
// model is loaded, the logged loss is the objective TRL computes from its own logged parts
// (ORPO: nll_loss − β·log_odds_ratio; SimPO and CPO bounded by Jensen from their margins), the chosen rewards
// pull ahead, TRL's metric names are logged, and the tensor count stays flat.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { RunLogger, validateConfig } from '@anneal/core';
import { SENTIMENT_PAIRS, pairTexts, silentReporter, tinyGpt2Dir } from '@anneal/training';
import { CpoConfigSchema, OrpoConfigSchema, runCpo, runOrpo } from './index.js';

let modelDir = '';
beforeAll(async () => {
  modelDir = await tinyGpt2Dir(pairTexts(300), { vocabSize: 400, nLayer: 1, nEmbd: 32 });
});

const common = (train: object = {}) => ({
  backend: 'auto',
  outputDir: mkdtempSync(join(tmpdir(), 'anneal-rf-')),
  model: { pretrained: modelDir },
  data: {
    train: SENTIMENT_PAIRS,
    format: 'preference',
    maxLength: 48,
    maxPromptLength: 16,
    onBadRow: 'truncate',
    evalFraction: 0.05,
    cacheDir: null,
  },
  optim: { lr: 1e-3, weightDecay: 0 },
  schedule: { kind: 'constant' },
  train: { batchSize: 8, maxSteps: 40, logEvery: 1, evalEvery: 40, evalBatches: 2, saveEvery: 40, ...train },
});

describe('ORPO and CPO recipes', () => {
  it('ORPO: loss = nll_loss − β·log_odds_ratio, chosen pulls ahead, no reference, flat tensors', async () => {
    const lines: string[] = [];
    const counts = new Map<number, number>();
    const cfg = validateConfig(OrpoConfigSchema, { name: 'orpo', recipe: 'orpo', orpo: { beta: 0.5 }, ...common() });
    const res = await runOrpo(cfg, 'orpo.yaml', {
      reporter: { ...silentReporter, info: (l: string) => lines.push(l) },
      onStep: (s) => counts.set(s, tf.memory().numTensors),
    });
    expect(lines.some((l) => /ORPO policy: .* no reference model/.test(l))).toBe(true);
    const log = RunLogger.read(res.runDir).filter((m) => 'train/loss' in m);
    for (const m of log.slice(0, 5))
      expect(m['train/loss']).toBeCloseTo(m['train/nll_loss'] - 0.5 * m['train/log_odds_ratio'], 4);
    const mean = (k: string, a: Array<Record<string, number>>) => a.reduce((s, m) => s + m[k], 0) / a.length;
    expect(mean('train/rewards/margins', log.slice(-5))).toBeGreaterThan(
      mean('train/rewards/margins', log.slice(0, 5)),
    );
    expect(mean('train/log_odds_chosen', log.slice(-5))).toBeGreaterThan(0);
    const keys = new Set(RunLogger.read(res.runDir).flatMap((m) => Object.keys(m)));
    for (const k of [
      'train/rewards/chosen',
      'train/rewards/rejected',
      'train/rewards/accuracies',
      'train/rewards/margins',
      'train/logps/chosen',
      'train/logits/chosen',
      'train/nll_loss',
      'train/log_odds_ratio',
      'train/log_odds_chosen',
      'eval/loss',
    ])
      expect(keys, k).toContain(k);
    expect(counts.get(40)).toBe(counts.get(3));
  });

  it('SimPO (CPO with lossType simpo, cpoAlpha 0): no NLL in the loss; CPO sigmoid adds it', async () => {
    const run = async (cpo: object) => {
      const cfg = validateConfig(CpoConfigSchema, { name: 'cpo', recipe: 'cpo', cpo, ...common({ maxSteps: 3 }) });
      const res = await runCpo(cfg, 'cpo.yaml');
      return RunLogger.read(res.runDir).filter((m) => 'train/loss' in m);
    };
    const beta = 2;
    const simpo = await run({ lossType: 'simpo', cpoAlpha: 0, beta, simpoGamma: 1 });
    // at the first step the loss is −log σ(β (margin) − γ) averaged: below ln(1 + e^γ) only when margins are positive
    // the loss is mean(−log σ(margin_i − γ)) with margin_i = β (chosen − rejected): by Jensen (−log σ is convex)
    // at least −log σ(mean margin − γ), with no NLL term
    const nlσ = (x: number) => Math.log1p(Math.exp(-x));
    for (const m of simpo) expect(m['train/loss']).toBeGreaterThanOrEqual(nlσ(m['train/rewards/margins'] - 1) - 1e-5);
    const sigmoid = await run({ lossType: 'sigmoid', cpoAlpha: 1 });
    // CPO: mean(−log σ(margin_i)) + 1 × nll_loss
    for (const m of sigmoid)
      expect(m['train/loss'] - m['train/nll_loss']).toBeGreaterThanOrEqual(nlσ(m['train/rewards/margins']) - 1e-5);
    expect(() =>
      validateConfig(CpoConfigSchema, { name: 'c', recipe: 'cpo', cpo: { lossType: 'kto' }, ...common() }),
    ).toThrow(/cpo\.lossType/);
  });
});
