// TRL's per-token training metrics, over the positions that carry a label (-100 = none):
// mean_token_accuracy (argmax equals the label) and entropy (of the predicted distribution,
// in nats, averaged), on logits already aligned with their labels ([N, V] and [N]).
import * as tf from '@tensorflow/tfjs-core';

export function tokenMetrics(
  logits: tf.Tensor2D,
  labels: Int32Array,
): { meanTokenAccuracy: number; entropy: number; numTokens: number } {
  return tf.tidy(() => {
    const valid = Float32Array.from(labels, (l) => (l === -100 ? 0 : 1));
    const n = valid.reduce((a, b) => a + b, 0);
    if (!n) return { meanTokenAccuracy: 0, entropy: 0, numTokens: 0 };
    const pred = tf.argMax(logits, 1).dataSync();
    let correct = 0;
    labels.forEach((l, i) => {
      if (l !== -100 && pred[i] === l) correct++;
    });
    const logp = tf.logSoftmax(logits); // [N, V]
    const ent = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1)); // [N]
    const entropy = tf.sum(tf.mul(ent, tf.tensor1d(valid))).dataSync()[0] / n;
    return { meanTokenAccuracy: correct / n, entropy, numTokens: n };
  });
}
