// The KTO recipe with a tiny GPT-2: on unpaired rows (prompt, completion, label) and on the
// shipped sentiment pairs (unpaired as TRL does), the first loss is 1 − σ(0) = 0.5 (policy =
// reference, KL 0), desirable completions' rewards rise above undesirable ones', TRL's metric
// names are logged, the tensor count stays flat; LoRA takes its reference from the
// adapter-disabled policy; the batch size needed by the KL estimate is checked.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { RunLogger, validateConfig } from '@anneal/core';
import { SENTIMENT_PAIRS, pairTexts, silentReporter, tinyGpt2Dir } from '@anneal/training';
import { KtoConfigSchema, runKto } from './index.js';

let modelDir = '';
let short = ''; // 12 positions: the tightest model that maxLength 12 fits
const dir = mkdtempSync(join(tmpdir(), 'anneal-kto-data-'));
const UNPAIRED = join(dir, 'unpaired.jsonl');
beforeAll(async () => {
  modelDir = await tinyGpt2Dir(pairTexts(300), { vocabSize: 400, nLayer: 1, nEmbd: 32 });
  short = await tinyGpt2Dir(pairTexts(300), { vocabSize: 400, nLayer: 1, nEmbd: 32, nPositions: 12 });
  // unpaired rows from the pairs: alternate pairs give their chosen or their rejected review
  const rows = readFileSync(SENTIMENT_PAIRS, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { prompt: string; chosen: string; rejected: string })
    .map((p, i) => ({ prompt: p.prompt, completion: i % 2 ? p.rejected : p.chosen, label: i % 2 === 0 }));
  writeFileSync(UNPAIRED, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
});

const config = (o: Record<string, unknown> = {}, train: object = {}) =>
  validateConfig(KtoConfigSchema, {
    name: 'kto',
    recipe: 'kto',
    backend: 'auto',
    outputDir: mkdtempSync(join(tmpdir(), 'anneal-kto-')),
    model: { pretrained: modelDir },
    data: {
      train: UNPAIRED,
      format: 'unpaired-preference',
      maxLength: 48,
      maxPromptLength: 16,
      onBadRow: 'truncate',
      evalFraction: 0.05,
      cacheDir: null,
    },
    optim: { lr: 1e-3, weightDecay: 0 },
    schedule: { kind: 'constant' },
    train: { batchSize: 8, maxSteps: 40, logEvery: 10, evalEvery: 40, evalBatches: 2, saveEvery: 40, ...train },
    ...o,
  });

describe('KTO recipe', () => {
  it('starts at 0.5, pushes desirable above undesirable, logs TRL metrics, does not leak tensors', async () => {
    const losses: number[] = [];
    const counts = new Map<number, number>();
    const res = await runKto(config(), 'kto.yaml', {
      onStep: (s, l) => (losses.push(l), counts.set(s, tf.memory().numTensors)),
    });
    expect(Math.abs(losses[0] - 0.5)).toBeLessThan(1e-5);
    const log = RunLogger.read(res.runDir);
    const last = log.filter((m) => 'train/rewards/margins' in m).at(-1)!;
    expect(last['train/rewards/margins']).toBeGreaterThan(0);
    expect(last['train/rewards/chosen']).toBeGreaterThan(last['train/rewards/rejected']);
    expect(last['train/kl']).toBeGreaterThanOrEqual(0);
    const keys = new Set(log.flatMap((m) => Object.keys(m)));
    for (const k of [
      'train/loss',
      'train/kl',
      'train/rewards/chosen',
      'train/rewards/rejected',
      'train/rewards/margins',
      'train/logps/chosen',
      'train/logps/rejected',
      'train/count/chosen',
      'eval/loss',
      'eval/rewards/margins',
    ])
      expect(keys, k).toContain(k);
    expect(counts.get(40)).toBe(counts.get(3));
  });

  it('unpairs preference pairs; LoRA uses the adapter-disabled policy as its reference', async () => {
    const lines: string[] = [];
    const losses: number[] = [];
    await runKto(
      config(
        {
          data: {
            train: SENTIMENT_PAIRS,
            format: 'preference',
            maxLength: 48,
            maxPromptLength: 16,
            onBadRow: 'truncate',
            evalFraction: 0.05,
            cacheDir: null,
          },
          peft: { r: 4, loraAlpha: 8, targetModules: ['c_attn'] },
        },
        { maxSteps: 3 },
      ),
      'kto.yaml',
      { onStep: (_, l) => losses.push(l), reporter: { ...silentReporter, info: (l: string) => lines.push(l) } },
    );
    expect(lines.some((l) => /reference: the policy with its adapter disabled/.test(l))).toBe(true);
    const data = lines.find((l) => l.includes('train examples'))!;
    const [, n, d, u] = data.match(/(\d+) train examples \((\d+) desirable, (\d+) undesirable\)/)!.map(Number);
    expect([d, u]).toEqual([n / 2, n / 2]); // one of each per pair
    expect(Math.abs(losses[0] - 0.5)).toBeLessThan(1e-5);
    // a prompt with another row's completion can be longer than either row: the KL pairs are cut to maxLength
    const tightFile = join(dir, 'tight.jsonl');
    const long = 'the food was great and the service was great and the room was great';
    writeFileSync(
      tightFile,
      [
        { prompt: 'A:', completion: ` ${long}`, label: true },
        { prompt: `Write a positive restaurant review about ${long}:`, completion: ' ok', label: false },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n') + '\n',
    );
    const tight = config(
      {
        data: {
          train: tightFile,
          format: 'unpaired-preference',
          maxLength: 12,
          onBadRow: 'truncate',
          evalFraction: 0,
          cacheDir: null,
        },
        model: { pretrained: short },
      },
      { batchSize: 2, maxSteps: 2, evalEvery: 100 },
    );
    await expect(runKto(tight, 'kto.yaml')).resolves.toMatchObject({ step: 2 });
    expect(() => config({}, { batchSize: 1 })).toThrow(/train\.batchSize: KTO needs train\.batchSize >= 2/);
  });
});
