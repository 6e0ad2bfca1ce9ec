// Sequence log-probabilities of labelled tokens, as TRL's get_batch_logps (DPO, KTO, ORPO, CPO): position t
// predicts labels[t + 1]; positions labelled -100 (prompt, padding) do not count. Summed per
// sequence, or averaged over its counted tokens (IPO).
import * as tf from '@tensorflow/tfjs-core';
import {
  IGNORE_INDEX,
  causalLmTargets,
  chunkRowsFor,
  headTargetLogprobs,
  tokenLogprobs,
  type CausalLm,
  type ForwardArgs,
} from '@anneal/modeling';

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
  const { targets, mask, counts } = logpsTargets(labels, B, T);
  const flat = tf.reshape(logits, [B * T, V]) as tf.Tensor2D; // [N, V]
  const picked = tokenLogprobs(flat, targets); // [N]
  const m = tf.tensor2d(mask, [B, T]);
  const safeCounts = tf.tensor1d(Float32Array.from(counts, (c) => Math.max(1, c)));
  return { ...sequenceSums(flat, picked, m, safeCounts, B, T, o.average), counts };
}

/**
 * batchLogps of the model's own forward pass, the head and the log-softmax a chunk of rows at a
 * time per lossChunkSize (the [B * T, V] logits never all alive; see modeling's head-chunks.ts).
 * Call inside tf.tidy or a gradient function.
 */
export function modelBatchLogps(
  lm: CausalLm,
  args: ForwardArgs,
  labels: Int32Array,
  o: { average?: boolean; lossChunkSize: number | 'auto' },
): BatchLogps {
  const [B, T] = args.inputIds.shape;
  const head = lm.lmHead();
  const { targets, mask, counts } = logpsTargets(labels, B, T);
  const rowSums = new Float32Array(B * T); // each position's logits summed over the vocabulary (for meanLogits)
  const picked = headTargetLogprobs(tf.reshape(lm.hidden(args), [B * T, -1]) as tf.Tensor2D, head, targets, {
    chunkRows: chunkRowsFor(o.lossChunkSize, B * T, head.vocabSize),
    observe: (logits, start) =>
      rowSums.set(
        tf.tidy(() => tf.sum(logits, 1).dataSync()),
        start,
      ),
  }); // [N]
  const sums = tf.sum(tf.mul(tf.reshape(picked, [B, T]), tf.tensor2d(mask, [B, T])), 1); // [B]
  const safeCounts = Float32Array.from(counts, (c) => Math.max(1, c));
  const meanLogits = new Float32Array(B);
  for (let i = 0; i < B * T; i++) meanLogits[Math.floor(i / T)] += mask[i] * rowSums[i];
  for (let b = 0; b < B; b++) meanLogits[b] /= safeCounts[b] * head.vocabSize;
  return {
    logps: (o.average ? tf.div(sums, tf.tensor1d(safeCounts)) : sums) as tf.Tensor1D,
    counts,
    meanLogits: tf.tensor1d(meanLogits),
  };
}

/**
 * What batchLogps needs of the labels, on the host: each position's target (labels[t + 1];
 * 0 where not counted), the mask of counted positions [B * T] and the count per sequence. All
 * B x T positions are scored (the last masked) so the logits are used as they are, without
 * copying the [B, T-1, V] slice. Upload them with the batch for batchLogpsOfTargets.
 */
export function logpsTargets(
  labels: Int32Array,
  B: number,
  T: number,
): { targets: Int32Array; mask: Float32Array; counts: Float32Array } {
  const shifted = causalLmTargets(labels, B, T).targets; // the causal-LM loss's own shift: position t scores labels[t + 1]
  const mask = Float32Array.from(shifted, (t) => (t === IGNORE_INDEX ? 0 : 1));
  const targets = Int32Array.from(shifted, (t) => (t === IGNORE_INDEX ? 0 : t)); // -100 -> 0, masked out
  const counts = new Float32Array(B);
  for (let i = 0; i < B * T; i++) counts[Math.floor(i / T)] += mask[i];
  return { targets, mask, counts };
}

/**
 * batchLogps from tensors already on the device (logpsTargets' arrays, uploaded; counts at
 * least 1): nothing is read back, so a step built on it can be recorded and replayed.
 * targets [B * T] int32, mask [B, T], counts [B]. Call inside tf.tidy or a gradient function.
 */
export function batchLogpsOfTargets(
  logits: tf.Tensor3D,
  targets: tf.Tensor1D,
  mask: tf.Tensor2D,
  counts: tf.Tensor1D,
  o: { average?: boolean } = {},
): { logps: tf.Tensor1D; meanLogits: tf.Tensor1D } {
  const [B, T, V] = logits.shape;
  const flat = tf.reshape(logits, [B * T, V]) as tf.Tensor2D;
  const rows = tf.mul(tf.range(0, B * T, 1, 'int32'), tf.scalar(V, 'int32')); // each row's offset in the flattened logits
  const picked = tf.gather(tf.reshape(tf.logSoftmax(flat, -1), [B * T * V]), tf.add(rows, targets)) as tf.Tensor1D; // [N]
  return sequenceSums(flat, picked, mask, counts, B, T, o.average);
}

/** Masked per-sequence sums (or means) of the picked log-probs, and TRL's mean logits. */
function sequenceSums(
  flat: tf.Tensor2D,
  picked: tf.Tensor1D,
  mask: tf.Tensor2D,
  counts: tf.Tensor1D,
  B: number,
  T: number,
  average?: boolean,
): { logps: tf.Tensor1D; meanLogits: tf.Tensor1D } {
  const V = flat.shape[1];
  const sums = tf.sum(tf.mul(tf.reshape(picked, [B, T]), mask), 1); // [B]
  const logps = (average ? tf.div(sums, counts) : sums) as tf.Tensor1D;
  const meanLogits = tf.div(
    tf.sum(tf.mul(tf.reshape(tf.sum(flat, 1), [B, T]), mask), 1),
    tf.mul(counts, V),
  ) as tf.Tensor1D;
  return { logps, meanLogits };
}
