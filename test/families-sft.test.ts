// Each of today's families trains through the SFT recipe with LoRA all-linear: transformers'
// tiny fixture as the base, a byte-level BPE trained here as its tokenizer, the shipped
// prompt-completion rows; the loss falls and the checkpoint is a PEFT adapter. On the torch
// backend (CI builds it; a missing addon fails there instead of skipping).
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADDON_PATH, registerTorchBackend } from '@anneal/backend-torch';
import { validateConfig } from '@anneal/core';
import { trainByteLevelBpe } from '@anneal/tokenizers';
import { SftConfigSchema, runSft, type SftConfig } from '@anneal/trainers';

const FIXTURES = fileURLToPath(new URL('../../shared/fixtures/hf/', import.meta.url));
const DATA = fileURLToPath(new URL('../datasets/sentiment/sft-prompt-completion.jsonl', import.meta.url));
const required = process.env.CI === 'true' || Boolean(process.env.ANNEAL_REQUIRE_TORCH);
const d = existsSync(ADDON_PATH) || required ? describe : describe.skip;

d("SFT with LoRA on today's families", () => {
  const tokDir = mkdtempSync(join(tmpdir(), 'anneal-sft-families-tok-'));
  const rows = join(tokDir, 'rows.jsonl'); // 160 of the shipped rows: enough for 8 steps
  beforeAll(async () => {
    registerTorchBackend({ warn: () => undefined });
    const lines = readFileSync(DATA, 'utf8').trim().split('\n').slice(0, 160);
    writeFileSync(rows, lines.join('\n'));
    const texts = lines.map((l) => Object.values(JSON.parse(l)).join(' '));
    const tok = await trainByteLevelBpe([texts.join('\n')], {
      vocabSize: 400, // below the fixtures' 1000 ids
      specialTokens: ['<|endoftext|>'],
      eosToken: '<|endoftext|>',
      padToken: '<|endoftext|>',
    });
    tok.save(tokDir);
  });

  /** The family's fixture with this tokenizer, as a model folder. */
  const modelDir = (family: string) => {
    const dir = mkdtempSync(join(tmpdir(), `anneal-sft-${family}-`));
    for (const f of ['config.json', 'generation_config.json', 'model.safetensors'])
      copyFileSync(join(FIXTURES, family, f), join(dir, f));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tokDir, f), join(dir, f));
    return dir;
  };
  const config = (family: string, dir: string, gradientCheckpointing = false): SftConfig =>
    validateConfig(SftConfigSchema, {
      name: family,
      recipe: 'sft',
      backend: 'torch',
      outputDir: mkdtempSync(join(tmpdir(), 'anneal-sft-runs-')),
      model: { pretrained: dir },
      data: {
        train: rows,
        format: 'prompt-completion',
        maxLength: 96,
        onBadRow: 'skip',
        evalFraction: 0.05,
        cacheDir: null,
      },
      peft: { r: 8, loraAlpha: 16, targetModules: 'all-linear' },
      optim: { lr: 3e-3 },
      schedule: { kind: 'constant', warmupSteps: 0 },
      train: {
        batchSize: 4,
        maxSteps: 8,
        logEvery: 1,
        evalEvery: 8,
        evalBatches: 1,
        saveEvery: 8,
        gradientCheckpointing,
      },
    });

  it.each(['qwen3', 'mistral', 'smollm3', 'phi3', 'gemma3'])(
    '%s: the loss falls; checkpoints hold the adapter',
    async (family) => {
      const losses = new Map<number, number>();
      const run = await runSft(config(family, modelDir(family)), 'sft.yaml', { onStep: (s, l) => losses.set(s, l) });
      const [first, last] = [
        [1, 2],
        [7, 8],
      ].map((steps) => steps.map((k) => losses.get(k)!));
      expect(Math.max(...last)).toBeLessThan(Math.min(...first));
      const adapter = JSON.parse(readFileSync(join(run.lastCheckpoint, 'adapter_config.json'), 'utf8'));
      expect(adapter.target_modules.length).toBeGreaterThan(0);
    },
    60_000,
  );

  it('train.gradientCheckpointing: the same losses step for step (1e-6 relative on torch), LoRA on Qwen3', async () => {
    const dir = modelDir('qwen3');
    const said: string[] = [];
    const none = () => undefined;
    const reporter = { start: none, step: none, stop: none, info: (m: string) => void said.push(m) };
    const lossesOf = async (on: boolean) => {
      const losses: number[] = [];
      await runSft(config('qwen3', dir, on), 'sft.yaml', { onStep: (_, l) => losses.push(l), reporter });
      return losses;
    };
    const off = await lossesOf(false);
    expect(said.some((m) => m.startsWith('activation checkpointing'))).toBe(false);
    const on = await lossesOf(true);
    expect(said.filter((m) => m.startsWith('activation checkpointing: each of the 2 blocks'))).toHaveLength(1);
    expect(on).toHaveLength(8);
    on.forEach((l, i) => expect(Math.abs(l - off[i]) / off[i], `step ${i + 1}`).toBeLessThan(1e-6));
  }, 60_000);
});
