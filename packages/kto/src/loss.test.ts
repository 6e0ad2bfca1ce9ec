// KTO's loss against TRL's own KTOTrainer.kto_loss run on the same inputs
// (../shared/fixtures/hf/trl_losses, TRL v1.5.1): losses, rewards and the KL reference point
// for kto (with and without the KL estimate, with weights) and apo_zero_unpaired.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { ktoLoss, type KtoLossType } from './index.js';

const FIXTURE = fileURLToPath(new URL('../../../../shared/fixtures/hf/trl_losses/io.json', import.meta.url));
interface Case {
  loss_type: KtoLossType;
  beta: number;
  calculate_KL: boolean;
  desirable_weight: number;
  undesirable_weight: number;
  losses: number[];
  loss_mean: number;
  chosen_rewards: number[];
  rejected_rewards: number[];
  kl: number | number[];
}
const f = JSON.parse(readFileSync(FIXTURE, 'utf8')).kto as {
  inputs: Record<string, number[]>;
  cases: Record<string, Case>;
};
const close = (got: ArrayLike<number>, want: number[], what: string) =>
  want.forEach((w, i) => expect(Math.abs(got[i] - w), `${what}[${i}]`).toBeLessThan(1e-5 * Math.max(1, Math.abs(w))));

describe('KTO loss (TRL fixture)', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('losses, rewards and the KL reference point of every case as TRL computes them', () => {
    const t = (k: string) => tf.tensor1d(f.inputs[k]);
    for (const [name, c] of Object.entries(f.cases))
      tf.tidy(() => {
        const r = ktoLoss(
          {
            policyChosenLogps: t('policy_chosen_logps'),
            referenceChosenLogps: t('reference_chosen_logps'),
            policyRejectedLogps: t('policy_rejected_logps'),
            referenceRejectedLogps: t('reference_rejected_logps'),
            policyKlLogps: t('policy_KL_logps'),
            referenceKlLogps: t('reference_KL_logps'),
          },
          {
            beta: c.beta,
            lossType: c.loss_type,
            desirableWeight: c.desirable_weight,
            undesirableWeight: c.undesirable_weight,
            calculateKl: c.calculate_KL,
          },
        );
        close(r.losses.dataSync(), c.losses, `${name} losses`);
        close(tf.mean(r.losses).dataSync(), [c.loss_mean], `${name} mean`);
        close(r.chosenRewards.dataSync(), c.chosen_rewards, `${name} chosen rewards`);
        close(r.rejectedRewards.dataSync(), c.rejected_rewards, `${name} rejected rewards`);
        close(r.kl.dataSync(), [Array.isArray(c.kl) ? c.kl[0] : c.kl], `${name} kl`);
      });
    expect(Object.keys(f.cases).length).toBe(4);
  });

  it('the KL reference point is not differentiated: the gradient reaches the policy only through the log-ratios', () => {
    tf.tidy(() => {
      const kl = tf.tensor1d([-3, -4]);
      const g = tf.grad((p: tf.Tensor) =>
        tf.sum(
          ktoLoss(
            {
              policyChosenLogps: tf.tensor1d([-5]),
              referenceChosenLogps: tf.tensor1d([-6]),
              policyRejectedLogps: tf.tensor1d([-2]),
              referenceRejectedLogps: tf.tensor1d([-2.5]),
              policyKlLogps: p as tf.Tensor1D,
              referenceKlLogps: kl,
            },
            { beta: 0.1 },
          ).losses,
        ),
      )(tf.tensor1d([-1, -2]));
      expect(Array.from(g.dataSync())).toEqual([0, 0]);
    });
  });

  it('is finite, with finite gradients, at extreme log-ratios (±200) and with no undesirable examples', () => {
    tf.tidy(() => {
      const policy = tf.tensor1d([-1e-6, -300]);
      for (const lossType of ['kto', 'apo_zero_unpaired'] as const) {
        const run = (p: tf.Tensor, rejected: number[]) =>
          ktoLoss(
            {
              policyChosenLogps: p as tf.Tensor1D,
              referenceChosenLogps: tf.tensor1d([-200, -100]),
              policyRejectedLogps: tf.tensor1d(rejected),
              referenceRejectedLogps: tf.tensor1d(rejected.map((x) => x - 200)),
              policyKlLogps: tf.tensor1d([-500, -1e-6]),
              referenceKlLogps: tf.tensor1d([-1e-6, -500]),
            },
            { beta: 0.5, lossType },
          );
        for (const rejected of [[-1e-6], []]) {
          const r = run(policy, rejected);
          expect(Array.from(r.losses.dataSync()).every(Number.isFinite), lossType).toBe(true);
          expect(Number.isFinite(r.kl.dataSync()[0])).toBe(true);
          const g = tf.grad((p: tf.Tensor) => tf.mean(run(p, rejected).losses))(policy);
          expect(Array.from(g.dataSync()).every(Number.isFinite), `${lossType} grad`).toBe(true);
        }
      }
    });
  });
});
