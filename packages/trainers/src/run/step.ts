// One optimizer step's gradients over several micro-batches (gradient accumulation), with
// the loss normalized over all loss tokens of the accumulated batch, as transformers does
// since v4.46: each micro-batch contributes its loss *sum*; the total is divided by the
// token count of all micro-batches together, so batch 8 equals 4 x 2 accumulation.
import * as tf from '@tensorflow/tfjs-core';
import { valueAndGrads } from '@anneal/core';

/** A micro-batch's summed loss (a scalar) and how many tokens it covers. */
export type LossSum = () => { sum: tf.Scalar; count: number };

/** Mean loss over all tokens of all micro-batches, and its gradients (summed, then divided). */
export function accumulatedGradients(params: Map<string, tf.Variable>, microBatches: LossSum[]): { loss: number; tokens: number; grads: Map<string, tf.Tensor> } {
  let total: Map<string, tf.Tensor> | undefined;
  let lossSum = 0;
  let tokens = 0;
  for (const micro of microBatches) {
    let count = 0;
    const { value, grads } = valueAndGrads(params, () => {
      const r = micro();
      count = r.count;
      return r.sum;
    });
    lossSum += value.dataSync()[0];
    value.dispose();
    tokens += count;
    if (!total) total = grads;
    else {
      for (const [name, g] of grads) {
        const prev = total.get(name);
        total.set(name, prev ? tf.add(prev, g) : g);
        if (prev) tf.dispose([prev, g]);
      }
    }
  }
  const n = Math.max(1, tokens);
  const grads = new Map<string, tf.Tensor>();
  for (const [name, g] of total ?? []) {
    grads.set(name, tf.div(g, n));
    g.dispose();
  }
  return { loss: lossSum / n, tokens, grads };
}
