// The reward model's pairwise loss (Bradley–Terry, as TRL's RewardTrainer) and its metrics.
// P(chosen preferred) = σ(r_chosen − r_rejected − margin); the loss is its negative log,
// written with log-sigmoid so large reward gaps neither overflow nor lose precision.
// (σ(exp(r_w) − exp(r_l)), as one tutorial writes it, is not the Bradley–Terry model.)
import * as tf from '@tensorflow/tfjs-core';
import { logSigmoid } from '@anneal/modeling';

export interface RewardLossOptions {
  /** Per-pair margin [N] the chosen reward must exceed the rejected one by (TRL's `margin` column). */
  margin?: tf.Tensor1D;
  /** Adds coef · (r_chosen + r_rejected)² per pair, pulling rewards towards zero mean (Eisenstein et al. 2023). */
  centerRewardsCoefficient?: number;
}

/** Per-pair losses [N]: −log σ(r_c − r_r − margin) (+ coef · (r_c + r_r)²); their mean is TRL's loss. Call inside tf.tidy or a gradient function. */
export function bradleyTerryLoss(chosen: tf.Tensor1D, rejected: tf.Tensor1D, o: RewardLossOptions = {}): tf.Tensor1D {
  let gap = tf.sub(chosen, rejected); // [N]
  if (o.margin) gap = tf.sub(gap, o.margin);
  let losses = tf.neg(logSigmoid(gap));
  if (o.centerRewardsCoefficient)
    losses = tf.add(losses, tf.mul(o.centerRewardsCoefficient, tf.square(tf.add(chosen, rejected))));
  return losses as tf.Tensor1D;
}

export interface RewardMetrics {
  /** Fraction of pairs whose chosen reward is higher. */
  accuracy: number;
  /** Mean of r_chosen − r_rejected. */
  margin: number;
  /** Mean, min and max over all chosen and rejected rewards. */
  mean_reward: number;
  min_reward: number;
  max_reward: number;
}

/** TRL's reward metrics of one batch of pairs. */
export function rewardMetrics(chosen: ArrayLike<number>, rejected: ArrayLike<number>): RewardMetrics {
  const n = chosen.length;
  let [wins, gap, sum, min, max] = [0, 0, 0, Infinity, -Infinity];
  for (let i = 0; i < n; i++) {
    if (chosen[i] > rejected[i]) wins++;
    gap += chosen[i] - rejected[i];
    for (const r of [chosen[i], rejected[i]]) {
      sum += r;
      min = Math.min(min, r);
      max = Math.max(max, r);
    }
  }
  return { accuracy: wins / n, margin: gap / n, mean_reward: sum / (2 * n), min_reward: min, max_reward: max };
}
