// The GRPO recipe on a tiny GPT-2 with a synthetic verifiable reward (how many "e"s a
// completion has, from a reward-function module): the mean reward rises strongly, TRL's
// metric names are logged, the tensor count stays flat; a run stopped inside a generation
// batch (numIterations 2, stepsPerGeneration 2) resumes exactly (cpu backend); a LoRA policy
// with beta > 0 takes its reference from the adapter-disabled model (no second copy).
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, ConfigError, RunLogger, stateFileOf, validateConfig } from '@anneal/core';
import { SENTIMENT_PAIRS, pairTexts, silentReporter, tinyGpt2Dir } from '@anneal/training';
import { GrpoConfigSchema, runGrpo } from './index.js';

let modelDir = '';
const dir = mkdtempSync(join(tmpdir(), 'anneal-grpo-rewards-'));
const configFile = join(dir, 'grpo.yaml');
writeFileSync(
  join(dir, 'count-e.ts'),
  `export default (prompts: string[], completions: string[], rows: Array<{ chosen: string }>) => {\n` +
    `  if (rows.some((r) => typeof r.chosen !== 'string')) throw new Error('rows lost their columns');\n` +
    `  return completions.map((c) => (c.match(/e/g) ?? []).length / 4);\n};\n`,
);
writeFileSync(join(dir, 'length.ts'), `export default (p: string[], c: string[]) => c.map((x) => x.length / 100);\n`);
beforeAll(async () => {
  modelDir = await tinyGpt2Dir(pairTexts(200), { vocabSize: 300, nLayer: 1, nEmbd: 32 });
});

const config = (grpo: object, o: Record<string, unknown> = {}) =>
  validateConfig(GrpoConfigSchema, {
    name: 'grpo',
    recipe: 'grpo',
    backend: 'auto',
    outputDir: mkdtempSync(join(tmpdir(), 'anneal-grpo-')),
    model: { pretrained: modelDir },
    prompts: { train: SENTIMENT_PAIRS, column: 'prompt', evalFraction: 0.05, evalLimit: 8 },
    rewards: [
      { module: './count-e.ts', name: 'count_e' },
      { module: './length.ts', weight: 0.5 },
    ],
    grpo: { numGenerations: 4, maxCompletionLength: 12, ...grpo },
    optim: { lr: 3e-3, weightDecay: 0 },
    schedule: { kind: 'constant' },
    train: { batchSize: 16, maxSteps: 30, logEvery: 1, evalEvery: 100, saveEvery: 100 },
    ...o,
  });

const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;

describe('GRPO recipe', () => {
  it('raises a verifiable reward strongly, logs TRL metrics, does not leak tensors', async () => {
    const m: Array<Record<string, number>> = [];
    const counts: number[] = [];
    const res = await runGrpo(
      config({}, { train: { batchSize: 16, maxSteps: 40, logEvery: 1, evalEvery: 40 } }),
      configFile,
      {
        onUpdate: (_, x) => (m.push(x), counts.push(tf.memory().numTensors)),
      },
    );
    const first = mean(m.slice(0, 5).map((x) => x['rewards/count_e/mean']));
    const last = mean(m.slice(-5).map((x) => x['rewards/count_e/mean']));
    expect(last).toBeGreaterThan(first * 1.5 + 0.25);
    const logged = RunLogger.read(res.runDir);
    const keys = new Set(logged.flatMap((x) => Object.keys(x)));
    for (const k of [
      'reward',
      'reward_std',
      'rewards/count_e/mean',
      'rewards/count_e/std',
      'rewards/length/mean',
      'frac_reward_zero_std',
      'completions/mean_length',
      'completions/min_length',
      'completions/max_length',
      'completions/clipped_ratio',
      'completions/mean_terminated_length',
      'entropy',
      'clip_ratio/low_mean',
      'clip_ratio/high_mean',
      'clip_ratio/region_mean',
      'loss',
      'grad_norm',
      'eval/reward',
      'eval/rewards/count_e/mean',
    ])
      expect(keys, k).toContain(k);
    expect(keys).not.toContain('kl'); // beta 0: no reference, no KL
    // the weighted total: count_e + 0.5 × length
    for (const x of m) expect(x.reward).toBeCloseTo(x['rewards/count_e/mean'] + 0.5 * x['rewards/length/mean'], 4);
    expect(counts.at(-1)).toBe(counts[2]);
  });

  it('resumes exactly inside a generation batch with numIterations 2 and stepsPerGeneration 2 (cpu backend)', async () => {
    const cfg = config(
      { numIterations: 2, stepsPerGeneration: 2, beta: 0.04, maxCompletionLength: 6 },
      { backend: 'cpu', train: { batchSize: 8, maxSteps: 6, logEvery: 1, evalEvery: 100, saveEvery: 100 } },
    );
    const full = new Map<number, Record<string, number>>();
    await runGrpo(cfg, configFile, { onUpdate: (s, x) => full.set(s, x) });
    // the policy moves between a generation and its later steps: their ratios are not all 1
    expect(full.get(4)!['clip_ratio/region_mean'] + Math.abs(full.get(4)!.loss - full.get(3)!.loss)).toBeGreaterThan(0);
    const again = { ...cfg, outputDir: mkdtempSync(join(tmpdir(), 'anneal-grpo-')) };
    let seen = 0;
    const stopped = await runGrpo(again, configFile, { onUpdate: () => seen++, shouldStop: () => seen >= 3 });
    expect(stopped.step).toBe(3); // inside the first generation batch (steps 1-4)
    const resumed = new Map<number, Record<string, number>>();
    await runGrpo(again, configFile, { resume: stopped.runDir, onUpdate: (s, x) => resumed.set(s, x) });
    expect([...resumed.keys()]).toEqual([4, 5, 6]);
    for (const [s, x] of resumed)
      for (const k of ['loss', 'kl', 'entropy', 'grad_norm', ...(s === 5 ? ['reward', 'reward_std'] : [])])
        expect(Math.abs(x[k] - full.get(s)![k]), `step ${s} ${k}`).toBeLessThanOrEqual(
          1e-6 * Math.max(1, Math.abs(x[k])),
        );
  });

  it('LoRA with beta > 0: the adapter-disabled policy is the reference (KL 0 at first), checkpoints hold the adapter', async () => {
    const lines: string[] = [];
    const m: Array<Record<string, number>> = [];
    const res = await runGrpo(
      config(
        { beta: 0.1, maxCompletionLength: 6 },
        {
          peft: { r: 4, loraAlpha: 8, targetModules: ['c_attn'] },
          train: { batchSize: 8, maxSteps: 3, logEvery: 1, evalEvery: 100, saveEvery: 100 },
        },
      ),
      configFile,
      { onUpdate: (_, x) => m.push(x), reporter: { ...silentReporter, info: (l: string) => lines.push(l) } },
    );
    expect(lines.some((l) => /reference: the policy with its adapter disabled/.test(l))).toBe(true);
    expect(Math.abs(m[0].kl)).toBeLessThan(1e-6); // B = 0 at the start: policy = reference
    expect(m.every((x) => Number.isFinite(x.kl) && Number.isFinite(x.loss))).toBe(true);
    expect(existsSync(join(res.lastCheckpoint, 'policy', 'adapter_model.safetensors'))).toBe(true);
    expect(existsSync(join(res.lastCheckpoint, 'policy', 'model.safetensors'))).toBe(false);
  });

  it('names what is wrong: group shape, reward weights, a checkpoint without its generation batch', async () => {
    const shape = await runGrpo(config({ numGenerations: 3 }), configFile).catch((e) => e);
    expect(shape).toBeInstanceOf(ConfigError);
    expect([shape.field, shape.message]).toEqual([
      'grpo.numGenerations',
      'a generation of 16 completions does not make groups of numGenerations 3',
    ]);
    const weights = await runGrpo(config({ rewardWeights: [1] }), configFile).catch((e) => e);
    expect([weights.field, weights.message]).toEqual(['rewardWeights', '1 reward weights for 2 rewards']);
    const both = await runGrpo(config({ rewardWeights: [1, 2] }), configFile).catch((e) => e);
    expect(both.field).toBe('rewards[1].weight');
    expect(() => config({ lossType: 'ppo' })).toThrow(/grpo\.lossType/);
    // a checkpoint inside a generation batch whose state lost the batch is refused
    const cfg = config(
      { stepsPerGeneration: 2, maxCompletionLength: 4 },
      { backend: 'cpu', train: { batchSize: 8, maxSteps: 2, logEvery: 1, evalEvery: 100, saveEvery: 1 } },
    );
    const run = await runGrpo(cfg, configFile);
    const at = join(run.runDir, 'checkpoints', 'step-1');
    const stateFile = stateFileOf(at)!;
    const state = JSON.parse(readFileSync(stateFile, 'utf8'));
    state.data.buffer = null;
    writeFileSync(stateFile, JSON.stringify(state));
    const err = await runGrpo(cfg, configFile, { resume: at }).catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toMatch(/inside a generation batch \(one every 2 steps\) and does not hold it/);
  });
});
