// The causal-LM loss of a batch as the recipes compute it: the model's final hidden states,
// then the head and the cross-entropy together, in chunks of rows per train.lossChunkSize
// (modeling's head-chunks.ts), with TRL's token metrics tallied from the same logits.
import * as tf from '@tensorflow/tfjs-core';
import { causalLmTargets, chunkRowsFor, headCrossEntropySum, type CausalLm, type ForwardArgs } from '@anneal/modeling';
import { TokenTally } from './token-metrics.js';

/**
 * Summed cross-entropy of labels [B * T] (shifted inside: position t predicts labels[t + 1];
 * -100 = ignored), the number counted, and the tally of accuracy and entropy when `metrics`.
 * Call inside tf.tidy or a gradient function.
 */
export function causalLmBatchLoss(
  lm: CausalLm,
  args: ForwardArgs,
  labels: Int32Array,
  o: { lossChunkSize: number | 'auto'; metrics?: boolean },
): { sum: tf.Scalar; count: number; tally?: TokenTally } {
  const [B, T] = args.inputIds.shape;
  const hidden = lm.hidden(args); // [B, T, C]
  const head = lm.lmHead();
  const { targets } = causalLmTargets(labels, B, T);
  const tally = o.metrics ? new TokenTally(targets) : undefined;
  const { sum, count } = headCrossEntropySum(tf.reshape(hidden, [B * T, -1]) as tf.Tensor2D, head, targets, {
    chunkRows: chunkRowsFor(o.lossChunkSize, B * T, head.vocabSize),
    observe: tally?.observe,
  });
  return { sum, count, tally };
}
