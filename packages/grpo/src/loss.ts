// GRPO's per-token loss (Shao et al. 2024, DeepSeekMath) with TRL's GRPOTrainer options and
// metric names: the PPO-style clipped surrogate on each completion token with a group-relative
// advantage per completion, an optional KL term to a reference (the k3 estimator,
// exp(ref − logp) − (ref − logp) − 1), and four ways to average over tokens:
//   grpo     mean over each completion's tokens, then over completions (the paper)
//   bnpo     mean over all tokens of the batch
//   dr_grpo  sum over tokens / (completions × maxCompletionLength)   (Dr. GRPO, Liu et al. 2025)
//   dapo     sum over tokens / the whole global batch's token count   (DAPO, Yu et al. 2025)
// Asymmetric clipping (epsilon, epsilonHigh: DAPO's clip-higher), an upper bound delta on the
// ratio (two-sided clipping), and sequence-level importance weights (GSPO, Zheng et al. 2025).
import * as tf from '@tensorflow/tfjs-core';
import { stopGradient } from '@anneal/core';

export type GrpoLossType = 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo';

export interface GrpoLossInputs {
  /** Log-probs of the completion tokens under the policy being trained [B, T] (the gradient flows here). */
  perTokenLogps: tf.Tensor2D;
  /** The same under the policy that sampled them [B, T] (with numIterations 1: perTokenLogps itself, detached). */
  oldPerTokenLogps?: tf.Tensor2D;
  /** Under the reference [B, T]; needed when beta > 0. */
  refPerTokenLogps?: tf.Tensor2D;
  /** One advantage per completion [B]. */
  advantages: tf.Tensor1D;
  /** 1 for completion tokens, 0 for padding [B, T]. */
  completionMask: tf.Tensor2D;
  /** Per-token entropies [B, T] for the entropy metric (not differentiated). */
  entropies?: tf.Tensor2D;
}

export interface GrpoLossOptions {
  lossType: GrpoLossType;
  /** KL coefficient (0: no KL term, no reference needed). */
  beta: number;
  /** Lower clipping range ε (TRL's epsilon, 0.2). */
  epsilon: number;
  /** Upper clipping range (TRL's epsilon_high; default epsilon). */
  epsilonHigh?: number;
  /** Upper bound on the ratio itself (two-sided clipping; off when undefined). */
  delta?: number;
  /** 'token' (default) or 'sequence' (GSPO: one weight per completion, the mean log-ratio). */
  importanceSamplingLevel?: 'token' | 'sequence';
  /** dr_grpo's constant normalizer: the completions' maximum length. */
  maxCompletionLength?: number;
  /** dapo's normalizer: completion tokens in the whole global batch (default: this batch's). */
  numItemsInBatch?: number;
}

export interface GrpoLossResult {
  loss: tf.Scalar;
  /** TRL's logged values: kl (beta > 0), entropy (with entropies), clip_ratio/{low,high,region}_mean. */
  metrics: Record<string, tf.Scalar>;
}

/** The GRPO loss of a batch of completions, as TRL's GRPOTrainer computes it. Call inside tf.tidy or a gradient function. */
export function grpoLoss(x: GrpoLossInputs, o: GrpoLossOptions): GrpoLossResult {
  const mask = x.completionMask;
  const [B] = mask.shape;
  const epsLow = o.epsilon;
  const epsHigh = o.epsilonHigh ?? o.epsilon;
  const old = x.oldPerTokenLogps ?? (stopGradient(x.perTokenLogps) as tf.Tensor2D); // TRL: per_token_logps.detach()
  const logRatio = tf.sub(x.perTokenLogps, old); // [B, T]
  const tokens = tf.sum(mask, -1); // [B]
  const clampMin1 = (t: tf.Tensor) => tf.maximum(t, 1);
  const logWeights =
    o.importanceSamplingLevel === 'sequence'
      ? tf.expandDims(tf.div(tf.sum(tf.mul(logRatio, mask), -1), clampMin1(tokens)), 1) // [B, 1]
      : logRatio; // [B, T]
  let coef1 = tf.exp(logWeights);
  const coef2 = tf.clipByValue(coef1, 1 - epsLow, 1 + epsHigh);
  if (o.delta !== undefined) coef1 = tf.minimum(coef1, o.delta);
  const adv = tf.expandDims(x.advantages, 1); // [B, 1]
  let perToken = tf.neg(tf.minimum(tf.mul(coef1, adv), tf.mul(coef2, adv))); // [B, T] (or [B, 1] broadcast)
  let kl: tf.Tensor | undefined;
  if (o.beta !== 0) {
    if (!x.refPerTokenLogps) throw new RangeError('grpoLoss: beta > 0 needs refPerTokenLogps');
    const d = tf.sub(x.refPerTokenLogps, x.perTokenLogps);
    kl = tf.sub(tf.sub(tf.exp(d), d), 1); // k3, ≥ 0
    perToken = tf.add(perToken, tf.mul(o.beta, kl));
  }
  const masked = tf.mul(perToken, mask); // [B, T]
  const allTokens = clampMin1(tf.sum(mask));
  let loss: tf.Tensor;
  switch (o.lossType) {
    case 'grpo':
      loss = tf.mean(tf.div(tf.sum(masked, -1), clampMin1(tokens)));
      break;
    case 'bnpo':
      loss = tf.div(tf.sum(masked), allTokens);
      break;
    case 'dr_grpo':
      if (!o.maxCompletionLength) throw new RangeError('grpoLoss: dr_grpo needs maxCompletionLength');
      loss = tf.div(tf.sum(masked), B * o.maxCompletionLength);
      break;
    case 'dapo':
      loss =
        o.numItemsInBatch !== undefined ? tf.div(tf.sum(masked), o.numItemsInBatch) : tf.div(tf.sum(masked), allTokens);
      break;
    default:
      throw new RangeError(`unknown GRPO loss type ${String(o.lossType)}: expected grpo, bnpo, dr_grpo or dapo`);
  }
  // metrics: masked means over completion tokens (a [B, 1] sequence-level value: the plain mean)
  const metrics: Record<string, tf.Scalar> = {};
  const batchMean = (t: tf.Tensor) =>
    (t.shape[1] === 1 ? tf.mean(t) : tf.div(tf.sum(tf.mul(t, mask)), allTokens)) as tf.Scalar;
  if (kl) metrics.kl = batchMean(kl);
  if (x.entropies) metrics.entropy = batchMean(x.entropies);
  const low = tf.cast(tf.logicalAnd(tf.less(coef1, 1 - epsLow), tf.less(adv, 0)), 'float32');
  const high = tf.cast(tf.logicalAnd(tf.greater(coef1, 1 + epsHigh), tf.greater(adv, 0)), 'float32');
  metrics['clip_ratio/low_mean'] = batchMean(low);
  metrics['clip_ratio/high_mean'] = batchMean(high);
  metrics['clip_ratio/region_mean'] = batchMean(tf.maximum(low, high));
  return { loss: loss as tf.Scalar, metrics };
}
