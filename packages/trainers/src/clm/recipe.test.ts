import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { NumericError, RunLogger, listCheckpoints, readSafetensors, readTrainerState, useBackend } from '@anneal/core';
import { fakeHubFetch } from '@anneal/core/testing';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, loadPretrained } from '@anneal/modeling';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { loadTokenizerSync } from '@anneal/tokenizers';
import { runClm } from './recipe.js';
import { tinyClmConfig } from './test-config.js';

async function lossesOf(
  run: (onStep: (s: number, l: number) => void) => Promise<unknown>,
): Promise<Map<number, number>> {
  const losses = new Map<number, number>();
  await run((s, l) => losses.set(s, l));
  return losses;
}

describe('CLM recipe', () => {
  it('gradient accumulation: batch 8 trains exactly as 4 x 2 accumulated (cpu, no dropout)', async () => {
    const noDropout = { nLayer: 2, nHead: 2, nEmbd: 32, residPdrop: 0, attnPdrop: 0, embdPdrop: 0 };
    const run = (train: object) =>
      lossesOf((onStep) =>
        runClm(tinyClmConfig({ train: { maxSteps: 5, ...train }, model: noDropout }), 'tiny.yaml', { onStep }),
      );
    const whole = await run({ batchSize: 8 });
    const accumulated = await run({ batchSize: 2, gradientAccumulationSteps: 4 });
    for (const [s, l] of whole) expect(Math.abs(l - accumulated.get(s)!), `step ${s}`).toBeLessThan(1e-5);
  });

  it('resumes exactly: every later loss equals the uninterrupted run (cpu, dropout on)', async () => {
    const cfgA = tinyClmConfig();
    const full = await lossesOf((onStep) => runClm(cfgA, 'tiny.yaml', { onStep }));
    expect(full.size).toBe(12);

    // Same config, stopped after step 5 (as Ctrl-C does), then resumed from the run folder.
    let stepsSeen = 0;
    const stopped = await runClm(tinyClmConfig(), 'tiny.yaml', {
      onStep: () => stepsSeen++,
      shouldStop: () => stepsSeen >= 5,
    });
    expect(stopped.stopped).toBe(true);
    expect(stopped.step).toBe(5);
    expect(readTrainerState(stopped.lastCheckpoint).step).toBe(5);

    const resumed = new Map<number, number>();
    const res = await runClm(tinyClmConfig(), 'tiny.yaml', {
      resume: stopped.runDir,
      onStep: (s, l) => resumed.set(s, l),
    });
    expect([...resumed.keys()]).toEqual([6, 7, 8, 9, 10, 11, 12]);
    for (const [s, l] of resumed)
      expect(Math.abs(l - full.get(s)!) / Math.abs(full.get(s)!), `step ${s}`).toBeLessThanOrEqual(1e-6);
    expect(res.step).toBe(12);

    // metrics.jsonl reads as one run: one train/loss per step 1..12.
    const steps = RunLogger.read(res.runDir)
      .filter((r) => 'train/loss' in r)
      .map((r) => r.step);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('resumes exactly from an older checkpoint folder too', async () => {
    const full = await lossesOf((onStep) => runClm(tinyClmConfig(), 'tiny.yaml', { onStep }));
    const cfg = tinyClmConfig({ train: { saveTotalLimit: 5 } });
    const done = await runClm(cfg, 'tiny.yaml');
    const step4 = join(done.runDir, 'checkpoints', 'step-4');
    const resumed = await lossesOf((onStep) => runClm(cfg, 'tiny.yaml', { resume: step4, onStep }));
    for (const [s, l] of resumed) expect(Math.abs(l - full.get(s)!) / Math.abs(full.get(s)!)).toBeLessThanOrEqual(1e-6);
    expect([...resumed.keys()][0]).toBe(5);
  });

  it('writes Hugging Face checkpoints, keeps the newest K plus the best, and learns', async () => {
    const cfg = tinyClmConfig({ train: { maxSteps: 16, saveTotalLimit: 1 } });
    const r = await runClm(cfg, 'tiny.yaml');
    const ckpts = listCheckpoints(r.runDir).map((c) => c.step);
    const state = readTrainerState(r.lastCheckpoint);
    expect(ckpts).toContain(16);
    expect(ckpts.length).toBeLessThanOrEqual(2);
    expect(state.bestMetric?.name).toBe('eval/loss');
    expect(state.bestMetric!.checkpoint).toMatch(/^checkpoints\/step-\d+$/); // relative to the run folder, which can move
    expect(existsSync(join(r.runDir, state.bestMetric!.checkpoint))).toBe(true);
    expect(existsSync(join(r.lastCheckpoint, 'trainer_state.json'))).toBe(false); // transformers' file name, another schema: not written
    for (const f of [
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
      'special_tokens_map.json',
      'optimizer.safetensors',
      'anneal_state.json',
    ]) {
      expect(existsSync(join(r.lastCheckpoint, f)), f).toBe(true);
    }
    expect(state).toMatchObject({
      step: 16,
      backend: 'cpu',
      rng: { seed: 7 },
      data: { epoch: expect.any(Number), position: expect.any(Number) },
    });
    expect(state.versions['@tensorflow/tfjs-core']).toBe(tf.version_core);
    // The checkpoint is a loadable HF model + tokenizer.
    const model = Gpt2LMHeadModel.fromPretrained(r.lastCheckpoint);
    expect(model.config.vocabSize).toBe(loadTokenizerSync(r.lastCheckpoint).vocabSize);
    model.dispose();
    expect(readSafetensors(join(r.lastCheckpoint, 'optimizer.safetensors')).metadata.step).toBe('16');
    // Learning: loss falls from ln(vocab) well below the start.
    const train = RunLogger.read(r.runDir).filter((x) => 'train/loss' in x);
    expect(train[0]['train/loss']).toBeGreaterThan(Math.log(300) - 0.3);
    expect(train.at(-1)!['train/loss']).toBeLessThan(train[0]['train/loss'] - 0.5);
    expect(readFileSync(join(r.runDir, 'config.yaml'), 'utf8')).toContain('recipe: clm');
    expect(JSON.parse(readFileSync(join(r.runDir, 'run.json'), 'utf8')).backend).toBe('cpu');
  });

  it('trains for numEpochs passes over the blocks, and stops early when eval/loss stops improving', async () => {
    const byEpochs = await runClm(
      tinyClmConfig({ train: { maxSteps: undefined, numEpochs: 0.05, evalEvery: 100, saveEvery: 100 } }),
      'tiny.yaml',
    );
    const rows = RunLogger.read(byEpochs.runDir).filter((m) => 'train/epoch' in m);
    const epoch = rows.at(-1)!['train/epoch'];
    // ceil(0.05 * blocks / 4) steps of 4 blocks: just past 0.05 of an epoch, by less than one batch
    expect(epoch).toBeGreaterThanOrEqual(0.05);
    expect(epoch - 0.05).toBeLessThan(4 / ((byEpochs.step * 4) / epoch));
    // lr 1e-12 (updates below float32 resolution): eval/loss never improves on the first evaluation (step 4), so patience 1 ends the run at step 8
    const early = await runClm(
      tinyClmConfig({ optim: { lr: 1e-12 }, train: { maxSteps: 40, earlyStoppingPatience: 1 } }),
      'tiny.yaml',
    );
    expect(early.step).toBe(8);
    expect(early.stopped).toBe(false);
    expect(readTrainerState(early.lastCheckpoint).step).toBe(8);
  });

  it('continues pretraining a model given as a Hub repo id, from the Hugging Face cache (offline)', async () => {
    const fixture = fileURLToPath(new URL('../../../../../shared/fixtures/hf/gpt2/', import.meta.url));
    const files = Object.fromEntries(
      ['config.json', 'model.safetensors'].map((f) => [f, readFileSync(join(fixture, f))]),
    );
    const cacheDir = mkdtempSync(join(tmpdir(), 'anneal-hub-'));
    const fetch = fakeHubFetch(
      [{ type: 'model', name: 'anneal-test/tiny-gpt2', revisions: { main: files }, commit: 'b'.repeat(40) }],
      [],
    );
    await useBackend('cpu', {});
    (await loadPretrained('anneal-test/tiny-gpt2', { cacheDir, fetch })).dispose(); // fills the cache, as a first online run would
    const env = { cache: process.env.HF_HUB_CACHE, offline: process.env.HF_HUB_OFFLINE };
    process.env.HF_HUB_CACHE = cacheDir;
    process.env.HF_HUB_OFFLINE = '1';
    try {
      const cfg = tinyClmConfig({ train: { maxSteps: 2 } });
      cfg.model = { arch: 'gpt2', pretrained: 'anneal-test/tiny-gpt2', config: {} };
      const r = await runClm(cfg, 'tiny.yaml');
      const trained = Gpt2LMHeadModel.fromPretrained(r.lastCheckpoint);
      expect(trained.config.nEmbd).toBe(JSON.parse(String(files['config.json'])).n_embd);
      expect(trained.config.vocabSize).toBe(1000); // the pretrained model's, not the tokenizer's 300
      trained.dispose();
    } finally {
      for (const [k, v] of [
        ['HF_HUB_CACHE', env.cache],
        ['HF_HUB_OFFLINE', env.offline],
      ] as const)
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });

  it('with LoRA on a pretrained model: adapter-only checkpoints, the loss falls, and a resumed run continues exactly', async () => {
    await useBackend('cpu', {});
    const dir = mkdtempSync(join(tmpdir(), 'anneal-clm-base-'));
    await Gpt2LMHeadModel.init(
      { ...GPT2_DEFAULTS, vocabSize: 320, nPositions: 32, nLayer: 2, nHead: 2, nEmbd: 32 },
      4,
    ).savePretrained(dir);
    const lora = (train: object = {}) => {
      const cfg = tinyClmConfig({ optim: { lr: 1e-2 }, train: { maxSteps: 8, evalEvery: 4, saveEvery: 4, ...train } });
      return {
        ...cfg,
        model: { arch: 'gpt2' as const, pretrained: dir, config: {} },
        peft: LoraConfigSchema.parse({ r: 4, loraAlpha: 8, loraDropout: 0.1, targetModules: 'all-linear' }),
      };
    };
    const full = await lossesOf((onStep) => runClm(lora(), 'tiny.yaml', { onStep }));
    expect(Math.max(full.get(7)!, full.get(8)!)).toBeLessThan(Math.min(full.get(1)!, full.get(2)!));
    let seen = 0;
    const cfg = lora();
    const stopped = await runClm(cfg, 'tiny.yaml', { onStep: () => seen++, shouldStop: () => seen >= 3 });
    expect(existsSync(join(stopped.lastCheckpoint, 'adapter_model.safetensors'))).toBe(true);
    expect(existsSync(join(stopped.lastCheckpoint, 'model.safetensors'))).toBe(false);
    const resumed = await lossesOf((onStep) => runClm(cfg, 'tiny.yaml', { resume: stopped.runDir, onStep }));
    expect([...resumed.keys()]).toEqual([4, 5, 6, 7, 8]);
    for (const [s, l] of resumed)
      expect(Math.abs(l - full.get(s)!) / Math.abs(full.get(s)!), `step ${s}`).toBeLessThanOrEqual(1e-6);
  });

  it('keeps the tensor count flat across steps (no leaks)', async () => {
    const counts: number[] = [];
    await runClm(tinyClmConfig({ backend: 'wasm', train: { maxSteps: 14 } }), 'tiny.yaml', {
      onStep: () => counts.push(tf.memory().numTensors),
    });
    // Steps 4, 8, 12 also evaluate, sample and save; the count must not move at all.
    expect(new Set(counts.slice(1)).size).toBe(1);
  });

  it('stops with an error naming the step on a NaN loss, leaving the last checkpoint intact', async () => {
    const cfg = tinyClmConfig({
      optim: { lr: 1e30, gradClip: 0 },
      schedule: { warmupSteps: 0, kind: 'constant' },
      train: { saveEvery: 1 },
    });
    const err = await runClm(cfg, 'tiny.yaml').catch((e) => e);
    expect(err).toBeInstanceOf(NumericError);
    expect(err.message).toMatch(/^step (\d+): (loss|gradient norm) is (NaN|Infinity)/);
    const failed = Number(/^step (\d+)/.exec(err.message)![1]);
    const ckpts = listCheckpoints(join(cfg.outputDir, cfg.name));
    expect(ckpts.at(-1)!.step).toBe(failed - 1);
    expect(err.hint).toContain(`step-${failed - 1}`);
    Gpt2LMHeadModel.fromPretrained(ckpts.at(-1)!.dir).dispose();
  });

  it('can skip non-finite steps instead', async () => {
    const cfg = tinyClmConfig({
      optim: { lr: 1e30, gradClip: 0 },
      schedule: { warmupSteps: 0, kind: 'constant' },
      train: { onNonFinite: 'skip', maxSteps: 5, evalEvery: 100, sample: { every: 100 } },
    });
    const r = await runClm(cfg, 'tiny.yaml');
    expect(r.step).toBe(5);
  });
});
