// A tiny CLM config for tests: a 2-layer GPT-2 on the first 20k characters of Moby-Dick.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '@anneal/core';
import { ClmConfigSchema, type ClmConfig } from './config.js';

export function tinyClmConfig(
  overrides: Partial<Record<'train' | 'optim' | 'schedule' | 'model', object>> & {
    backend?: ClmConfig['backend'];
  } = {},
): ClmConfig {
  const dir = mkdtempSync(join(tmpdir(), 'anneal-clm-'));
  const corpus = join(dir, 'corpus.txt');
  const text = readFileSync(new URL('../../../../datasets/moby-dick/moby-dick.txt', import.meta.url), 'utf8').slice(
    0,
    20_000,
  );
  writeFileSync(corpus, text);
  return validateConfig(ClmConfigSchema, {
    name: 'tiny',
    recipe: 'clm',
    seed: 7,
    backend: overrides.backend ?? 'cpu',
    outputDir: join(dir, 'runs'),
    tokenizer: { train: { vocabSize: 300 } },
    model: {
      arch: 'gpt2',
      config: { nLayer: 2, nHead: 2, nEmbd: 32, residPdrop: 0.1, attnPdrop: 0.1, embdPdrop: 0.1, ...overrides.model },
    },
    data: { train: corpus, valFraction: 0.1, blockSize: 16 },
    optim: { lr: 3e-3, ...overrides.optim },
    schedule: { kind: 'cosine', warmupSteps: 3, ...overrides.schedule },
    train: {
      batchSize: 4,
      maxSteps: 12,
      logEvery: 1,
      evalEvery: 4,
      evalBatches: 2,
      saveEvery: 4,
      saveTotalLimit: 2,
      histogramsEvery: 6,
      sample: { every: 6, prompts: ['The'], maxNewTokens: 4 },
      ...overrides.train,
    },
  });
}
