// The reward model: Bradley–Terry loss and TRL's metrics against hand-computed values, a
// transformers-made reward model (fixtures/hf/gpt2_seqcls, num_labels 1) scored through
// scoreTexts, and the recipe on the shipped sentiment pairs: the loss falls, metrics carry
// TRL's names, and the checkpoint is a GPT2ForSequenceClassification that loads back bit-exact.
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { RunLogger, readSafetensors, useBackend, validateConfig } from '@anneal/core';
import { DecoderForSequenceClassification, loadPretrained, readHfFixture } from '@anneal/modeling';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { loadTokenizerSync } from '@anneal/tokenizers';
import { SENTIMENT_PAIRS, pairTexts, tinyGpt2Dir } from '@anneal/training';
import { RewardConfigSchema, bradleyTerryLoss, rewardMetrics, runReward, scoreTexts } from './index.js';

const FIXTURES = fileURLToPath(new URL('../../../../shared/fixtures/hf/', import.meta.url));
const PAIRS = SENTIMENT_PAIRS;

describe('Bradley–Terry loss and metrics', () => {
  it('equals −log σ(r_c − r_r − margin), stays finite at extreme gaps, and adds the centering term', async () => {
    await useBackend('cpu', {});
    const c = tf.tensor1d([2, 0, -1, 30, -50]);
    const r = tf.tensor1d([1, 0, 1, -30, 50]);
    const losses = bradleyTerryLoss(c, r, { margin: tf.tensor1d([0, 0.5, 0, 0, 0]) }).arraySync();
    // log(1 + e^-1), log(1 + e^0.5), log(1 + e^2), log(1 + e^-60) ≈ 8.76e-27, 100 + log(1 + e^-100)
    const expected = [0.31326168751822286, 0.9740769841801067, 2.1269280110429727, 8.75651076269652e-27, 100];
    losses.forEach((l, i) =>
      expect(Math.abs(l - expected[i]), `pair ${i}`).toBeLessThanOrEqual(1e-6 * Math.max(1, expected[i])),
    );
    const centered = bradleyTerryLoss(tf.tensor1d([2]), tf.tensor1d([1]), {
      centerRewardsCoefficient: 0.01,
    }).arraySync()[0];
    expect(centered).toBeCloseTo(0.31326168751822286 + 0.01 * 9, 6);
    // d/dr_c −log σ(r_c − r_r) = −σ(r_r − r_c): −σ(−1) for the first pair; 0 (not NaN) for the gap of 60
    const g = tf
      .grad((x: tf.Tensor) => tf.sum(bradleyTerryLoss(x as tf.Tensor1D, r)))(c)
      .arraySync() as number[];
    expect(g[0]).toBeCloseTo(-0.2689414213699951, 6);
    expect(g[3]).toBeCloseTo(0, 12);
    expect(g[4]).toBeCloseTo(-1, 6);
  });

  it('computes accuracy, margin and the reward range as TRL logs them', () => {
    // chosen [2, 0, -1] vs rejected [1, 0, 1]: one strict win, gaps 1, 0, -2
    expect(rewardMetrics([2, 0, -1], [1, 0, 1])).toEqual({
      accuracy: 1 / 3,
      margin: -1 / 3,
      mean_reward: 0.5,
      min_reward: -1,
      max_reward: 2,
    });
  });
});

describe('scoreTexts', () => {
  it('scores with a transformers-made GPT2ForSequenceClassification (num_labels 1) as transformers did', async () => {
    await useBackend('cpu', {});
    const dir = join(FIXTURES, 'gpt2_seqcls');
    const f = readHfFixture(dir);
    const model = await loadPretrained(dir);
    expect(model).toBeInstanceOf(DecoderForSequenceClassification);
    // A tokenizer that reads ids off the text; pad id 0 as in the fixture, no EOS.
    const tok = { encode: (t: string) => t.split(' ').map(Number), eosTokenId: undefined, padTokenId: 0 };
    const texts = f.ids.map((row, b) => row.filter((_, t) => f.mask[b][t]).join(' '));
    const scores = scoreTexts(model, tok, texts, { batchSize: 2 });
    scores.forEach((s, i) => expect(Math.abs(s - f.logits[i]), `row ${i}`).toBeLessThan(1e-4));
  });
});

describe('reward recipe', () => {
  const config = async (o: object = {}) =>
    validateConfig(RewardConfigSchema, {
      name: 'rm',
      recipe: 'reward',
      backend: 'auto',
      outputDir: mkdtempSync(join(tmpdir(), 'anneal-rm-')),
      model: { pretrained: await tinyGpt2Dir(pairTexts(300), { vocabSize: 500, nLayer: 2, nEmbd: 64 }) },
      data: {
        train: PAIRS,
        format: 'preference',
        maxLength: 48,
        onBadRow: 'truncate',
        evalFraction: 0.05,
        cacheDir: null,
      },
      optim: { lr: 1e-3, weightDecay: 0 },
      schedule: { kind: 'constant' },
      train: { batchSize: 16, maxSteps: 150, logEvery: 10, evalEvery: 150, evalBatches: 4, saveEvery: 150 },
      ...o,
    });

  it('learns the sentiment preference, logs TRL metrics and saves a transformers reward model that loads back bit-exact', async () => {
    const losses: number[] = [];
    const res = await runReward(await config(), 'rm.yaml', { onStep: (_, l) => losses.push(l) });
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    expect(mean(losses.slice(-20))).toBeLessThan(mean(losses.slice(0, 20)) - 0.1);
    expect(res.eval!['eval/accuracy']).toBeGreaterThan(0.6); // chance is 0.5
    const logged = loggedKeys(res.runDir);
    for (const k of [
      'train/loss',
      'train/accuracy',
      'train/margin',
      'train/mean_reward',
      'train/min_reward',
      'train/max_reward',
      'train/num_tokens',
      'eval/loss',
      'eval/accuracy',
      'eval/margin',
    ])
      expect(logged, k).toContain(k);

    // The checkpoint: the fixture's architecture, labels and tensor names (transformers wrote those).
    const cfg = JSON.parse(readFileSync(join(res.lastCheckpoint, 'config.json'), 'utf8'));
    const ref = JSON.parse(readFileSync(join(FIXTURES, 'gpt2_seqcls', 'config.json'), 'utf8'));
    expect([cfg.architectures, cfg.id2label, typeof cfg.pad_token_id]).toEqual([
      ref.architectures,
      ref.id2label,
      'number',
    ]);
    const names = (d: string) => [...readSafetensors(join(d, 'model.safetensors')).tensors.keys()].sort();
    expect(names(res.lastCheckpoint)).toEqual(names(join(FIXTURES, 'gpt2_seqcls')));
    // Load, save again: the same bytes; scores from the reloaded model are finite and ordered as trained.
    const model = await loadPretrained(res.lastCheckpoint);
    const again = mkdtempSync(join(tmpdir(), 'anneal-rm-again-'));
    await model.savePretrained(again);
    expect(
      readFileSync(join(again, 'model.safetensors')).equals(
        readFileSync(join(res.lastCheckpoint, 'model.safetensors')),
      ),
    ).toBe(true);
    const tok = loadTokenizerSync(res.lastCheckpoint);
    // {prompt, completion} is scored as the recipe saw the pair: equal to the eval forward of the same tokens
    const pairs = [
      { prompt: 'Write a positive movie review:', completion: ' Great movie, I loved it.' },
      { prompt: 'Write a positive movie review:', completion: ' Awful, boring and bad.' },
    ];
    const s = scoreTexts(model, tok, pairs);
    const ids = pairs.map((p) => [
      ...tok.encode(p.prompt),
      ...tok.encode(p.completion, { addSpecialTokens: false }),
      tok.eosTokenId!,
    ]);
    const one = ids.map((row) =>
      tf.tidy(
        () =>
          model
            .forward({ inputIds: tf.tensor2d([row], [1, row.length], 'int32'), training: false })
            .logits.dataSync()[0],
      ),
    );
    s.forEach((v, i) => expect(Math.abs(v - one[i])).toBeLessThan(1e-5));
  });

  it('trains a LoRA reward model with the score head in full (adapter-only checkpoint)', async () => {
    const cfg = await config({
      peft: LoraConfigSchema.parse({ r: 4, loraAlpha: 8, targetModules: ['c_attn'] }),
      train: { batchSize: 4, maxSteps: 3, logEvery: 1, evalEvery: 3, evalBatches: 1, saveEvery: 3 },
    });
    const losses: number[] = [];
    const res = await runReward(cfg, 'rm.yaml', { onStep: (_, l) => losses.push(l) });
    expect(losses.length).toBe(3);
    expect(losses.every(Number.isFinite)).toBe(true);
    const keys = [...readSafetensors(join(res.lastCheckpoint, 'adapter_model.safetensors')).tensors.keys()];
    expect(keys.some((k) => k.includes('lora_A'))).toBe(true);
    expect(keys.some((k) => k.includes('score'))).toBe(true);
  });
});

function loggedKeys(runDir: string): string[] {
  return [...new Set(RunLogger.read(runDir).flatMap((m) => Object.keys(m)))];
}
