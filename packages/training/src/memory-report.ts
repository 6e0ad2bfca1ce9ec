// The memory line a run prints at its first step: what the tensors alive before it hold
// (weights, and optimizer state once made), what training adds for the trainable
// parameters, and what the first micro-batch's forward pass keeps for its backward pass
// (measured, not modelled: every architecture and option is counted as it runs).
import * as tf from '@tensorflow/tfjs-core';

/** Bytes held by live tensors: the backend's own count where it keeps one (torch: a storage shared by views once). */
export function liveTensorBytes(): number {
  const m = tf.memory() as { numBytes: number; numBytesInBackend?: number };
  return m.numBytesInBackend ?? m.numBytes;
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;

export function memoryReport(o: {
  /** liveTensorBytes() before the first step. */
  before: number;
  /** Trainable parameters (float32: a gradient and two AdamW moments each). */
  trainable: number;
  /** What the first micro-batch's forward pass left alive for its backward pass, and its tokens. */
  kept: number;
  tokens: number;
  gradientCheckpointing: boolean;
}): string {
  const hint =
    !o.gradientCheckpointing && o.kept > o.before
      ? '; train.gradientCheckpointing: true would keep only each block input'
      : '';
  return (
    `memory: ${mb(o.before)} of tensors before the first step; ${(o.trainable / 1e6).toFixed(2)}M trainable ` +
    `parameters add ${mb(4 * o.trainable)} of gradients and ${mb(8 * o.trainable)} of AdamW moments; the first ` +
    `micro-batch (${o.tokens} tokens) kept ${mb(o.kept)} for its backward pass${hint}`
  );
}
