// The value model's side of a PPO rollout: its estimate before each response token.
import * as tf from '@tensorflow/tfjs-core';
import type { DecoderForSequenceClassification } from '@anneal/modeling';
import { forwardArgs, type RolloutBatch } from '@anneal/training';

/** The value model's estimate at the position before each response token: [n, Tr]. Call inside tf.tidy or a gradient function. */
export function responseValues(
  value: DecoderForSequenceClassification,
  batch: RolloutBatch,
  rows: number[],
): tf.Tensor2D {
  const scores = value.tokenScores(forwardArgs(batch, rows)); // [n, T, 1]
  return tf.reshape(tf.slice(scores, [0, batch.Tq - 1, 0], [rows.length, batch.Tr, 1]), [
    rows.length,
    batch.Tr,
  ]) as tf.Tensor2D;
}
