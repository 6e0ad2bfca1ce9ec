// Held-out evaluation over batches, written once for the recipes whose batches give a summed
// loss, a count and metric sums (DPO, KTO, ORPO, CPO): up to evalBatches batches (0 = all),
// each run inside tf.tidy, then eval/loss and eval/<metric> as means over all counted units.
import * as tf from '@tensorflow/tfjs-core';

/** One evaluation batch: its summed loss, how many units it counts, and metric sums over them. */
export type HeldOutBatch = () => { sum: tf.Scalar; count: number; metrics: Record<string, number> };

export function heldOutMeans<T>(
  rows: T[],
  o: { batchSize: number; evalBatches: number; wholeBatches?: boolean },
  batch: (items: T[], k: number) => ReturnType<HeldOutBatch>,
): Record<string, number> {
  const bs = o.batchSize;
  // wholeBatches: a last partial batch is left out (KTO's KL pairs need the full batch)
  const nBatches = o.wholeBatches ? Math.floor(rows.length / bs) : Math.ceil(rows.length / bs);
  const limit = o.evalBatches > 0 ? Math.min(o.evalBatches, nBatches) : nBatches;
  let [lossSum, count] = [0, 0];
  const sums: Record<string, number> = {};
  for (let k = 0; k < limit; k++)
    tf.tidy(() => {
      const r = batch(rows.slice(k * bs, (k + 1) * bs), k);
      lossSum += r.sum.dataSync()[0];
      count += r.count;
      for (const [key, v] of Object.entries(r.metrics)) sums[key] = (sums[key] ?? 0) + v;
    });
  return {
    'eval/loss': lossSum / Math.max(1, count),
    ...Object.fromEntries(Object.entries(sums).map(([key, v]) => [`eval/${key}`, v / Math.max(1, count)])),
  };
}
