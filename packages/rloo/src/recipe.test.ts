// The RLOO recipe on a tiny GPT-2 with a synthetic verifiable reward (how many "e"s a
// completion has, from a reward-function module): the mean reward rises strongly with the KL
// to the reference in the reward (beta > 0, TRL's default), TRL's metric names are logged,
// the tensor count stays flat, and a run stopped between steps resumes exactly (cpu backend).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { RunLogger, validateConfig } from '@anneal/core';
import { SENTIMENT_PAIRS, pairTexts, tinyGpt2Dir } from '@anneal/training';
import { RlooConfigSchema, runRloo } from './index.js';

let modelDir = '';
const dir = mkdtempSync(join(tmpdir(), 'anneal-rloo-rewards-'));
const configFile = join(dir, 'rloo.yaml');
writeFileSync(
  join(dir, 'count-e.ts'),
  `export default (p: string[], completions: string[]) => completions.map((c) => (c.match(/e/g) ?? []).length / 4);\n`,
);
beforeAll(async () => {
  modelDir = await tinyGpt2Dir(pairTexts(200), { vocabSize: 300, nLayer: 1, nEmbd: 32 });
});

const config = (rloo: object, o: Record<string, unknown> = {}) =>
  validateConfig(RlooConfigSchema, {
    name: 'rloo',
    recipe: 'rloo',
    backend: 'auto',
    outputDir: mkdtempSync(join(tmpdir(), 'anneal-rloo-')),
    model: { pretrained: modelDir },
    prompts: { train: SENTIMENT_PAIRS, column: 'prompt', evalFraction: 0.05, evalLimit: 8 },
    rewards: [{ module: './count-e.ts', name: 'count_e' }],
    rloo: { numGenerations: 4, maxCompletionLength: 12, beta: 0.02, ...rloo },
    optim: { lr: 3e-3, weightDecay: 0 },
    schedule: { kind: 'constant' },
    train: { batchSize: 16, maxSteps: 40, logEvery: 1, evalEvery: 40, saveEvery: 100 },
    ...o,
  });

const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;

describe('RLOO recipe', () => {
  it('raises a verifiable reward strongly with the KL in the reward, logs TRL metrics, does not leak tensors', async () => {
    const m: Array<Record<string, number>> = [];
    const counts: number[] = [];
    const res = await runRloo(config({}), configFile, {
      onUpdate: (_, x) => (m.push(x), counts.push(tf.memory().numTensors)),
    });
    const first = mean(m.slice(0, 5).map((x) => x.reward));
    const last = mean(m.slice(-5).map((x) => x.reward));
    expect(last).toBeGreaterThan(first * 1.5 + 0.25);
    expect(Math.abs(m[0].kl)).toBeLessThan(1e-5); // the policy starts as the reference
    expect(m.every((x) => Number.isFinite(x.kl) && x.kl < 5)).toBe(true);
    expect(m.at(-1)!.kl).toBeGreaterThan(0);
    const keys = new Set(RunLogger.read(res.runDir).flatMap((x) => Object.keys(x)));
    for (const k of [
      'reward',
      'reward_std',
      'rewards/count_e/mean',
      'rewards/count_e/std',
      'frac_reward_zero_std',
      'kl',
      'entropy',
      'completions/mean_length',
      'completions/clipped_ratio',
      'clip_ratio/region_mean',
      'loss',
      'eval/reward',
    ])
      expect(keys, k).toContain(k);
    expect(counts.at(-1)).toBe(counts[2]);
  });

  it('resumes exactly (cpu backend)', async () => {
    const cfg = config(
      { maxCompletionLength: 6, numIterations: 2 },
      { backend: 'cpu', train: { batchSize: 8, maxSteps: 4, logEvery: 1, evalEvery: 100, saveEvery: 100 } },
    );
    const full = new Map<number, Record<string, number>>();
    await runRloo(cfg, configFile, { onUpdate: (s, x) => full.set(s, x) });
    const again = { ...cfg, outputDir: mkdtempSync(join(tmpdir(), 'anneal-rloo-')) };
    let seen = 0;
    const stopped = await runRloo(again, configFile, { onUpdate: () => seen++, shouldStop: () => seen >= 1 });
    const resumed = new Map<number, Record<string, number>>();
    await runRloo(again, configFile, { resume: stopped.runDir, onUpdate: (s, x) => resumed.set(s, x) });
    expect([...resumed.keys()]).toEqual([2, 3, 4]);
    for (const [s, x] of resumed)
      for (const k of ['loss', 'entropy', 'grad_norm', ...(s === 3 ? ['reward', 'kl'] : [])])
        expect(Math.abs(x[k] - full.get(s)![k]), `step ${s} ${k}`).toBeLessThanOrEqual(
          1e-6 * Math.max(1, Math.abs(x[k])),
        );
  });
});
