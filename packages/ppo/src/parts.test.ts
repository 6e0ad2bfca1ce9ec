// PPO's pieces against hand-computed values: GAE (returns and advantages, with a response
// that ends early), masked whitening, the k1/k3 KL estimators, the adaptive KL rule, and
// the clipped policy and value losses on both sides of their clip boundaries.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { AdaptiveKlController, gae, klPerToken, maskedWhiten, ppoPolicyLoss, ppoValueLoss } from './index.js';

const near = (got: ArrayLike<number>, want: number[], digits = 6) =>
  want.forEach((w, i) => expect(got[i], `[${i}]`).toBeCloseTo(w, digits));

beforeAll(async () => {
  await useBackend('cpu', {});
});

describe('advantages', () => {
  it('GAE (γ 1, λ 0.95) by hand, a row that ends after two tokens contributing nothing after it', () => {
    // row 0: rewards [0, 0, 1], values [0.5, 0.4, 0.3]
    //   δ = [−0.1, −0.1, 0.7]; A2 = 0.7, A1 = −0.1 + 0.95·0.7 = 0.565, A0 = −0.1 + 0.95·0.565 = 0.43675
    // row 1: rewards [0, 2, (99)], values [1, 0.5, (7)], mask [1, 1, 0]
    //   A1 = 2 − 0.5 = 1.5, A0 = (0 + 0.5 − 1) + 0.95·1.5 = 0.925
    const { advantages, returns } = gae([0, 0, 1, 0, 2, 99], [0.5, 0.4, 0.3, 1, 0.5, 7], [1, 1, 1, 1, 1, 0], 2, 3, {
      gamma: 1,
      lam: 0.95,
    });
    near(advantages, [0.43675, 0.565, 0.7, 0.925, 1.5, 0]);
    near(returns, [0.93675, 0.965, 1.0, 1.925, 2.0, 0]);
  });

  it('GAE with λ 1 is the discounted return minus the value (Monte Carlo)', () => {
    // γ 0.9: returns-to-go of rewards [0, 0, 1] are [0.81, 0.9, 1]
    const { advantages, returns } = gae([0, 0, 1], [0.5, 0.4, 0.3], [1, 1, 1], 1, 3, { gamma: 0.9, lam: 1 });
    near(returns, [0.81, 0.9, 1]);
    near(advantages, [0.31, 0.5, 0.7]);
  });

  it('whitens over the masked entries only (unbiased variance)', () => {
    near(maskedWhiten([1, 2, 3, 100], [1, 1, 1, 0]), [-1, 0, 1, 0]);
    near(maskedWhiten([1, 2, 3, 100], [1, 1, 1, 0], false), [1, 2, 3, 0]);
  });
});

describe('KL', () => {
  it('k1 and k3 per token', () => {
    // log π = −1, log π_ref = −2: log r = −1 -> k1 1, k3 e^−1 − 1 + 1; and the other way round
    near(klPerToken([-1, -2], [-2, -1], 'k1'), [1, -1]);
    near(klPerToken([-1, -2], [-2, -1], 'k3'), [Math.exp(-1), Math.E - 2]);
  });

  it('the adaptive controller moves β by at most 20% × n / horizon (Ziegler et al.)', () => {
    const c = new AdaptiveKlController(0.05, 6, 10000);
    c.update(12, 64); // KL twice the target: error clipped to +0.2
    expect(c.value).toBeCloseTo(0.05 * (1 + (0.2 * 64) / 10000), 12);
    c.update(5.7, 64); // error −0.05
    expect(c.value).toBeCloseTo(0.05 * (1 + (0.2 * 64) / 10000) * (1 - (0.05 * 64) / 10000), 12);
  });
});

describe('clipped losses', () => {
  it('policy: the clipped term wins outside 1 ± ε in the direction of the advantage, with zero gradient there', () => {
    // A = [1, 1, −1, −1], ρ = [1.5, 0.5, 1.5, 0.5], ε 0.2 -> per token max(−Aρ, −A clip ρ) = [−1.2, −0.5, 1.5, 0.8]
    const adv = tf.tensor1d([1, 1, -1, -1]);
    const mask = tf.tensor1d([1, 1, 1, 1]);
    const old = tf.zeros([4]);
    const lp = tf.tensor1d([Math.log(1.5), Math.log(0.5), Math.log(1.5), Math.log(0.5)]);
    const r = ppoPolicyLoss(lp, old, adv, mask, 0.2);
    expect(r.loss.dataSync()[0]).toBeCloseTo(0.15, 6);
    expect(r.clipfrac.dataSync()[0]).toBeCloseTo(0.5, 6);
    expect(r.ratio.dataSync()[0]).toBeCloseTo(1, 6);
    // d/dlogπ of −Aρ is −Aρ (unclipped tokens), 0 where the clip is active; divided by 4 tokens
    near(
      tf
        .grad((x: tf.Tensor) => ppoPolicyLoss(x, old, adv, mask, 0.2).loss)(lp)
        .dataSync(),
      [0, -0.125, 0.375, 0],
    );
    // masked tokens do not count
    expect(ppoPolicyLoss(lp, old, adv, tf.tensor1d([0, 1, 1, 0]), 0.2).loss.dataSync()[0]).toBeCloseTo(0.5, 6);
  });

  it('value: ½ max((V − R)², (clip(V, V_old ± ε) − R)²)', () => {
    // V = [2, 0], V_old = [1, 1], R = [0, 0], ε 0.2: clipped V = [1.2, 0.8]; max terms [4, 0.64]
    const r = ppoValueLoss(tf.tensor1d([2, 0]), tf.tensor1d([1, 1]), tf.zeros([2]), tf.ones([2]), 0.2);
    expect(r.loss.dataSync()[0]).toBeCloseTo((0.5 * (4 + 0.64)) / 2, 6);
    expect(r.clipfrac.dataSync()[0]).toBeCloseTo(0.5, 6);
  });
});
