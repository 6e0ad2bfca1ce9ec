// Causal language-modelling loss as transformers computes it: position t predicts token
// t + 1 (logits[:, :-1] vs labels[:, 1:]); labels equal to -100 are ignored; the loss is
// the mean cross-entropy over the remaining targets.
import * as tf from '@tensorflow/tfjs-core';

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
      if (targets[i] < 0 || targets[i] >= V) throw new RangeError(`target id ${targets[i]} at position ${i} is outside the vocabulary (size ${V})`);
      valid[i] = 1;
      safe[i] = targets[i];
      count++;
    }
  }
  const sum = tf.tidy(() => {
    const logp = tf.logSoftmax(logits, -1); // [N, V]
    const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(safe, 'int32'), V)), -1); // [N]
    return tf.neg(tf.sum(tf.mul(picked, tf.tensor1d(valid)))) as tf.Scalar;
  });
  return { sum, count };
}

/** labels [B, T] (use -100 to ignore), logits [B, T, V]. */
export function causalLmLoss(logits: tf.Tensor3D, labels: Int32Array | number[][]): LmLoss {
  const [B, T, V] = logits.shape;
  const flat = Array.isArray(labels) ? Int32Array.from(labels.flat()) : labels;
  if (flat.length !== B * T) throw new RangeError(`labels have ${flat.length} entries but logits are [${B}, ${T}, ${V}]`);
  // Shift: targets for positions 0..T-2 are labels 1..T-1.
  const targets = new Int32Array(B * (T - 1));
  for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) targets[b * (T - 1) + t] = flat[b * T + t + 1];
  const shifted = tf.tidy(() => tf.reshape(tf.slice(logits, [0, 0, 0], [B, T - 1, V]), [B * (T - 1), V]) as tf.Tensor2D);
  const { sum, count } = crossEntropySum(shifted, targets);
  shifted.dispose();
  const loss = tf.tidy(() => tf.div(sum, Math.max(1, count)) as tf.Scalar);
  sum.dispose();
  return { loss, count };
}
