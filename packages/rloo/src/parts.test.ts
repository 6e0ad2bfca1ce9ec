// RLOO's pieces by hand: the leave-one-out baseline (with a group of equal rewards: zero
// advantage, counted in frac_reward_zero_std), the KL that comes off the reward, reward
// clipping and batch normalization; the sequence-level clipped loss, its gradient (finite
// differences) and clip metrics on both sides of the clip range.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { rlooAdvantages, rlooLoss } from './index.js';

beforeAll(async () => {
  await useBackend('cpu');
});

describe('leave-one-out advantages', () => {
  it('each reward against the mean of the other completions of its prompt', () => {
    // group 1: [1, 0, 0, 1] -> baselines [1/3, 2/3, 2/3, 1/3]; group 2: all 2 -> 0
    const r = rlooAdvantages([1, 0, 0, 1, 2, 2, 2, 2], { numGenerations: 4 });
    [2 / 3, -2 / 3, -2 / 3, 2 / 3, 0, 0, 0, 0].forEach((a, i) => expect(r.advantages[i]).toBeCloseTo(a, 6));
    expect(r.fracRewardZeroStd).toBe(0.5);
    expect(r.kl).toBeUndefined();
    // G = 2: A = r_i − r_other
    expect(Array.from(rlooAdvantages([3, 1], { numGenerations: 2 }).advantages)).toEqual([2, -2]);
    expect(() => rlooAdvantages([1, 2, 3], { numGenerations: 2 })).toThrow(/groups of numGenerations 2/);
  });

  it('beta × the summed k1 KL comes off each reward first; clipping before that; normalization after', () => {
    // two completions of T = 3, the second only 2 tokens long
    const oldLogps = [-1, -2, -3, -1, -1, -9];
    const refLogps = [-1.5, -2, -2, -2, -1, 0];
    const mask = [1, 1, 1, 1, 1, 0];
    // KL sums: (0.5 + 0 − 1) = −0.5 and (1 + 0) = 1; mean per token = 0.5 / 5
    const r = rlooAdvantages([1, 1], { numGenerations: 2, beta: 0.1 }, { oldLogps, refLogps, mask, T: 3 });
    expect(r.rewards[0]).toBeCloseTo(1.05, 6);
    expect(r.rewards[1]).toBeCloseTo(0.9, 6);
    expect(r.advantages[0]).toBeCloseTo(0.15, 6);
    expect(r.kl).toBeCloseTo(0.1, 6);
    const clipped = rlooAdvantages([5, -5, 0.5, 0], { numGenerations: 2, rewardClipRange: [-1, 1] });
    expect(Array.from(clipped.advantages)).toEqual([2, -2, 0.5, -0.5]);
    const norm = rlooAdvantages([5, -5, 0.5, 0], { numGenerations: 2, normalizeAdvantages: true }).advantages;
    const raw = [10, -10, 0.5, -0.5];
    const std = Math.sqrt(raw.reduce((s, x) => s + x * x, 0) / 3); // mean 0
    raw.forEach((a, i) => expect(norm[i]).toBeCloseTo(a / (std + 1e-4), 5));
    expect(() => rlooAdvantages([1, 1], { numGenerations: 2, beta: 0.1 })).toThrow(/needs the old and reference/);
  });
});

describe('RLOO loss', () => {
  const mask = [
    [1, 1, 0],
    [1, 1, 1],
    [1, 0, 0],
  ];
  const old = [
    [-1, -1, 0],
    [-2, -1, -1],
    [-0.5, 0, 0],
  ];
  const adv = [1, -1, 2];
  const run = (lp: number[][], o = { epsilon: 0.2 }) =>
    tf.tidy(() => {
      const r = rlooLoss(
        {
          perTokenLogps: tf.tensor2d(lp),
          oldPerTokenLogps: tf.tensor2d(old),
          advantages: tf.tensor1d(adv),
          completionMask: tf.tensor2d(mask),
        },
        o,
      );
      return [r.loss, ...Object.values(r.metrics)].map((x) => x.dataSync()[0]);
    });

  it('is −mean(min(ratio·A, clip(ratio)·A)) over completions with a per-sequence ratio', () => {
    // log-ratios per sequence: +0.1 (inside), −0.5 (A < 0: clipped low), +0.3 (A > 0: clipped high);
    // a masked token's log-prob does not count
    const lp = [
      [-0.95, -0.95, -7],
      [-2.2, -1.2, -1.1],
      [-0.2, 5, 5],
    ];
    const [loss, low, high, region] = run(lp);
    const want = -(Math.exp(0.1) * 1 + Math.max(Math.exp(-0.5), 0.8) * -1 + Math.min(Math.exp(0.3), 1.2) * 2) / 3;
    expect(loss).toBeCloseTo(want, 5);
    expect([low, high, region].map((x) => x * 3)).toEqual([1, 1, 2].map((x) => expect.closeTo(x, 5)));
  });

  it('has the gradient finite differences give', () => {
    const lp = [
      [-0.95, -0.95, -7],
      [-2.05, -1.02, -1.0],
      [-0.4, 5, 5],
    ];
    const grad = tf.tidy(() =>
      tf
        .grad(
          (x: tf.Tensor) =>
            rlooLoss(
              {
                perTokenLogps: x as tf.Tensor2D,
                oldPerTokenLogps: tf.tensor2d(old),
                advantages: tf.tensor1d(adv),
                completionMask: tf.tensor2d(mask),
              },
              { epsilon: 0.2 },
            ).loss,
        )(tf.tensor2d(lp))
        .arraySync(),
    ) as number[][];
    const h = 1e-3;
    for (let b = 0; b < 3; b++)
      for (let t = 0; t < 3; t++) {
        const up = lp.map((r) => [...r]);
        const down = lp.map((r) => [...r]);
        up[b][t] += h;
        down[b][t] -= h;
        expect(grad[b][t], `[${b}, ${t}]`).toBeCloseTo((run(up)[0] - run(down)[0]) / (2 * h), 3);
      }
  });

  it('is finite, with finite gradients, at extreme log-ratios (±100) and advantages (1e4)', () => {
    tf.tidy(() => {
      const lp = tf.tensor2d([
        [-100, -1e-7, -1],
        [-0.1, -0.2, -0.3],
        [-1e-7, 0, 0],
      ]);
      const run = (x: tf.Tensor) =>
        rlooLoss(
          {
            perTokenLogps: x as tf.Tensor2D,
            oldPerTokenLogps: tf.tensor2d(old),
            advantages: tf.tensor1d([1e4, -1e4, 1e4]),
            completionMask: tf.tensor2d(mask),
          },
          { epsilon: 0.2, epsilonHigh: 0.28 },
        ).loss;
      expect(Number.isFinite(run(lp).dataSync()[0])).toBe(true);
      expect(Array.from(tf.grad(run)(lp).dataSync()).every(Number.isFinite)).toBe(true);
    });
  });
});
