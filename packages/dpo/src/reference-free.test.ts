// ORPO and CPO (sigmoid, hinge, ipo, SimPO, AlphaPO) against TRL's own loss functions run on
// the same inputs (../shared/fixtures/hf/trl_losses: TRL v1.9.0's odds_ratio_loss and cpo_loss,
// cut from its source and run verbatim), and finite at extreme inputs.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { cpoLoss, log1mexp, orpoLoss, type CpoLossType } from './index.js';

const FIXTURE = fileURLToPath(new URL('../../../../shared/fixtures/hf/trl_losses/io.json', import.meta.url));
interface PairInputs {
  policy_chosen_logps: number[];
  policy_rejected_logps: number[];
}
interface Fixture {
  orpo: {
    inputs: PairInputs;
    cases: Record<
      string,
      {
        beta: number;
        losses: number[];
        chosen_rewards: number[];
        rejected_rewards: number[];
        mean_ratio: number;
        mean_log_odds: number;
      }
    >;
  };
  cpo: {
    inputs: PairInputs;
    cases: Record<
      string,
      {
        loss_type: CpoLossType;
        beta: number;
        label_smoothing: number;
        simpo_gamma: number;
        alpha: number;
        losses: number[];
        loss_mean: number;
        chosen_rewards: number[];
        rejected_rewards: number[];
      }
    >;
  };
}
const f = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Fixture;
const close = (got: ArrayLike<number>, want: number[], what: string) =>
  want.forEach((w, i) => expect(Math.abs(got[i] - w), `${what}[${i}]`).toBeLessThan(1e-5 * Math.max(1, Math.abs(w))));

describe('reference-free preference losses (TRL fixtures)', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('ORPO: odds-ratio losses, rewards, mean log σ(log odds) and mean log odds as TRL', () => {
    for (const [name, c] of Object.entries(f.orpo.cases))
      tf.tidy(() => {
        const r = orpoLoss(
          tf.tensor1d(f.orpo.inputs.policy_chosen_logps),
          tf.tensor1d(f.orpo.inputs.policy_rejected_logps),
          c.beta,
        );
        close(r.losses.dataSync(), c.losses, `${name} losses`);
        close(r.chosenRewards.dataSync(), c.chosen_rewards, `${name} chosen rewards`);
        close(r.rejectedRewards.dataSync(), c.rejected_rewards, `${name} rejected rewards`);
        close(r.meanRatio.dataSync(), [c.mean_ratio], `${name} mean ratio`);
        close(r.meanLogOdds.dataSync(), [c.mean_log_odds], `${name} mean log odds`);
      });
    expect(Object.keys(f.orpo.cases).length).toBe(2);
  });

  it('CPO: sigmoid (with label smoothing), hinge, ipo, SimPO and AlphaPO as TRL', () => {
    for (const [name, c] of Object.entries(f.cpo.cases))
      tf.tidy(() => {
        const r = cpoLoss(
          tf.tensor1d(f.cpo.inputs.policy_chosen_logps),
          tf.tensor1d(f.cpo.inputs.policy_rejected_logps),
          {
            beta: c.beta,
            lossType: c.loss_type,
            labelSmoothing: c.label_smoothing,
            simpoGamma: c.simpo_gamma,
            alpha: c.alpha,
          },
        );
        close(r.losses.dataSync(), c.losses, `${name} losses`);
        close(tf.mean(r.losses).dataSync(), [c.loss_mean], `${name} mean`);
        close(r.chosenRewards.dataSync(), c.chosen_rewards, `${name} chosen rewards`);
        close(r.rejectedRewards.dataSync(), c.rejected_rewards, `${name} rejected rewards`);
      });
    expect(Object.keys(f.cpo.cases)).toEqual(
      expect.arrayContaining([
        'hinge_beta0.1',
        'ipo_beta0.1',
        'simpo_beta2.0_gamma0.5',
        'alphapo_sigmoid_beta0.1_alpha0.25',
      ]),
    );
  });

  it('log1mexp: log(1 − eˣ) to float32 precision on both sides of −ln 2 and near 0; finite losses at extreme inputs', () => {
    tf.tidy(() => {
      const xs = [-1e-7, -1e-4, -0.005, -0.3, -Math.LN2 + 1e-3, -Math.LN2 - 1e-3, -5, -80];
      const got = log1mexp(tf.tensor1d(xs)).dataSync();
      xs.forEach((x, i) => {
        const want = Math.log(-Math.expm1(x));
        expect(Math.abs(got[i] - want), `x ${x}`).toBeLessThan(2e-6 * Math.max(1, Math.abs(want)));
      });
      // its gradient, −eˣ / (1 − eˣ), by hand in float64
      const dx = tf
        .grad((x: tf.Tensor) => tf.sum(log1mexp(x)))(tf.tensor1d(xs.slice(1)))
        .dataSync();
      xs.slice(1).forEach((x, i) => {
        const want = -Math.exp(x) / -Math.expm1(x);
        expect(Math.abs(dx[i] - want), `d/dx at ${x}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(want)));
      });
      const chosen = tf.tensor1d([-1e-6, -50, -0.01]);
      const rejected = tf.tensor1d([-60, -1e-6, -0.02]);
      const orpo = orpoLoss(chosen, rejected, 0.1);
      for (const t of [orpo.losses, orpo.meanLogOdds])
        expect(Array.from(t.dataSync()).every(Number.isFinite)).toBe(true);
      const g = tf.grad((c: tf.Tensor) => tf.sum(orpoLoss(c as tf.Tensor1D, rejected, 0.1).losses))(chosen);
      expect(Array.from(g.dataSync()).every(Number.isFinite)).toBe(true);
      for (const lossType of ['sigmoid', 'hinge', 'ipo', 'simpo'] as const)
        expect(
          Array.from(cpoLoss(chosen, rejected, { beta: 2, lossType }).losses.dataSync()).every(Number.isFinite),
        ).toBe(true);
    });
  });
});
