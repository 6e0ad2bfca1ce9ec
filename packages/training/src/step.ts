// One optimizer step's gradients over several micro-batches (gradient accumulation), with
// the loss normalized over all loss tokens of the accumulated batch, as transformers does
// since v4.46: each micro-batch contributes its loss *sum*; the total is divided by the
// token count of all micro-batches together, so batch 8 equals 4 x 2 accumulation.
import * as tf from '@tensorflow/tfjs-core';
import { NumericError, clipGradNorm, valueAndGrads, type Collective } from '@anneal/core';

/**
 * A micro-batch's summed loss (a scalar) and how many units it covers (tokens for LM
 * losses, pairs for preference losses); optionally other metrics as sums over those units
 * (e.g. correct predictions), averaged over the accumulated batch like the loss, and the
 * number of input tokens when `count` is not tokens (for train/num_tokens).
 */
export type LossSum = () => { sum: tf.Scalar; count: number; metrics?: Record<string, number>; tokens?: number };

/**
 * Mean loss over all units (tokens, pairs) of all micro-batches, and its gradients (summed,
 * then divided). With a collective the sums (gradients, loss, units, tokens, metrics) are
 * added across ranks first, so N ranks equal one process with the N-times batch.
 */
export function accumulatedGradients(
  params: Map<string, tf.Variable>,
  microBatches: LossSum[],
  collective?: Collective,
): { loss: number; tokens: number; grads: Map<string, tf.Tensor>; metrics: Record<string, number> } {
  let total: Map<string, tf.Tensor> | undefined;
  let lossSum = 0;
  let tokens = 0;
  let units = 0;
  const sums: Record<string, number> = {};
  for (const micro of microBatches) {
    let count = 0;
    const { value, grads } = valueAndGrads(params, () => {
      const r = micro();
      count = r.count;
      tokens += r.tokens ?? r.count;
      for (const [k, v] of Object.entries(r.metrics ?? {})) sums[k] = (sums[k] ?? 0) + v;
      return r.sum;
    });
    lossSum += value.dataSync()[0];
    value.dispose();
    units += count;
    if (!total) total = grads;
    else {
      for (const [name, g] of grads) {
        const prev = total.get(name);
        total.set(name, prev ? tf.add(prev, g) : g);
        if (prev) tf.dispose([prev, g]);
      }
    }
  }
  if (collective && collective.worldSize > 1) {
    // one all-reduce: every gradient sum, then [loss, units, tokens, ...metric sums]
    const names = [...params.keys()];
    const keys = Object.keys(sums).sort();
    const local = names.map((n) => total?.get(n) ?? tf.zerosLike(params.get(n)!));
    const counters = tf.tensor1d([lossSum, units, tokens, ...keys.map((k) => sums[k])]);
    const reduced = collective.allReduce([...local, counters], 'sum');
    tf.dispose([...local, counters]);
    const reducedCounters = reduced.pop()!;
    const c = reducedCounters.dataSync();
    reducedCounters.dispose();
    [lossSum, units, tokens] = [c[0], c[1], c[2]];
    keys.forEach((k, i) => (sums[k] = c[3 + i]));
    total = new Map(names.map((n, i) => [n, reduced[i]]));
  }
  const n = Math.max(1, units);
  const grads = new Map<string, tf.Tensor>();
  for (const [name, g] of total ?? []) {
    grads.set(name, tf.div(g, n));
    g.dispose();
  }
  const metrics = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / n]));
  return { loss: lossSum / n, tokens, grads, metrics };
}

/**
 * Clips, checks and applies one update: a NaN/Inf loss or gradient norm skips the update
 * and reports why (the caller stops with an error or goes on, as configured).
 */
export function guardedUpdate(
  grads: Map<string, tf.Tensor>,
  loss: number,
  o: { clip: number; apply: (g: Map<string, tf.Tensor>) => void },
): { norm: number; problem?: string } {
  const { norm, grads: clipped } = clipGradNorm(grads, o.clip); // consumes grads
  const finite = Number.isFinite(loss) && Number.isFinite(norm);
  if (finite) o.apply(clipped);
  tf.dispose([...clipped.values()]);
  return finite ? { norm } : { norm, problem: Number.isFinite(loss) ? `gradient norm is ${norm}` : `loss is ${loss}` };
}

/** What a skipped (non-finite) update means under train.onNonFinite: an error naming the step, or a logged skip. */
export function handleNonFinite(
  problem: string | undefined,
  step: number,
  policy: 'error' | 'skip',
  lastCheckpoint: string,
  info: (m: string) => void,
): void {
  if (!problem) return;
  if (policy === 'error') {
    throw new NumericError(`step ${step}: ${problem}`, {
      field: 'train.onNonFinite',
      hint: `the last good checkpoint is ${lastCheckpoint || '(none yet)'}; lower optim.lr, or set train.onNonFinite: skip`,
    });
  }
  info(`step ${step}: ${problem}; update skipped`);
}
