// Reference-free preference losses as pure tensor functions, with TRL's names and formulas:
// ORPO (Hong et al. 2024: an odds-ratio term added to the chosen completions' NLL) and CPO
// (Xu et al. 2024) with its variants — sigmoid, hinge, ipo, SimPO (Meng et al. 2024: a
// length-normalised reward with a target margin γ) and AlphaPO (Gupta et al. 2025: the
// reward (1 − p^−α) / α). Inputs are per-pair sequence log-probs of the policy alone (ORPO,
// ipo and SimPO take them averaged over tokens, as TRL computes them for those types).
import * as tf from '@tensorflow/tfjs-core';
import { logSigmoid } from '@anneal/modeling';

/**
 * log(1 − eˣ) for x < 0, branch-stable at −ln 2 (Mächler 2012), as TRL's log1mexp: above it
 * log(−expm1(x)), below it log1p(−eˣ). tfjs has no expm1: within 0.01 of 0 its Taylor series
 * (error below x⁵/120), elsewhere 1 − eˣ (float32 cancellation under 1e-5 relative there).
 */
export function log1mexp(x: tf.Tensor): tf.Tensor {
  // 1 − eˣ = −expm1(x), accurate near 0 (no float32 cancellation)
  const negExpm1 = (z: tf.Tensor) => {
    const series = tf.neg(tf.mul(z, tf.add(1, tf.mul(z, tf.add(0.5, tf.mul(z, tf.add(1 / 6, tf.div(z, 24))))))));
    return tf.where(tf.less(tf.abs(z), 0.01), series, tf.sub(1, tf.exp(z)));
  };
  // a custom gradient, −eˣ / (1 − eˣ): the branch conditions stay off the tape (comparisons have no gradient)
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [z, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([z]);
    const value = tf.where(tf.greater(z, -Math.LN2), tf.log(negExpm1(z)), tf.log1p(tf.neg(tf.exp(z))));
    return {
      value,
      gradFunc: (dy: tf.Tensor, [zs]: tf.Tensor[]) => tf.mul(dy, tf.div(tf.neg(tf.exp(zs)), negExpm1(zs))),
    };
  });
  return f(x);
}

export interface OrpoResult {
  /** β · log σ(log-odds ratio) per pair: TRL's loss is NLL(chosen) − mean(losses). */
  losses: tf.Tensor1D;
  chosenRewards: tf.Tensor1D;
  rejectedRewards: tf.Tensor1D;
  /** mean log σ(log odds) and mean log odds (TRL's log_odds_ratio and log_odds_chosen metrics). */
  meanRatio: tf.Scalar;
  meanLogOdds: tf.Scalar;
}

/**
 * ORPO's odds-ratio term from the average per-token log-probs of chosen and rejected
 * completions: log odds = (c − r) − (log(1 − eᶜ) − log(1 − eʳ)). Call inside tf.tidy or a
 * gradient function.
 */
export function orpoLoss(chosenLogps: tf.Tensor1D, rejectedLogps: tf.Tensor1D, beta: number): OrpoResult {
  const logOdds = tf.sub(tf.sub(chosenLogps, rejectedLogps), tf.sub(log1mexp(chosenLogps), log1mexp(rejectedLogps)));
  const ratio = logSigmoid(logOdds);
  return {
    losses: tf.mul(beta, ratio) as tf.Tensor1D,
    chosenRewards: tf.mul(beta, chosenLogps) as tf.Tensor1D,
    rejectedRewards: tf.mul(beta, rejectedLogps) as tf.Tensor1D,
    meanRatio: tf.mean(ratio) as tf.Scalar,
    meanLogOdds: tf.mean(logOdds) as tf.Scalar,
  };
}

export type CpoLossType = 'sigmoid' | 'hinge' | 'ipo' | 'simpo';

export interface CpoLossOptions {
  /** TRL default 0.1 (SimPO's paper uses 2–2.5). */
  beta: number;
  lossType?: CpoLossType;
  /** The assumed probability that a pair's label is flipped (sigmoid and simpo). */
  labelSmoothing?: number;
  /** SimPO's target reward margin γ (TRL's simpo_gamma, default 0.5). */
  simpoGamma?: number;
  /** AlphaPO's α (0: the log-prob reward). */
  alpha?: number;
}

/** CPO's loss per pair and its rewards, as TRL's CPOTrainer.cpo_loss. Call inside tf.tidy or a gradient function. */
export function cpoLoss(
  chosenLogps: tf.Tensor1D,
  rejectedLogps: tf.Tensor1D,
  o: CpoLossOptions,
): { losses: tf.Tensor1D; chosenRewards: tf.Tensor1D; rejectedRewards: tf.Tensor1D } {
  const { beta } = o;
  const ls = o.labelSmoothing ?? 0;
  const alpha = o.alpha ?? 0;
  // AlphaPO's reward (1 − p^−α) / α with p = e^logp, i.e. (1 − e^(−α·logp)) / α
  const reward = (lp: tf.Tensor) => (alpha !== 0 ? tf.div(tf.sub(1, tf.exp(tf.mul(-alpha, lp))), alpha) : lp);
  const [rc, rr] = [reward(chosenLogps), reward(rejectedLogps)];
  let logits = tf.sub(rc, rr); // [N]
  const smoothed = (z: tf.Tensor) =>
    tf.sub(tf.mul(tf.neg(logSigmoid(tf.mul(beta, z))), 1 - ls), tf.mul(logSigmoid(tf.mul(-beta, z)), ls));
  let losses: tf.Tensor;
  switch (o.lossType ?? 'sigmoid') {
    case 'simpo': // the margin γ/β taken off the logits
      logits = tf.sub(logits, (o.simpoGamma ?? 0.5) / beta);
      losses = smoothed(logits);
      break;
    case 'sigmoid':
      losses = smoothed(logits);
      break;
    case 'hinge':
      losses = tf.relu(tf.sub(1, tf.mul(beta, logits)));
      break;
    case 'ipo':
      losses = tf.square(tf.sub(logits, 1 / (2 * beta)));
      break;
    default:
      throw new RangeError(`unknown CPO loss type ${String(o.lossType)}: expected sigmoid, hinge, ipo or simpo`);
  }
  return {
    losses: losses as tf.Tensor1D,
    chosenRewards: tf.mul(beta, rc) as tf.Tensor1D,
    rejectedRewards: tf.mul(beta, rr) as tf.Tensor1D,
  };
}
