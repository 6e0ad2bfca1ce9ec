// train.lossChunkSize in every recipe whose loss reads an LM head (CLM, SFT, DPO, PPO): the
// head in chunks of 7 tokens gives the losses and metrics of the one-pass head, step for step
// (within 1e-5 on torch: float32 sums in another order). The torch backend (CI builds it).
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADDON_PATH, registerTorchBackend } from '@anneal/backend-torch';
import { RunLogger, validateConfig } from '@anneal/core';
import { DpoConfigSchema, runDpo } from '@anneal/dpo';
import { PpoConfigSchema, runPpo, type RewardFn } from '@anneal/ppo';
import { trainByteLevelBpe } from '@anneal/tokenizers';
import { SENTIMENT_PAIRS, pairTexts, tinyGpt2Dir } from '@anneal/training';
import { ClmConfigSchema, SftConfigSchema, runClm, runSft } from '@anneal/trainers';

const FIXTURES = fileURLToPath(new URL('../../shared/fixtures/hf/', import.meta.url));
const MOBY = fileURLToPath(new URL('../datasets/moby-dick/moby-dick.txt', import.meta.url));
const SFT_ROWS = fileURLToPath(new URL('../datasets/sentiment/sft-prompt-completion.jsonl', import.meta.url));
const required = process.env.CI === 'true' || Boolean(process.env.ANNEAL_REQUIRE_TORCH);
const d = existsSync(ADDON_PATH) || required ? describe : describe.skip;

const out = (name: string) => mkdtempSync(join(tmpdir(), `anneal-chunked-${name}-`));

/** Every logged train/ metric of a run, per step. */
const trainMetrics = (runDir: string) =>
  RunLogger.read(runDir)
    .filter((m) => Object.keys(m).some((k) => k.startsWith('train/')))
    .map((m) => Object.fromEntries(Object.entries(m).filter(([k]) => k.startsWith('train/') && !k.includes('memory'))));

/** The two runs logged the same metrics, equal within 1e-5 (relative above 1). */
function expectSameMetrics(a: Array<Record<string, unknown>>, b: Array<Record<string, unknown>>, keys: string[]) {
  expect(a.length).toBeGreaterThan(0);
  expect(b.length).toBe(a.length);
  a.forEach((row, i) => {
    for (const k of keys) {
      const [x, y] = [row[k] as number, b[i][k] as number];
      expect(typeof x, `${k} logged at row ${i}`).toBe('number');
      // relative, or absolute below 1 (a DPO reward is a small difference of large log-probs)
      expect(Math.abs(x - y) / Math.max(1, Math.abs(x)), `${k} at row ${i}`).toBeLessThanOrEqual(1e-5);
    }
  });
}

d('train.lossChunkSize: every LM recipe gives the one-pass losses', () => {
  let gpt2Dir = '';
  beforeAll(async () => {
    registerTorchBackend({ warn: () => undefined });
    gpt2Dir = await tinyGpt2Dir(pairTexts(300), { vocabSize: 400, nLayer: 1, nEmbd: 32 });
  });

  it('CLM (GPT-2 from scratch, dropout on)', async () => {
    const corpus = join(out('clm'), 'corpus.txt');
    writeFileSync(corpus, readFileSync(MOBY, 'utf8').slice(0, 20_000));
    const run = async (lossChunkSize: number) =>
      runClm(
        validateConfig(ClmConfigSchema, {
          name: 'clm',
          recipe: 'clm',
          backend: 'torch',
          outputDir: out('clm'),
          tokenizer: { train: { vocabSize: 300 } },
          model: { arch: 'gpt2', config: { nLayer: 2, nHead: 2, nEmbd: 32, residPdrop: 0.1, embdPdrop: 0.1 } },
          data: { train: corpus, valFraction: 0.1, blockSize: 16 },
          optim: { lr: 3e-3 },
          train: { batchSize: 4, maxSteps: 4, logEvery: 1, evalEvery: 4, evalBatches: 2, saveEvery: 4, lossChunkSize },
        }),
        'clm.yaml',
      );
    const [a, b] = [await run(0), await run(7)];
    expectSameMetrics(trainMetrics(a.runDir), trainMetrics(b.runDir), ['train/loss']);
    const evalLoss = (dir: string) => RunLogger.read(dir).find((m) => 'eval/loss' in m)!['eval/loss'] as number;
    expect(Math.abs(evalLoss(a.runDir) - evalLoss(b.runDir))).toBeLessThan(1e-5 * evalLoss(a.runDir));
  }, 60_000);

  it('SFT (Qwen3 fixture, LoRA all-linear): loss, mean_token_accuracy and entropy', async () => {
    const rows = join(out('sft'), 'rows.jsonl');
    writeFileSync(rows, readFileSync(SFT_ROWS, 'utf8').trim().split('\n').slice(0, 40).join('\n'));
    const tokDir = out('sft-tok');
    const texts = readFileSync(rows, 'utf8')
      .split('\n')
      .map((l) => Object.values(JSON.parse(l)).join(' '));
    (
      await trainByteLevelBpe([texts.join('\n')], {
        vocabSize: 400,
        specialTokens: ['<|endoftext|>'],
        eosToken: '<|endoftext|>',
        padToken: '<|endoftext|>',
      })
    ).save(tokDir);
    const said: string[] = [];
    const none = () => undefined;
    const reporter = { start: none, step: none, stop: none, info: (m: string) => void said.push(m) };
    const run = async (lossChunkSize: number) =>
      runSft(
        validateConfig(SftConfigSchema, {
          name: 'sft',
          recipe: 'sft',
          backend: 'torch',
          outputDir: out('sft'),
          model: { pretrained: join(FIXTURES, 'qwen3') },
          tokenizer: { path: tokDir },
          data: {
            train: rows,
            format: 'prompt-completion',
            maxLength: 64,
            onBadRow: 'skip',
            evalFraction: 0.1,
            cacheDir: null,
          },
          peft: { r: 4, loraAlpha: 8, targetModules: 'all-linear' },
          optim: { lr: 3e-3 },
          train: { batchSize: 4, maxSteps: 3, logEvery: 1, evalEvery: 3, evalBatches: 1, saveEvery: 3, lossChunkSize },
        }),
        'sft.yaml',
        { reporter },
      );
    const [a, b] = [await run(0), await run(7)];
    // the first step of each run says what its memory holds (trainable: the adapters' 0.0xM parameters)
    const lines = said.filter((m) => m.startsWith('memory: '));
    expect(lines).toHaveLength(2);
    for (const m of lines)
      expect(m).toMatch(
        /^memory: \d+ MB of tensors before the first step; 0\.\d\dM trainable parameters add \d+ MB of gradients and \d+ MB of AdamW moments; the first micro-batch \(\d+ tokens\) kept \d+ MB for its backward pass/,
      );
    expectSameMetrics(trainMetrics(a.runDir), trainMetrics(b.runDir), [
      'train/loss',
      'train/mean_token_accuracy',
      'train/entropy',
    ]);
  }, 60_000);

  it('DPO (GPT-2, a frozen reference): loss, rewards and logits/* metrics', async () => {
    const run = async (lossChunkSize: number) =>
      runDpo(
        validateConfig(DpoConfigSchema, {
          name: 'dpo',
          recipe: 'dpo',
          backend: 'torch',
          outputDir: out('dpo'),
          model: { pretrained: gpt2Dir },
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
          train: { batchSize: 4, maxSteps: 3, logEvery: 1, evalEvery: 3, evalBatches: 1, saveEvery: 3, lossChunkSize },
        }),
        'dpo.yaml',
      );
    const [a, b] = [await run(0), await run(7)];
    expectSameMetrics(trainMetrics(a.runDir), trainMetrics(b.runDir), [
      'train/loss',
      'train/rewards/chosen',
      'train/logps/rejected',
      'train/logits/chosen',
    ]);
  }, 60_000);

  it('PPO (GPT-2): policy loss and entropy of the first updates', async () => {
    const countE: RewardFn = (_, completions) => completions.map((c) => (c.match(/e/g) ?? []).length / 4);
    const run = async (lossChunkSize: number) => {
      const m: Array<Record<string, unknown>> = [];
      await runPpo(
        validateConfig(PpoConfigSchema, {
          name: 'ppo',
          recipe: 'ppo',
          backend: 'torch',
          outputDir: out('ppo'),
          model: { pretrained: gpt2Dir },
          prompts: { train: SENTIMENT_PAIRS, column: 'prompt', evalFraction: 0.1 },
          ppo: { batchSize: 8, numMiniBatches: 2, totalEpisodes: 16, responseLength: 8, temperature: 0.9 },
          optim: { lr: 3e-3, weightDecay: 0 },
          train: { logEvery: 1, evalEvery: 10, saveEvery: 10, lossChunkSize },
        }),
        'ppo.yaml',
        { rewardFn: countE, onUpdate: (_, x) => void m.push(x) },
      );
      return m;
    };
    const [a, b] = [await run(0), await run(7)];
    expectSameMetrics(a, b, ['loss/policy_avg', 'objective/entropy', 'objective/kl']);
  }, 60_000);
});
