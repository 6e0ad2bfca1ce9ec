// The shared outer loop with a recipe's own update (PPO's kind: not the supervised step):
// the recipe's progress goes into every checkpoint's state, a resumed loop starts after the
// saved step, a NaN update stops with an error naming the step or is skipped as configured,
// and a recipe without a data-parallel mode refuses anneal launch.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, ConfigError, NumericError, RunLogger, useBackend, type Collective } from '@anneal/core';
import { runLoop, type RunLoopConfig, type RunLoopParts } from './index.js';

const cfg = (onNonFinite: 'error' | 'skip' = 'error'): RunLoopConfig => ({
  seed: 1,
  optim: { lr: 0.1 },
  schedule: { kind: 'constant', warmupSteps: 0, minLrRatio: 0 },
  train: { logEvery: 1, evalEvery: 100, saveEvery: 2, saveTotalLimit: 5, onNonFinite },
});

/** A counting "recipe": each update adds its lr to w and counts episodes; update 3 may be NaN. */
function parts(runDir: string, o: { nanAt?: number; state?: RunLoopParts['state'] } = {}) {
  const w = tf.variable(tf.scalar(0));
  const params = new Map([['w', w]]);
  let episodes = Number((o.state?.data as { episodes?: number } | undefined)?.episodes ?? 0);
  const seen: number[] = [];
  const p: RunLoopParts = {
    runDir,
    logger: new RunLogger(runDir),
    state: o.state,
    backendName: 'cpu',
    maxSteps: 4,
    optimizer: new AdamW(params, { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 }),
    params,
    saveModel: async (d) => writeFileSync(join(d, 'w.json'), JSON.stringify(w.dataSync()[0])),
    saveTokenizer: (d) => writeFileSync(join(d, 'tokenizer.txt'), 'counting'),
    singleProcess: 'counting',
    progress: () => ({ epoch: 0, data: { episodes } }),
    update: (step, lr) => {
      seen.push(step);
      if (step === o.nanAt)
        return { shown: { name: 'score', value: NaN, meanOf: 1 }, tokensPerSecond: 0, problem: 'loss is NaN' };
      tf.tidy(() => w.assign(tf.add(w, lr)));
      episodes += 8;
      return { shown: { name: 'score', value: episodes, meanOf: 1 }, tokensPerSecond: 0 };
    },
    scalars: () => ({ 'objective/episodes': episodes }),
    dispose: () => w.dispose(),
  };
  return { p, seen };
}

const stateOf = (runDir: string, step: number) =>
  JSON.parse(readFileSync(join(runDir, 'checkpoints', `step-${step}`, 'anneal_state.json'), 'utf8'));

describe('runLoop with a recipe-defined update', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it("saves the recipe's progress in each checkpoint and resumes after the saved step", async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'anneal-runloop-'));
    const { p, seen } = parts(runDir);
    const r = await runLoop(cfg(), p, {});
    expect(r.step).toBe(4);
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(stateOf(runDir, 2)).toMatchObject({ step: 2, data: { episodes: 16 }, bestMetric: null });
    expect(stateOf(runDir, 4).data).toEqual({ episodes: 32 });
    expect(JSON.parse(readFileSync(join(runDir, 'checkpoints', 'step-2', 'w.json'), 'utf8'))).toBeCloseTo(0.2, 6);
    const metrics = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(metrics.map((m) => m['objective/episodes'])).toEqual([8, 16, 24, 32]);
    // the process's peak RSS, logged with every log step: positive and never falling
    const peaks = metrics.map((m) => m['train/peak_memory_mb']);
    expect(peaks.every((v, i) => v > 0 && (i === 0 || v >= peaks[i - 1]))).toBe(true);

    const again = parts(mkdtempSync(join(tmpdir(), 'anneal-runloop-')), { state: stateOf(runDir, 2) });
    await runLoop(cfg(), again.p, {});
    expect(again.seen).toEqual([3, 4]);
  });

  it('a non-finite update stops the run with an error naming the step, or is skipped (onNonFinite: skip)', async () => {
    const failing = parts(mkdtempSync(join(tmpdir(), 'anneal-runloop-')), { nanAt: 3 });
    await expect(runLoop(cfg('error'), failing.p, {})).rejects.toThrow(NumericError);
    expect(failing.seen).toEqual([1, 2, 3]);
    const skipping = parts(mkdtempSync(join(tmpdir(), 'anneal-runloop-')), { nanAt: 3 });
    const r = await runLoop(cfg('skip'), skipping.p, {});
    expect(r.step).toBe(4);
  });

  it('a recipe without a data-parallel mode refuses a multi-process launch', async () => {
    const collective = { rank: 0, worldSize: 2 } as Collective;
    const { p, seen } = parts(mkdtempSync(join(tmpdir(), 'anneal-runloop-')));
    await expect(runLoop(cfg(), p, { collective })).rejects.toThrow(ConfigError);
    await expect(runLoop(cfg(), p, { collective })).rejects.toThrow(/counting has no data-parallel mode yet/);
    expect(seen).toEqual([]);
  });
});
