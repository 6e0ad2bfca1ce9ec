// RLOO's loss, as TRL's RLOOTrainer computes it: the whole completion is one action, so the
// importance ratio is per sequence — exp(Σ_t log π(y_t) − Σ_t log π_old(y_t)) over the
// completion's tokens — clipped PPO-style (epsilon below, epsilonHigh above), times the
// completion's advantage, averaged over completions. With the policy unchanged since
// generation (numIterations 1, one step per generation) the ratio is 1 and this is REINFORCE
// with the leave-one-out baseline. The KL to the reference is in the advantages, not here.
import * as tf from '@tensorflow/tfjs-core';
import { stopGradient } from '@anneal/core';

export interface RlooLossInputs {
  /** Per-token log-probs of the completions under the policy being trained [B, T]. */
  perTokenLogps: tf.Tensor2D;
  /** Under the policy that sampled them [B, T] (default: perTokenLogps, detached). */
  oldPerTokenLogps?: tf.Tensor2D;
  /** One advantage per completion [B]. */
  advantages: tf.Tensor1D;
  /** 1 for completion tokens [B, T]. */
  completionMask: tf.Tensor2D;
}

export interface RlooLossOptions {
  epsilon: number;
  epsilonHigh?: number;
}

/** The RLOO loss and TRL's clip_ratio/{low,high,region}_mean. Call inside tf.tidy or a gradient function. */
export function rlooLoss(
  x: RlooLossInputs,
  o: RlooLossOptions,
): { loss: tf.Scalar; metrics: Record<string, tf.Scalar> } {
  const mask = x.completionMask;
  const logps = tf.sum(tf.mul(x.perTokenLogps, mask), -1); // [B]
  const old = x.oldPerTokenLogps ? tf.sum(tf.mul(x.oldPerTokenLogps, mask), -1) : (stopGradient(logps) as tf.Tensor1D); // [B]
  const lo = 1 - o.epsilon;
  const hi = 1 + (o.epsilonHigh ?? o.epsilon);
  const coef1 = tf.exp(tf.sub(logps, old)); // [B]
  const coef2 = tf.clipByValue(coef1, lo, hi);
  const adv = x.advantages;
  const loss = tf.mean(tf.neg(tf.minimum(tf.mul(coef1, adv), tf.mul(coef2, adv)))) as tf.Scalar;
  const low = tf.cast(tf.logicalAnd(tf.less(coef1, lo), tf.less(adv, 0)), 'float32');
  const high = tf.cast(tf.logicalAnd(tf.greater(coef1, hi), tf.greater(adv, 0)), 'float32');
  return {
    loss,
    metrics: {
      'clip_ratio/low_mean': tf.mean(low) as tf.Scalar,
      'clip_ratio/high_mean': tf.mean(high) as tf.Scalar,
      'clip_ratio/region_mean': tf.mean(tf.maximum(low, high)) as tf.Scalar,
    },
  };
}
