// The GRPO loss against TRL's own GRPOTrainer._compute_loss run on the same inputs
// (../shared/fixtures/hf/trl_losses, TRL v1.9.0): loss, its gradient with respect to the
// policy's per-token log-probs and the logged metrics, for every lossType with and without
// the KL term, symmetric and asymmetric clipping, two-sided clipping (delta) and
// sequence-level importance weights; group advantages by hand.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { groupAdvantages, grpoLoss, type GrpoLossType } from './index.js';

const FIXTURE = fileURLToPath(new URL('../../../../shared/fixtures/hf/trl_losses/io.json', import.meta.url));
interface Case {
  loss_type: GrpoLossType;
  beta: number;
  epsilon_low: number;
  epsilon_high: number;
  importance_sampling_level: 'token' | 'sequence';
  delta: number | null;
  loss: number;
  grad_wrt_per_token_logps: number[][];
  metrics: Record<string, number[]>;
}
const f = JSON.parse(readFileSync(FIXTURE, 'utf8')).grpo as {
  inputs: Record<string, number[][] | number[]>;
  max_completion_length: number;
  cases: Record<string, Case>;
};
const near = (got: number, want: number, what: string) =>
  expect(Math.abs(got - want), `${what}: ${got} vs ${want}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(want)));

describe('GRPO loss (TRL fixture)', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('loss, gradient and metrics of every case as TRL computes them', () => {
    const i = f.inputs;
    const mask = i.completion_mask as number[][];
    const maskSum = mask.flat().reduce((a, b) => a + b, 0);
    for (const [name, c] of Object.entries(f.cases))
      tf.tidy(() => {
        const t2 = (k: string) => tf.tensor2d(i[k] as number[][]);
        let metrics: Record<string, number> = {};
        const run = (logps: tf.Tensor) => {
          const r = grpoLoss(
            {
              perTokenLogps: logps as tf.Tensor2D,
              oldPerTokenLogps: t2('old_per_token_logps'),
              refPerTokenLogps: t2('ref_per_token_logps'),
              advantages: tf.tensor1d(i.advantages as number[]),
              completionMask: t2('completion_mask'),
              entropies: t2('entropies'),
            },
            {
              lossType: c.loss_type,
              beta: c.beta,
              epsilon: c.epsilon_low,
              epsilonHigh: c.epsilon_high,
              delta: c.delta ?? undefined,
              importanceSamplingLevel: c.importance_sampling_level,
              maxCompletionLength: f.max_completion_length,
              numItemsInBatch: maskSum + 5, // the fixture's dapo normalizer
            },
          );
          metrics = Object.fromEntries(Object.entries(r.metrics).map(([k, v]) => [k, v.dataSync()[0]]));
          return r.loss;
        };
        const { value, grad } = tf.valueAndGrad(run)(t2('per_token_logps'));
        near(value.dataSync()[0], c.loss, `${name} loss`);
        const g = grad.arraySync() as number[][];
        c.grad_wrt_per_token_logps.forEach((row, b) =>
          row.forEach((w, t) => near(g[b][t], w, `${name} grad[${b}][${t}]`)),
        );
        for (const k of ['kl', 'entropy', 'clip_ratio/low_mean', 'clip_ratio/high_mean', 'clip_ratio/region_mean'])
          if (c.metrics[k]) near(metrics[k], c.metrics[k][0], `${name} ${k}`);
        expect('kl' in metrics).toBe(c.beta !== 0);
      });
    expect(Object.keys(f.cases).length).toBe(11);
  });

  it('without old log-probs (one iteration per generation) the ratio is 1 and the gradient is the advantage-weighted mean', () => {
    tf.tidy(() => {
      const logps = tf.tensor2d([
        [-1, -2],
        [-0.5, -3],
      ]);
      const mask = tf.tensor2d([
        [1, 1],
        [1, 0],
      ]);
      const adv = tf.tensor1d([2, -1]);
      const g = tf.grad(
        (x: tf.Tensor) =>
          grpoLoss(
            { perTokenLogps: x as tf.Tensor2D, advantages: adv, completionMask: mask },
            { lossType: 'grpo', beta: 0, epsilon: 0.2 },
          ).loss,
      )(logps);
      // loss = −mean_b(mean_t(A_b · ratio)), ratio = 1 with gradient 1: d/dx = −A_b / (T_b · B)
      expect(Array.from(g.dataSync())).toEqual([-0.5, -0.5, 0.5, 0]);
    });
  });
});

describe('group advantages', () => {
  it('by hand: reward minus the group mean over the group std (+1e-4); an all-equal group gives zero and counts in frac_reward_zero_std', () => {
    const rewards = [1, 0, 0, 1, 0.5, 0.5, 0.5, 0.5];
    const { advantages, fracRewardZeroStd } = groupAdvantages(rewards, 4);
    const s = Math.sqrt((4 * 0.25) / 3); // unbiased std of [1, 0, 0, 1]
    [0.5, -0.5, -0.5, 0.5].forEach((a, i) => expect(advantages[i]).toBeCloseTo(a / (s + 1e-4), 6));
    for (let i = 4; i < 8; i++) expect(advantages[i]).toBe(0);
    expect(fracRewardZeroStd).toBe(0.5);
    // 'none': centred only; 'batch': the whole batch's std
    expect(Array.from(groupAdvantages(rewards, 4, 'none').advantages.slice(0, 4))).toEqual([0.5, -0.5, -0.5, 0.5]);
    const mean = 0.5;
    const batchStd = Math.sqrt(rewards.reduce((a, r) => a + (r - mean) ** 2, 0) / 7);
    expect(groupAdvantages(rewards, 4, 'batch').advantages[0]).toBeCloseTo(0.5 / (batchStd + 1e-4), 6);
    expect(() => groupAdvantages(rewards, 3)).toThrow(/groups of numGenerations 3/);
  });

  it('is finite, with finite gradients, at extreme inputs (log-ratios of ±60, advantages of 1e4, empty completions)', () => {
    tf.tidy(() => {
      const lp = tf.tensor2d([
        [-80, -1e-7, 0],
        [-0.5, -60, -3],
      ]);
      const old = tf.tensor2d([
        [-1e-7, -80, 0],
        [-0.5, -0.1, -3],
      ]);
      const ref = tf.tensor2d([
        [-1, -90, -1],
        [0, -1e-6, -70],
      ]);
      const mask = tf.tensor2d([
        [1, 1, 0],
        [0, 0, 0],
      ]); // the second completion is empty
      for (const lossType of ['grpo', 'bnpo', 'dr_grpo', 'dapo'] as const)
        for (const importanceSamplingLevel of ['token', 'sequence'] as const) {
          const run = (x: tf.Tensor) =>
            grpoLoss(
              {
                perTokenLogps: x as tf.Tensor2D,
                oldPerTokenLogps: old,
                refPerTokenLogps: ref,
                advantages: tf.tensor1d([1e4, -1e4]),
                completionMask: mask,
              },
              {
                lossType,
                beta: 0.04,
                epsilon: 0.2,
                epsilonHigh: 0.28,
                delta: 2,
                importanceSamplingLevel,
                maxCompletionLength: 3,
              },
            );
          const r = run(lp);
          expect(Number.isFinite(r.loss.dataSync()[0]), `${lossType} ${importanceSamplingLevel}`).toBe(true);
          for (const m of Object.values(r.metrics)) expect(Number.isFinite(m.dataSync()[0])).toBe(true);
          const g = tf.grad((x: tf.Tensor) => run(x).loss)(lp);
          expect(Array.from(g.dataSync()).every(Number.isFinite), `${lossType} ${importanceSamplingLevel} grad`).toBe(
            true,
          );
        }
    });
  });
});
