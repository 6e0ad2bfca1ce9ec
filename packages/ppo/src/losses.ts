// PPO's clipped objectives as pure tensor functions over response tokens ([B, T] tensors,
// mask 1 on real response tokens), with masked means as TRL's PPOTrainer:
//   policy: max(−A·ρ, −A·clip(ρ, 1 ± ε)),          ρ = exp(log π_new − log π_old)
//   value:  ½ max((V − R)², (clip(V, V_old ± ε_v) − R)²)
import * as tf from '@tensorflow/tfjs-core';

const maskedMean = (x: tf.Tensor, mask: tf.Tensor) => tf.div(tf.sum(tf.mul(x, mask)), tf.maximum(tf.sum(mask), 1));

export interface PolicyLossResult {
  loss: tf.Scalar;
  /** Fraction of tokens where the clipped term was the larger (active clipping). */
  clipfrac: tf.Scalar;
  /** ½ E[(log ρ)²], a KL estimate between the new and the rollout policy. */
  approxkl: tf.Scalar;
  /** Mean ratio ρ over the tokens. */
  ratio: tf.Scalar;
}

/** Call inside tf.tidy or a gradient function. */
export function ppoPolicyLoss(
  newLogprobs: tf.Tensor,
  oldLogprobs: tf.Tensor,
  advantages: tf.Tensor,
  mask: tf.Tensor,
  cliprange: number,
): PolicyLossResult {
  const diff = tf.sub(newLogprobs, oldLogprobs);
  const ratio = tf.exp(diff);
  const unclipped = tf.mul(tf.neg(advantages), ratio);
  const clipped = tf.mul(tf.neg(advantages), tf.clipByValue(ratio, 1 - cliprange, 1 + cliprange));
  return {
    loss: maskedMean(tf.maximum(unclipped, clipped), mask) as tf.Scalar,
    clipfrac: maskedMean(tf.cast(tf.greater(clipped, unclipped), 'float32'), mask) as tf.Scalar,
    approxkl: tf.mul(0.5, maskedMean(tf.square(diff), mask)) as tf.Scalar,
    ratio: maskedMean(ratio, mask) as tf.Scalar,
  };
}

export interface ValueLossResult {
  loss: tf.Scalar;
  clipfrac: tf.Scalar;
}

/** Call inside tf.tidy or a gradient function. */
export function ppoValueLoss(
  values: tf.Tensor,
  oldValues: tf.Tensor,
  returns: tf.Tensor,
  mask: tf.Tensor,
  cliprangeValue: number,
): ValueLossResult {
  const clippedValues = tf.add(tf.clipByValue(tf.sub(values, oldValues), -cliprangeValue, cliprangeValue), oldValues);
  const unclipped = tf.square(tf.sub(values, returns));
  const clipped = tf.square(tf.sub(clippedValues, returns));
  return {
    loss: tf.mul(0.5, maskedMean(tf.maximum(unclipped, clipped), mask)) as tf.Scalar,
    clipfrac: maskedMean(tf.cast(tf.greater(clipped, unclipped), 'float32'), mask) as tf.Scalar,
  };
}
