// The PPO recipe on a tiny GPT-2 with a synthetic reward (how many "e"s a completion has):
// the mean score rises strongly while objective/kl stays bounded, TRL's metric names are
// logged, the tensor count stays flat, and a stopped run resumes exactly (cpu backend).
import { copyFileSync, existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { RunLogger, validateConfig } from '@anneal/core';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { loadQuantized, saveQuantized } from '@anneal/quantization';
import { SENTIMENT_PAIRS, pairTexts, silentReporter, tinyGpt2Dir } from '@anneal/training';
import { PpoConfigSchema, runPpo, type RewardFn } from './index.js';

const PAIRS = SENTIMENT_PAIRS;
let modelDir = '';
beforeAll(async () => {
  modelDir = await tinyGpt2Dir(pairTexts(200), { vocabSize: 300, nLayer: 1, nEmbd: 32 });
});

const countE: RewardFn = (_, completions) => completions.map((c) => (c.match(/e/g) ?? []).length / 4);

const config = (ppo: object, o: Record<string, unknown> = {}) =>
  validateConfig(PpoConfigSchema, {
    name: 'ppo',
    recipe: 'ppo',
    backend: 'auto',
    outputDir: mkdtempSync(join(tmpdir(), 'anneal-ppo-')),
    model: { pretrained: modelDir },
    prompts: { train: PAIRS, column: 'prompt', evalFraction: 0.1 },
    ppo: { batchSize: 16, numMiniBatches: 2, totalEpisodes: 16 * 30, responseLength: 12, temperature: 1, ...ppo },
    optim: { lr: 3e-3, weightDecay: 0 },
    schedule: { kind: 'constant' },
    train: { logEvery: 1, evalEvery: 10, saveEvery: 10 },
    ...o,
  });

describe('PPO recipe', () => {
  it('raises a synthetic reward strongly with bounded KL, logs TRL metrics, does not leak tensors', async () => {
    const m: Array<Record<string, number>> = [];
    const counts: number[] = [];
    const res = await runPpo(config({ klCoef: 0.1, totalEpisodes: 16 * 40 }), 'ppo.yaml', {
      rewardFn: countE,
      onUpdate: (_, x) => (m.push(x), counts.push(tf.memory().numTensors)),
    });
    const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
    const first = mean(m.slice(0, 5).map((x) => x['objective/scores']));
    const last = mean(m.slice(-5).map((x) => x['objective/scores']));
    expect(last).toBeGreaterThan(first * 1.5 + 0.25);
    expect(m.every((x) => Number.isFinite(x['objective/kl']) && x['objective/kl'] < 20)).toBe(true);
    const keys = new Set(RunLogger.read(res.runDir).flatMap((x) => Object.keys(x)));
    for (const k of [
      'objective/kl',
      'objective/entropy',
      'objective/non_score_reward',
      'objective/rlhf_reward',
      'objective/scores',
      'policy/approxkl_avg',
      'policy/clipfrac_avg',
      'loss/policy_avg',
      'loss/value_avg',
      'val/clipfrac_avg',
      'val/ratio',
      'val/num_eos_tokens',
      'lr',
      'episode',
      'eval/objective/scores',
    ])
      expect(keys, k).toContain(k);
    expect(counts.at(-1)).toBe(counts[2]);
  });

  it('resumes exactly: policy, value model, optimizer, sampler and KL controller state (cpu backend)', async () => {
    const cfg = config(
      {
        batchSize: 4,
        numMiniBatches: 2,
        numPpoEpochs: 2,
        totalEpisodes: 16,
        responseLength: 6,
        adaptiveKl: { target: 0.5, horizon: 100 },
      },
      { backend: 'cpu', train: { logEvery: 1, evalEvery: 100, saveEvery: 2 } },
    );
    const full = new Map<number, Record<string, number>>();
    await runPpo(cfg, 'ppo.yaml', { rewardFn: countE, onUpdate: (u, x) => full.set(u, x) });
    const again = { ...cfg, outputDir: mkdtempSync(join(tmpdir(), 'anneal-ppo-')) };
    let seen = 0;
    const stopped = await runPpo(again, 'ppo.yaml', {
      rewardFn: countE,
      onUpdate: () => seen++,
      shouldStop: () => seen >= 2,
    });
    const resumed = new Map<number, Record<string, number>>();
    await runPpo(again, 'ppo.yaml', {
      rewardFn: countE,
      resume: stopped.runDir,
      onUpdate: (u, x) => resumed.set(u, x),
    });
    expect([...resumed.keys()]).toEqual([3, 4]);
    for (const [u, x] of resumed)
      for (const k of [
        'objective/scores',
        'objective/kl',
        'objective/kl_coef',
        'loss/policy_avg',
        'loss/value_avg',
        'episode',
      ])
        expect(Math.abs(x[k] - full.get(u)![k]), `update ${u} ${k}`).toBeLessThanOrEqual(
          1e-6 * Math.max(1, Math.abs(x[k])),
        );
    expect(full.get(4)!['objective/kl_coef']).not.toBe(full.get(1)!['objective/kl_coef']); // the adaptive controller moved
  });

  it('LoRA: the adapter-disabled policy is the reference (KL 0 at the first rollout), checkpoints hold the adapter', async () => {
    const m: Array<Record<string, number>> = [];
    const res = await runPpo(
      config(
        { batchSize: 8, totalEpisodes: 24, responseLength: 6 },
        { peft: LoraConfigSchema.parse({ r: 4, loraAlpha: 8, targetModules: ['c_attn'] }) },
      ),
      'ppo.yaml',
      { rewardFn: countE, onUpdate: (_, x) => m.push(x) },
    );
    expect(Math.abs(m[0]['objective/kl'])).toBeLessThan(1e-5); // B = 0 at the start: policy = reference
    expect(m.every((x) => Number.isFinite(x['loss/policy_avg']))).toBe(true);
    expect(existsSync(join(res.lastCheckpoint, 'policy', 'adapter_model.safetensors'))).toBe(true);
    expect(existsSync(join(res.lastCheckpoint, 'value', 'model.safetensors'))).toBe(true);
  });

  it('train.maxSteps is the number of updates (the stopping knob every recipe has); with ppo.totalEpisodes too it is refused', async () => {
    const cfg = config(
      { batchSize: 4, numMiniBatches: 1, numPpoEpochs: 1, totalEpisodes: undefined, responseLength: 4 },
      { train: { maxSteps: 3, logEvery: 1, evalEvery: 100, saveEvery: 100 } },
    );
    const updates: number[] = [];
    const lines: string[] = [];
    const reporter = { ...silentReporter, info: (m: string) => lines.push(m) };
    const res = await runPpo(cfg, 'ppo.yaml', { rewardFn: countE, onUpdate: (u) => updates.push(u), reporter });
    expect(updates).toEqual([1, 2, 3]);
    expect(res.step).toBe(3);
    // the first update says what memory goes where, once (as the supervised loop does)
    const memory = lines.filter((l) => l.startsWith('memory: '));
    expect(memory.length).toBe(1);
    expect(memory[0]).toMatch(/trainable parameters add .* of gradients .* the first micro-batch \(\d+ tokens\) kept /);
    expect(() => config({ totalEpisodes: 16 }, { train: { maxSteps: 3 } })).toThrow(
      /train\.maxSteps: set exactly one of ppo\.totalEpisodes \(episodes\) and train\.maxSteps/,
    );
  });

  it('needs a reward, and a decoder value model, naming the field', async () => {
    const none = await runPpo(config({ totalEpisodes: 16 }), 'ppo.yaml').catch((e) => e);
    expect([none.message, none.field]).toEqual(['PPO needs a reward', 'reward.model']);
    const bert = fileURLToPath(new URL('../../../../shared/fixtures/hf/bert_seqcls', import.meta.url));
    const err = await runPpo(config({ totalEpisodes: 16 }, { valueModel: bert }), 'ppo.yaml', {
      rewardFn: countE,
    }).catch((e) => e);
    expect(err.field).toBe('valueModel');
    expect(err.message).toMatch(/the value model must be a decoder.*BertForSequenceClassification/);
    // a policy checkpoint saved quantized (QLoRA) cannot be the default value model, which trains in full
    const { model } = await loadQuantized(modelDir, { method: 'nf4', blockSize: 64, doubleQuant: true });
    const nf4 = join(mkdtempSync(join(tmpdir(), 'anneal-ppo-q-')), 'nf4');
    await saveQuantized(model, nf4, (tmp) =>
      readdirSync(modelDir)
        .filter((f) => f.startsWith('tokenizer'))
        .forEach((f) => copyFileSync(join(modelDir, f), join(tmp, f))),
    );
    model.dispose();
    const q = await runPpo(
      config(
        { totalEpisodes: 16 },
        {
          model: { pretrained: nf4 },
          peft: LoraConfigSchema.parse({ r: 4, loraAlpha: 8, targetModules: 'all-linear' }),
        },
      ),
      'ppo.yaml',
      { rewardFn: countE },
    ).catch((e) => e);
    expect([q.field, q.message]).toEqual([
      'valueModel',
      `the value model trains in full, and ${nf4} is saved quantized`,
    ]);
  });
});
