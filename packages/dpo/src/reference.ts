// The reference side of DPO: per-pair log-probs of the chosen and rejected completions
// under a frozen model, computed batch by batch in eval mode (no dropout), and — with
// precomputeRefLogProbs — once for the whole data set, kept in the run folder so a resumed
// run reads them back instead of loading the reference again.
import * as tf from '@tensorflow/tfjs-core';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readSafetensors, serializeSafetensors, writeFileAtomic } from '@anneal/core';
import { collatePreference, type Tokenized } from '@anneal/data';
import type { CausalLm } from '@anneal/modeling';
import { modelBatchLogps } from '@anneal/training';

export type Pair = Extract<Tokenized, { kind: 'preference' }>;

export interface PairLogps {
  chosen: Float32Array;
  rejected: Float32Array;
}

/**
 * Forward of N pairs as one [2N, T] batch (chosen rows, then rejected rows): logps and mean logits
 * per row. Call inside tf.tidy or a gradient function.
 */
export function concatenatedForward(
  lm: CausalLm,
  pairs: Pair[],
  padId: number,
  o: { average: boolean; training: boolean; seed?: number; lossChunkSize: number | 'auto' },
) {
  const b = collatePreference(pairs, { padId });
  const n = pairs.length;
  const args = {
    inputIds: tf.tensor2d(b.inputIds, [2 * n, b.length], 'int32'),
    attentionMask: tf.tensor2d(b.attentionMask, [2 * n, b.length], 'int32'),
    training: o.training,
    dropoutSeed: o.seed,
  };
  const { logps, counts, meanLogits } = modelBatchLogps(lm, args, b.labels, o); // the head in chunks of rows
  const tokens = b.attentionMask.reduce((a, m) => a + m, 0);
  return {
    chosen: tf.slice(logps, 0, n) as tf.Tensor1D,
    rejected: tf.slice(logps, n, n) as tf.Tensor1D,
    meanLogits,
    counts,
    tokens,
  };
}

/** Reference log-probs of pairs, batch by batch, without gradients. */
export function pairLogps(
  lm: CausalLm,
  pairs: Pair[],
  padId: number,
  o: { average: boolean; batchSize: number; lossChunkSize: number | 'auto' },
): PairLogps {
  const chosen = new Float32Array(pairs.length);
  const rejected = new Float32Array(pairs.length);
  for (let k = 0; k < pairs.length; k += o.batchSize) {
    tf.tidy(() => {
      const r = concatenatedForward(lm, pairs.slice(k, k + o.batchSize), padId, { ...o, training: false });
      chosen.set(r.chosen.dataSync(), k);
      rejected.set(r.rejected.dataSync(), k);
    });
  }
  return { chosen, rejected };
}

/** What the cached reference log-probs depend on: every pair's tokens, the averaging, the reference. */
export function referenceKey(sets: Pair[][], average: boolean, reference: string): string {
  const h = createHash('sha256').update(JSON.stringify({ v: 1, average, reference }));
  for (const set of sets) {
    h.update(`|${set.length}`);
    for (const p of set)
      for (const a of [p.prompt, p.chosen, p.rejected])
        h.update(Buffer.from(a.buffer, a.byteOffset, a.byteLength)).update(',');
  }
  return h.digest('hex');
}

/** Reads the file's reference log-probs when its key matches, else computes and writes them (atomically). */
export async function cachedReferenceLogps(
  file: string,
  key: string,
  compute: () => Promise<{ train: PairLogps; eval: PairLogps }>,
): Promise<{ train: PairLogps; eval: PairLogps; cached: boolean }> {
  if (existsSync(file)) {
    const f = readSafetensors(file);
    if (f.metadata.key === key) {
      const get = (n: string) => f.tensors.get(n)!.data as Float32Array;
      return {
        train: { chosen: get('train.chosen'), rejected: get('train.rejected') },
        eval: { chosen: get('eval.chosen'), rejected: get('eval.rejected') },
        cached: true,
      };
    }
  }
  const r = await compute();
  const t = (data: Float32Array) => ({ dtype: 'F32' as const, shape: [data.length], data });
  writeFileAtomic(
    file,
    serializeSafetensors(
      {
        'train.chosen': t(r.train.chosen),
        'train.rejected': t(r.train.rejected),
        'eval.chosen': t(r.eval.chosen),
        'eval.rejected': t(r.eval.rejected),
      },
      { format: 'pt', key },
    ),
  );
  return { ...r, cached: false };
}
