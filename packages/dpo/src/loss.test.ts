// dpoLoss and batchLogps against TRL 0.8.6's own dpo_loss and get_batch_logps
// (../shared/fixtures/hf/trl_dpo, run from TRL's source), plus the cases TRL's fixture does
// not cover: robust DPO by hand, reference-free, extreme log-prob gaps, and a
// finite-difference check of the gradient.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { readHfFixture } from '@anneal/modeling';
import { batchLogps, batchLogpsOfTargets, dpoLoss, dpoMetrics, logpsTargets, type DpoLossType } from './index.js';

const FIXTURES = fileURLToPath(new URL('../../../../shared/fixtures/hf/', import.meta.url));
const io = JSON.parse(readFileSync(join(FIXTURES, 'trl_dpo', 'io.json'), 'utf8'));
const t = (a: number[]) => tf.tensor1d(a);
const inputs = () => ({
  policyChosenLogps: t(io.policy_chosen_logps),
  policyRejectedLogps: t(io.policy_rejected_logps),
  referenceChosenLogps: t(io.reference_chosen_logps),
  referenceRejectedLogps: t(io.reference_rejected_logps),
});
const close = (got: ArrayLike<number>, want: number[], tol: number, what: string) =>
  want.forEach((w, i) =>
    expect(Math.abs(got[i] - w), `${what}[${i}]: ${got[i]} vs ${w}`).toBeLessThanOrEqual(
      tol * Math.max(1, Math.abs(w)),
    ),
  );

beforeAll(async () => {
  await useBackend('cpu', {});
});

describe('dpoLoss against TRL 0.8.6', () => {
  it.each(Object.keys(io.cases))('%s: per-pair losses, mean and rewards within 1e-5', (name) => {
    const c = io.cases[name];
    tf.tidy(() => {
      const r = dpoLoss(inputs(), {
        beta: io.beta,
        lossType: c.loss_type as DpoLossType,
        labelSmoothing: c.label_smoothing,
      });
      close(r.losses.dataSync(), c.losses, 1e-5, 'losses');
      close([tf.mean(r.losses).dataSync()[0]], [c.loss_mean], 1e-5, 'mean');
      close(r.chosenRewards.dataSync(), c.chosen_rewards, 1e-5, 'chosen rewards');
      close(r.rejectedRewards.dataSync(), c.rejected_rewards, 1e-5, 'rejected rewards');
    });
  });

  it('robust DPO by hand: (−log σ(βx)(1−ε) + log σ(−βx)ε) / (1−2ε)', () => {
    tf.tidy(() => {
      // pair 0 of the fixture: x = (−12.5 + 14) − (−13 + 13.5) = 1, β = 0.1, ε = 0.1
      const x = 0.1;
      const want = (Math.log1p(Math.exp(-x)) * 0.9 - Math.log1p(Math.exp(x)) * 0.1) / 0.8;
      const r = dpoLoss(inputs(), { beta: 0.1, lossType: 'robust', labelSmoothing: 0.1 });
      expect(r.losses.dataSync()[0]).toBeCloseTo(want, 6);
    });
  });

  it('reference-free: the reference log-probs count as 0', () => {
    tf.tidy(() => {
      const r = dpoLoss(
        { policyChosenLogps: t([-3]), policyRejectedLogps: t([-5]) },
        { beta: 0.5, referenceFree: true },
      );
      expect(r.losses.dataSync()[0]).toBeCloseTo(Math.log1p(Math.exp(-1)), 6); // −log σ(0.5 · 2)
      expect(r.chosenRewards.dataSync()[0]).toBeCloseTo(-1.5, 6);
    });
  });

  it('stays finite with extreme log-prob gaps, values and gradients', () => {
    const f = (pc: tf.Tensor) =>
      tf.sum(
        dpoLoss(
          {
            policyChosenLogps: pc as tf.Tensor1D,
            policyRejectedLogps: t([-1e4, 0]),
            referenceChosenLogps: t([0, 0]),
            referenceRejectedLogps: t([0, 0]),
          },
          { beta: 0.1 },
        ).losses,
      );
    const pc = t([0, -1e4]);
    const loss = tf.tidy(() => f(pc).dataSync()[0]);
    // pair 0: −log σ(1000) ≈ 0; pair 1: −log σ(−1000) = 1000 (naive log(sigmoid) gives Infinity)
    expect(loss).toBeCloseTo(1000, 3);
    const g = tf.grad(f)(pc).dataSync();
    expect(Array.from(g).every(Number.isFinite)).toBe(true);
    expect(g[1]).toBeCloseTo(-0.1, 6); // d/dπ_c of −log σ(β x) = −β σ(−β x) → −β
  });

  it('gradient matches central finite differences (sigmoid with label smoothing)', () => {
    const pr = [-14, -29.5, -9.75];
    const f = (pc: tf.Tensor) =>
      tf.sum(
        dpoLoss(
          {
            policyChosenLogps: pc as tf.Tensor1D,
            policyRejectedLogps: t(pr),
            referenceChosenLogps: t([-13, -31, -7.5]),
            referenceRejectedLogps: t([-13.5, -30, -9]),
          },
          { beta: 0.7, labelSmoothing: 0.2 },
        ).losses,
      );
    const x = [-12.5, -30.25, -7];
    const g = tf.grad(f)(t(x)).dataSync();
    const h = 1e-2;
    x.forEach((_, i) => {
      const at = (d: number) => tf.tidy(() => f(t(x.map((v, j) => (j === i ? v + d : v)))).dataSync()[0]);
      expect(g[i]).toBeCloseTo((at(h) - at(-h)) / (2 * h), 3);
    });
  });
});

describe('batchLogps against TRL 0.8.6 get_batch_logps', () => {
  it("sums and averages the completion tokens' log-probs of the llama fixture logits", () => {
    const f = readHfFixture(join(FIXTURES, 'llama'));
    const labels = Int32Array.from((io.get_batch_logps.labels as number[][]).flat());
    tf.tidy(() => {
      const logits = tf.tensor3d(f.logits, f.shape as [number, number, number]);
      close(batchLogps(logits, labels).logps.dataSync(), io.get_batch_logps.sum, 1e-5, 'sum');
      close(
        batchLogps(logits, labels, { average: true }).logps.dataSync(),
        io.get_batch_logps.average,
        1e-5,
        'average',
      );
      expect(Array.from(batchLogps(logits, labels).counts)).toEqual([12, 8]);
    });
  });

  it('from targets already on the device (batchLogpsOfTargets, for recorded steps): the same sums, averages and mean logits', () => {
    const f = readHfFixture(join(FIXTURES, 'llama'));
    const labels = Int32Array.from((io.get_batch_logps.labels as number[][]).flat());
    const [B, T] = f.shape as [number, number, number];
    const { targets, mask, counts } = logpsTargets(labels, B, T);
    tf.tidy(() => {
      const logits = tf.tensor3d(f.logits, f.shape as [number, number, number]);
      const dev = [
        tf.tensor1d(targets, 'int32'),
        tf.tensor2d(mask, [B, T]),
        tf.tensor1d(counts.map((c) => Math.max(1, c))),
      ] as const;
      const sum = batchLogpsOfTargets(logits, ...dev);
      close(sum.logps.dataSync(), io.get_batch_logps.sum, 1e-5, 'sum');
      close(
        batchLogpsOfTargets(logits, ...dev, { average: true }).logps.dataSync(),
        io.get_batch_logps.average,
        1e-5,
        'average',
      );
      close(
        sum.meanLogits.dataSync(),
        Array.from(batchLogps(logits, labels).meanLogits.dataSync()),
        1e-6,
        'mean logits',
      );
    });
  });
});

describe('dpoMetrics', () => {
  it('averages rewards, counts strict wins and weights logits by tokens', () => {
    const m = dpoMetrics({
      chosenRewards: [1, 0, 2],
      rejectedRewards: [0, 0, 3],
      chosenLogps: [-1, -2, -3],
      rejectedLogps: [-4, -5, -6],
      chosenMeanLogits: [1, 3, 0],
      rejectedMeanLogits: [2, 2, 2],
      chosenCounts: [1, 3, 0],
      rejectedCounts: [1, 1, 1],
    });
    expect(m).toEqual({
      'rewards/chosen': 1,
      'rewards/rejected': 1,
      'rewards/accuracies': 1 / 3,
      'rewards/margins': 0,
      'logps/chosen': -2,
      'logps/rejected': -5,
      'logits/chosen': 2.5,
      'logits/rejected': 2,
    });
  });
});
