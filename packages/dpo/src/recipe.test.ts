// The DPO recipe on the shipped sentiment pairs with a tiny GPT-2: the first loss is ln 2
// (policy = reference), the policy learns to prefer the chosen reviews, TRL's metric names
// are logged, the tensor count stays flat, and every way of getting the reference — a frozen
// copy, precomputed log-probs, the adapter-disabled LoRA policy — gives the same losses;
// a stopped run resumes exactly, reading its precomputed reference back.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { RunLogger, readSafetensors, validateConfig } from '@anneal/core';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { SENTIMENT_PAIRS, pairTexts, tinyGpt2Dir, type Reporter } from '@anneal/training';
import { DpoConfigSchema, runDpo } from './index.js';

const PAIRS = SENTIMENT_PAIRS;
let modelDir = '';

beforeAll(async () => {
  modelDir = await tinyGpt2Dir(pairTexts(300), { vocabSize: 400, nLayer: 1, nEmbd: 32 });
});

const config = (o: Record<string, unknown> = {}, train: object = {}) =>
  validateConfig(DpoConfigSchema, {
    name: 'dpo',
    recipe: 'dpo',
    backend: 'auto',
    outputDir: mkdtempSync(join(tmpdir(), 'anneal-dpo-')),
    model: { pretrained: modelDir },
    data: {
      train: PAIRS,
      format: 'preference',
      maxLength: 48,
      maxPromptLength: 16,
      onBadRow: 'truncate',
      evalFraction: 0.05,
      cacheDir: null,
    },
    optim: { lr: 1e-3, weightDecay: 0 },
    schedule: { kind: 'constant' },
    train: { batchSize: 8, maxSteps: 12, logEvery: 4, evalEvery: 12, evalBatches: 2, saveEvery: 6, ...train },
    ...o,
  });

const info = (lines: string[]): Reporter => ({
  info: (m) => lines.push(m),
  start: () => undefined,
  step: () => undefined,
  stop: () => undefined,
});

describe('DPO recipe', () => {
  it('starts at ln 2, learns the preference, logs TRL metrics, and does not leak tensors', async () => {
    const losses: number[] = [];
    const counts = new Map<number, number>();
    const res = await runDpo(config({}, { maxSteps: 40, logEvery: 10, evalEvery: 40, saveEvery: 40 }), 'dpo.yaml', {
      onStep: (s, l) => {
        losses.push(l);
        counts.set(s, tf.memory().numTensors);
      },
    });
    expect(res.reference).toBe('copy');
    expect(Math.abs(losses[0] - Math.LN2)).toBeLessThan(1e-5);
    const log = RunLogger.read(res.runDir);
    const last = log.filter((m) => 'train/rewards/margins' in m).at(-1)!;
    expect(last['train/rewards/margins']).toBeGreaterThan(0);
    expect(last['train/rewards/accuracies']).toBeGreaterThan(0.6);
    const keys = new Set(log.flatMap((m) => Object.keys(m)));
    for (const k of [
      'rewards/chosen',
      'rewards/rejected',
      'rewards/accuracies',
      'rewards/margins',
      'logps/chosen',
      'logps/rejected',
      'logits/chosen',
      'logits/rejected',
    ]) {
      expect(keys, `train/${k}`).toContain(`train/${k}`);
      expect(keys, `eval/${k}`).toContain(`eval/${k}`);
    }
    expect(res.eval!['eval/rewards/accuracies']).toBeGreaterThan(0.5);
    // flat tensor count once the optimizer's moments exist
    expect(counts.get(40)).toBe(counts.get(5));
  });

  it('a frozen copy and precomputed reference log-probs give the same losses; resume reads the precomputed ones back', async () => {
    const copy: number[] = [];
    await runDpo(config(), 'dpo.yaml', { onStep: (_, l) => copy.push(l) });
    const pre: number[] = [];
    const cfg = config({ dpo: { precomputeRefLogProbs: true } });
    const full = await runDpo(cfg, 'dpo.yaml', { onStep: (_, l) => pre.push(l) });
    expect(full.reference).toBe('precomputed');
    expect(existsSync(join(full.runDir, 'reference_logps.safetensors'))).toBe(true);
    pre.forEach((l, i) => expect(Math.abs(l - copy[i]), `step ${i + 1}`).toBeLessThan(1e-5));

    // stop at step 6, resume to 12: the same losses, the reference read from the run folder
    const again = config({ dpo: { precomputeRefLogProbs: true } });
    let seen = 0;
    const stopped = await runDpo(again, 'dpo.yaml', { onStep: () => seen++, shouldStop: () => seen >= 6 });
    const lines: string[] = [];
    const resumed = new Map<number, number>();
    await runDpo(again, 'dpo.yaml', {
      resume: stopped.runDir,
      reporter: info(lines),
      onStep: (s, l) => resumed.set(s, l),
    });
    expect([...resumed.keys()]).toEqual([7, 8, 9, 10, 11, 12]);
    for (const [s, l] of resumed) expect(Math.abs(l - pre[s - 1]), `step ${s}`).toBeLessThanOrEqual(1e-5);
    expect(lines).toContain('reference log-probs read from the run folder');
  });

  it('LoRA: the adapter-disabled policy is the reference (no copy), equal to precomputing it; checkpoints hold the adapter', async () => {
    const peft = LoraConfigSchema.parse({ r: 4, loraAlpha: 8, targetModules: ['c_attn', 'c_proj'] });
    const off: number[] = [];
    const res = await runDpo(config({ peft, optim: { lr: 5e-3, weightDecay: 0 } }), 'dpo.yaml', {
      onStep: (_, l) => off.push(l),
    });
    expect(res.reference).toBe('adapter-disabled');
    expect(Math.abs(off[0] - Math.LN2)).toBeLessThan(1e-5);
    expect(Math.min(...off.slice(-4))).toBeLessThan(Math.LN2);
    const pre: number[] = [];
    await runDpo(
      config({ peft, optim: { lr: 5e-3, weightDecay: 0 }, dpo: { precomputeRefLogProbs: true } }),
      'dpo.yaml',
      { onStep: (_, l) => pre.push(l) },
    );
    pre.forEach((l, i) => expect(Math.abs(l - off[i]), `step ${i + 1}`).toBeLessThan(1e-5));
    const keys = [...readSafetensors(join(res.lastCheckpoint, 'adapter_model.safetensors')).tensors.keys()];
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => /lora_[AB]/.test(k))).toBe(true);
    expect(existsSync(join(res.lastCheckpoint, 'model.safetensors'))).toBe(false);
  });

  it('QLoRA: an NF4 base with LoRA adapters; the reference is the quantized base with the adapter off', async () => {
    const peft = LoraConfigSchema.parse({ r: 4, loraAlpha: 8, targetModules: ['c_attn'] });
    const losses: number[] = [];
    const res = await runDpo(
      config(
        { peft, quantization: { method: 'nf4' }, optim: { lr: 5e-3, weightDecay: 0 } },
        { maxSteps: 4, evalEvery: 4, saveEvery: 4 },
      ),
      'dpo.yaml',
      { onStep: (_, l) => losses.push(l) },
    );
    expect(res.reference).toBe('adapter-disabled');
    expect(Math.abs(losses[0] - Math.LN2)).toBeLessThan(1e-5);
    expect(losses.every(Number.isFinite)).toBe(true);
  });

  it('rejects a model that is not a causal LM and unknown keys, naming the field', async () => {
    const seqcls = fileURLToPath(new URL('../../../../shared/fixtures/hf/gpt2_seqcls', import.meta.url));
    const err = await runDpo(config({ model: { pretrained: seqcls } }), 'dpo.yaml').catch((e) => e);
    expect([err.message, err.field]).toEqual([
      `DPO needs a causal language model, and ${seqcls} is GPT2ForSequenceClassification`,
      'model.pretrained',
    ]);
    const long = await runDpo(config({ data: { ...config().data, maxLength: 100 } }), 'dpo.yaml').catch((e) => e);
    expect([long.message, long.field]).toEqual(["data.maxLength 100 > the model's 64 positions", 'data.maxLength']);
    expect(() => config({ dpo: { betta: 0.2 } })).toThrow(/betta/);
    expect(config().dpo).toEqual({
      beta: 0.1,
      lossType: 'sigmoid',
      labelSmoothing: 0,
      referenceFree: false,
      precomputeRefLogProbs: false,
      disableDropout: true,
    });
    expect(validateConfig(DpoConfigSchema, { ...config(), optim: undefined }).optim.lr).toBe(1e-6); // TRL's learning_rate
  });
});
