// The tiny random-init configs of today's families (configs/sft-qwen3-tiny.yaml,
// configs/sft-gemma3-tiny.yaml) train as shipped, shortened: each family's real tokenizer and
// chat template, the shipped chats, a falling loss, and a checkpoint transformers' layout loads.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ADDON_PATH, registerTorchBackend } from '@anneal/backend-torch';
import { loadConfig } from '@anneal/core';
import { loadPretrainedSync } from '@anneal/modeling';
import { SftConfigSchema, runSft } from '@anneal/trainers';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// On the torch backend: a 151k / 262k-token head is too slow for tfjs's JS kernels in CI time
// (CI builds the addon: there a missing one fails instead of skipping).
const required = process.env.CI === 'true' || Boolean(process.env.ANNEAL_REQUIRE_TORCH);
const d = existsSync(ADDON_PATH) || required ? describe : describe.skip;

d.each([
  ['sft-qwen3-tiny.yaml', 'qwen3', 'Qwen3ForCausalLM'],
  ['sft-gemma3-tiny.yaml', 'gemma3_text', 'Gemma3ForCausalLM'],
])('configs/%s', (file, modelType, arch) => {
  it('trains from scratch on the shipped chats (shortened): the loss falls, the checkpoint loads as its family', async () => {
    registerTorchBackend({ warn: () => undefined });
    const { config } = loadConfig(join(ROOT, 'configs', file), SftConfigSchema);
    const cfg = {
      ...config,
      backend: 'torch' as const,
      outputDir: mkdtempSync(join(tmpdir(), 'anneal-tiny-')),
      tokenizer: { ...config.tokenizer, path: join(ROOT, config.tokenizer.path!) },
      data: { ...config.data, train: join(ROOT, config.data.train as string), maxLength: 64, cacheDir: null },
      schedule: { ...config.schedule, kind: 'constant' as const, warmupSteps: 0 },
      train: { ...config.train, batchSize: 2, maxSteps: 6, evalEvery: 6, evalBatches: 1, saveEvery: 6 },
      sample: { prompts: [], maxNewTokens: 1 },
    };
    const losses: number[] = [];
    const run = await runSft(cfg, file, { onStep: (_, l) => losses.push(l) });
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(Math.min(...losses.slice(-2))).toBeLessThan(Math.max(...losses.slice(0, 2)));
    const saved = JSON.parse(readFileSync(join(run.lastCheckpoint, 'config.json'), 'utf8'));
    expect(saved).toMatchObject({ model_type: modelType, architectures: [arch] });
    const back = loadPretrainedSync(run.lastCheckpoint);
    expect(back.modelType).toBe(modelType);
    back.dispose();
  }, 120_000);
});
