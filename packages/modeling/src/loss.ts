// Causal language-modelling loss as transformers computes it: position t predicts token
// t + 1 (logits[:, :-1] vs labels[:, 1:]); labels equal to -100 are ignored; the loss is
// the mean cross-entropy over the remaining targets.
import * as tf from '@tensorflow/tfjs-core';
import { hasAnnealKernel, runAnnealKernel } from '@anneal/core';

export const IGNORE_INDEX = -100;

export interface LmLoss {
  /** Scalar mean cross-entropy over counted targets. */
  loss: tf.Scalar;
  /** Number of targets counted (a plain number, read once). */
  count: number;
}

/**
 * Sum of token cross-entropies over targets that are not IGNORE_INDEX, already shifted:
 * logits [N, V] predict targets [N]. Returns the sum (so callers can normalise over
 * several micro-batches) and the count.
 */
export function crossEntropySum(logits: tf.Tensor2D, targets: Int32Array): { sum: tf.Scalar; count: number } {
  const V = logits.shape[1];
  const valid = new Float32Array(targets.length);
  const safe = new Int32Array(targets.length);
  let count = 0;
  for (let i = 0; i < targets.length; i++) {
    if (targets[i] !== IGNORE_INDEX) {
      if (targets[i] < 0 || targets[i] >= V)
        throw new RangeError(`target id ${targets[i]} at position ${i} is outside the vocabulary (size ${V})`);
      valid[i] = 1;
      safe[i] = targets[i];
      count++;
    }
  }
  if (hasAnnealKernel('AnnealCrossEntropySum'))
    return { sum: fusedCrossEntropySum(logits, tf.tensor1d(targets, 'int32')), count };
  const sum = tf.tidy(() => {
    const logp = tf.logSoftmax(logits, -1); // [N, V]
    const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(safe, 'int32'), V)), -1); // [N]
    return tf.neg(tf.sum(tf.mul(picked, tf.tensor1d(valid)))) as tf.Scalar;
  });
  return { sum, count };
}

/**
 * values[n, targets[n]] for each row: [N, V] and N target ids (in range) -> [N]. Gathers from
 * the flattened rows, so the gradient is a scatter into [N * V] rather than a one-hot
 * product. Call inside tf.tidy or a gradient function.
 */
export function pickTargets(values: tf.Tensor2D, targets: Int32Array): tf.Tensor1D {
  const [N, V] = values.shape;
  const flat = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    if (targets[i] < 0 || targets[i] >= V)
      throw new RangeError(`target id ${targets[i]} at position ${i} is outside the vocabulary (size ${V})`);
    flat[i] = i * V + targets[i];
  }
  return tf.gather(tf.reshape(values, [N * V]), tf.tensor1d(flat, 'int32')) as tf.Tensor1D;
}

/** log softmax(logits)[n, targets[n]]: [N, V] logits -> [N] log-probs of the targets. */
export function tokenLogprobs(logits: tf.Tensor2D, targets: Int32Array): tf.Tensor1D {
  return pickTargets(tf.logSoftmax(logits, -1) as tf.Tensor2D, targets);
}

/**
 * Summed cross-entropy of the logits hidden [N, C] · weight [V, C]ᵀ against targets [N]
 * (-100 = ignored), without materialising the [N, V] logits on the torch backend: the head
 * and the loss run as one kernel over row chunks (about 2^26 logits at a time), the logits
 * recomputed chunk by chunk in the backward pass. Elsewhere: the product, then
 * crossEntropySumOfTargets. Gradients flow to hidden and weight. Call inside tf.tidy or a
 * gradient function.
 */
export function linearCrossEntropySum(
  hidden: tf.Tensor2D,
  weight: tf.Tensor2D,
  targets: tf.Tensor1D,
  chunkRows?: number,
): tf.Scalar {
  if (!hasAnnealKernel('AnnealLinearCrossEntropy'))
    return crossEntropySumOfTargets(tf.matMul(hidden, weight, false, true), targets);
  const chunk = chunkRows ?? Math.max(1, Math.floor(2 ** 26 / weight.shape[0]));
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [h, w, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const [sum, lse] = runAnnealKernel('AnnealLinearCrossEntropy', { h, w, targets }, { chunk });
    save([h, w, targets, lse]);
    return {
      value: sum as tf.Scalar,
      gradFunc: (dy: tf.Tensor, [hs, ws, t, l]: tf.Tensor[]) =>
        runAnnealKernel('AnnealLinearCrossEntropyGrad', { dy, h: hs, w: ws, targets: t, lse: l }, { chunk }),
    };
  });
  return f(hidden, weight) as tf.Scalar;
}

/** Softmax cross-entropy summed over targets as one kernel with its own backward (torch backend). */
function fusedCrossEntropySum(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const [sum, logProbs] = runAnnealKernel('AnnealCrossEntropySum', { logits: x, targets }, {});
    // Saved tensors outlive the forward scope; the targets must be kept the same way.
    save([logProbs, targets]);
    return {
      value: sum as tf.Scalar,
      gradFunc: (dy: tf.Tensor, [lp, t]: tf.Tensor[]) =>
        runAnnealKernel('AnnealCrossEntropySumGrad', { dy, logProbs: lp, targets: t }, {})[0],
    };
  });
  return f(logits) as tf.Scalar;
}

/**
 * Summed causal-LM cross-entropy of logits [B, T, V] against labels [B, T] (-100 =
 * ignored) and the number of counted targets; callers divide (possibly over several
 * micro-batches). Call inside tf.tidy or a gradient function.
 */
export function causalLmLossSum(logits: tf.Tensor3D, labels: Int32Array): { sum: tf.Scalar; count: number } {
  const [B, T, V] = logits.shape;
  return crossEntropySum(tf.reshape(logits, [B * T, V]) as tf.Tensor2D, causalLmTargets(labels, B, T).targets);
}

/**
 * The causal-LM targets of labels [B, T] for logits [B * T, V]: every position predicts the
 * next label; each row's last position has none (ignored). Same terms as slicing off the
 * last position, without copying [B, T-1, V] of logits. Also the number of counted targets.
 */
export function causalLmTargets(labels: Int32Array, B: number, T: number): { targets: Int32Array; count: number } {
  if (labels.length !== B * T) throw new RangeError(`labels have ${labels.length} entries, expected ${B} x ${T}`);
  const targets = new Int32Array(B * T).fill(IGNORE_INDEX);
  for (let b = 0; b < B; b++) targets.set(labels.subarray(b * T + 1, (b + 1) * T), b * T);
  let count = 0;
  for (const t of targets) if (t !== IGNORE_INDEX) count++;
  return { targets, count };
}

/**
 * Summed cross-entropy of logits [N, V] against targets already on the device [N] (-100 =
 * ignored; others must be in range: nothing is read back to check). For steps that take
 * their targets as an input tensor, such as a recorded step. Call inside tf.tidy or a
 * gradient function.
 */
export function crossEntropySumOfTargets(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  if (hasAnnealKernel('AnnealCrossEntropySum')) return fusedCrossEntropySum(logits, targets);
  const V = logits.shape[1];
  const valid = tf.notEqual(targets, IGNORE_INDEX);
  const safe = tf.where(valid, targets, tf.zerosLike(targets)) as tf.Tensor1D;
  const picked = tf.sum(tf.mul(tf.logSoftmax(logits, -1), tf.oneHot(safe, V)), -1); // [N]
  return tf.neg(tf.sum(tf.mul(picked, tf.cast(valid, 'float32')))) as tf.Scalar;
}

/** Mean causal-LM loss, as transformers' GPT2LMHeadModel computes it from `labels`. */
export function causalLmLoss(logits: tf.Tensor3D, labels: Int32Array | number[][]): LmLoss {
  const flat = Array.isArray(labels) ? Int32Array.from(labels.flat()) : labels;
  return tf.tidy(() => {
    const { sum, count } = causalLmLossSum(logits, flat);
    return { loss: tf.div(sum, Math.max(1, count)) as tf.Scalar, count };
  });
}
