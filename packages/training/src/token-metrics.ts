// TRL's per-token training metrics, over the positions that carry a label (-100 = none):
// mean_token_accuracy (argmax equals the label) and entropy (of the predicted distribution,
// in nats, averaged), on logits already aligned with their labels ([N, V] and [N]) — all at
// once, or a chunk of rows at a time as the chunked loss hands them over (TokenTally).
import * as tf from '@tensorflow/tfjs-core';

/** Sums of correct predictions and entropies over counted positions, added to chunk by chunk. */
export class TokenTally {
  correct = 0;
  entropy = 0;
  readonly numTokens: number;

  /** labels [N] of all rows (-100 = not counted). */
  constructor(private readonly labels: Int32Array) {
    this.numTokens = labels.reduce((n, l) => n + (l === -100 ? 0 : 1), 0);
  }

  /** Adds logits [n, V] of rows start .. start + n (a HeadPass observer). */
  readonly observe = (logits: tf.Tensor2D, start: number): void => {
    const labels = this.labels.subarray(start, start + logits.shape[0]);
    if (!labels.some((l) => l !== -100)) return;
    tf.tidy(() => {
      const pred = tf.argMax(logits, 1).dataSync();
      labels.forEach((l, i) => {
        if (l !== -100 && pred[i] === l) this.correct++;
      });
      const logp = tf.logSoftmax(logits); // [n, V]
      const ent = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1)); // [n]
      const valid = tf.tensor1d(Float32Array.from(labels, (l) => (l === -100 ? 0 : 1)));
      this.entropy += tf.sum(tf.mul(ent, valid)).dataSync()[0];
    });
  };

  /** The means over counted positions (0 when none count). */
  means(): { meanTokenAccuracy: number; entropy: number; numTokens: number } {
    const n = this.numTokens;
    return { meanTokenAccuracy: n ? this.correct / n : 0, entropy: n ? this.entropy / n : 0, numTokens: n };
  }
}

export function tokenMetrics(
  logits: tf.Tensor2D,
  labels: Int32Array,
): { meanTokenAccuracy: number; entropy: number; numTokens: number } {
  const tally = new TokenTally(labels);
  tally.observe(logits, 0);
  return tally.means();
}
