// KTO's loss (Ethayarajh et al. 2024, Kahneman–Tversky Optimization) with TRL's KTOTrainer
// names: unpaired data, each completion labelled desirable or undesirable. A desirable one
// is pushed above, an undesirable one below, a reference point z₀: the policy's KL to the
// reference estimated on mismatched (prompt, completion) pairs of the batch, clamped at 0
// and not differentiated. loss_type 'apo_zero_unpaired' is APO-zero's unpaired variant
// (D'Oosterlinck et al. 2024), without the reference point.
import * as tf from '@tensorflow/tfjs-core';
import { stopGradient } from '@anneal/core';

export type KtoLossType = 'kto' | 'apo_zero_unpaired';

export interface KtoLogps {
  /** Sequence log-probs of desirable completions under the policy and the reference [Nc]. */
  policyChosenLogps: tf.Tensor1D;
  referenceChosenLogps: tf.Tensor1D;
  /** The same for undesirable completions [Nr]. */
  policyRejectedLogps: tf.Tensor1D;
  referenceRejectedLogps: tf.Tensor1D;
  /** Of the mismatched pairs (each prompt with another row's completion), for the KL estimate [Nk]. */
  policyKlLogps?: tf.Tensor1D;
  referenceKlLogps?: tf.Tensor1D;
}

export interface KtoLossOptions {
  /** TRL default 0.1. */
  beta: number;
  lossType?: KtoLossType;
  /** Weights of the desirable and undesirable losses (TRL: desirable_weight, undesirable_weight; 1). */
  desirableWeight?: number;
  undesirableWeight?: number;
  /** Estimate the KL reference point (TRL's calculate_KL, true); false: z₀ = 0. */
  calculateKl?: boolean;
}

export interface KtoLossResult {
  /** Weighted losses, desirable then undesirable [Nc + Nr]; their mean is TRL's loss. */
  losses: tf.Tensor1D;
  chosenRewards: tf.Tensor1D;
  rejectedRewards: tf.Tensor1D;
  /** The reference point z₀ (TRL's kl metric). */
  kl: tf.Scalar;
}

/** KTO's losses of a batch, as TRL's KTOTrainer.kto_loss. Call inside tf.tidy or a gradient function. */
export function ktoLoss(l: KtoLogps, o: KtoLossOptions): KtoLossResult {
  const { beta } = o;
  const type = o.lossType ?? 'kto';
  if (type !== 'kto' && type !== 'apo_zero_unpaired')
    throw new RangeError(`unknown KTO loss type ${String(type)}: expected kto or apo_zero_unpaired`);
  let kl: tf.Scalar = tf.scalar(0);
  if (o.calculateKl ?? true) {
    if (!l.policyKlLogps || !l.referenceKlLogps)
      throw new RangeError('ktoLoss: calculateKl needs policyKlLogps and referenceKlLogps (the mismatched pairs)');
    // not differentiated, as TRL's .detach()
    kl = tf.maximum(stopGradient(tf.mean(tf.sub(l.policyKlLogps, l.referenceKlLogps))), 0) as tf.Scalar;
  }
  const chosenRatio = tf.sub(l.policyChosenLogps, l.referenceChosenLogps);
  const rejectedRatio = tf.sub(l.policyRejectedLogps, l.referenceRejectedLogps);
  const chosenLosses =
    type === 'kto'
      ? tf.sub(1, tf.sigmoid(tf.mul(beta, tf.sub(chosenRatio, kl)))) // Eqn (7) of the KTO paper
      : tf.sub(1, tf.sigmoid(tf.mul(beta, chosenRatio)));
  const rejectedLosses =
    type === 'kto'
      ? tf.sub(1, tf.sigmoid(tf.mul(beta, tf.sub(kl, rejectedRatio))))
      : tf.sigmoid(tf.mul(beta, rejectedRatio));
  return {
    losses: tf.concat([
      tf.mul(o.desirableWeight ?? 1, chosenLosses),
      tf.mul(o.undesirableWeight ?? 1, rejectedLosses),
    ]) as tf.Tensor1D,
    chosenRewards: tf.mul(beta, chosenRatio) as tf.Tensor1D,
    rejectedRewards: tf.mul(beta, rejectedRatio) as tf.Tensor1D,
    kl,
  };
}
