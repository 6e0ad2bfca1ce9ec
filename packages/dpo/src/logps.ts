// Sequence log-probabilities of labelled tokens, as TRL's get_batch_logps: position t
// predicts labels[t + 1]; positions labelled -100 (prompt, padding) do not count. Summed per
// sequence, or averaged over its counted tokens (IPO).
import * as tf from '@tensorflow/tfjs-core';
import { IGNORE_INDEX, tokenLogprobs } from '@anneal/modeling';

export interface BatchLogps {
  /** Per-sequence log-probs [B]: sums, or means with average. */
  logps: tf.Tensor1D;
  /** Counted tokens per sequence. */
  counts: Float32Array;
  /** Per-sequence mean of the logits over counted positions and the vocabulary (TRL's logits/* metrics). */
  meanLogits: tf.Tensor1D;
}

/** logits [B, T, V] and labels [B * T] (row-major, -100 = not counted). Call inside tf.tidy or a gradient function. */
export function batchLogps(logits: tf.Tensor3D, labels: Int32Array, o: { average?: boolean } = {}): BatchLogps {
  const [B, T, V] = logits.shape;
  if (labels.length !== B * T) throw new RangeError(`labels have ${labels.length} entries, expected ${B} x ${T}`);
  // Every position t < T-1 predicts labels[t + 1]; the last has no target. All B x T positions
  // are scored (the last masked) so the logits are used as they are, without copying the
  // [B, T-1, V] slice.
  const N = B * T;
  const mask = new Float32Array(N);
  const safe = new Int32Array(N); // -100 -> 0, masked out below
  const counts = new Float32Array(B);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T - 1; t++) {
      const target = labels[b * T + t + 1];
      if (target === IGNORE_INDEX) continue;
      mask[b * T + t] = 1;
      safe[b * T + t] = target;
      counts[b]++;
    }
  }
  const flat = tf.reshape(logits, [N, V]) as tf.Tensor2D; // [N, V]
  const picked = tokenLogprobs(flat, safe); // [N]
  const m = tf.tensor2d(mask, [B, T]);
  const sums = tf.sum(tf.mul(tf.reshape(picked, [B, T]), m), 1); // [B]
  const safeCounts = tf.tensor1d(Float32Array.from(counts, (c) => Math.max(1, c)));
  const logps = (o.average ? tf.div(sums, safeCounts) : sums) as tf.Tensor1D;
  const meanLogits = tf.div(tf.sum(tf.mul(tf.reshape(tf.sum(flat, 1), [B, T]), m), 1), tf.mul(safeCounts, V)) as tf.Tensor1D;
  return { logps, counts, meanLogits };
}
