// What every architecture's forward pass takes and returns (transformers' argument and
// output names, camelCased), and the key/value cache used for fast generation.
import * as tf from '@tensorflow/tfjs-core';
import type { StaticKvCache } from './kv-cache.js';

export interface ForwardArgs {
  /** [B, T] int32 token ids. */
  inputIds: tf.Tensor2D;
  /** [B, S] with 1 for real tokens and 0 for padding; S = past + T when a cache is given. */
  attentionMask?: tf.Tensor2D;
  /** [B, T] segment ids (BERT). */
  tokenTypeIds?: tf.Tensor2D;
  /** [B, T] positions; default past .. past + T - 1, as transformers. */
  positionIds?: tf.Tensor2D;
  /**
   * [B, T] document number of each token in packed rows (0 = padding): attention stays
   * within a document. Pair it with positionIds restarted per document.
   */
  documentIds?: tf.Tensor2D;
  /** Keys and values of earlier positions (from a previous call with useCache). */
  pastKeyValues?: KvCache;
  /** Return the keys and values of all positions for the next call. */
  useCache?: boolean;
  /**
   * A static cache instead (generation): this call's keys and values are written into it at
   * cache index `cachePosition`, attention reads all its L positions, attentionMask is [B, L]
   * (0 for padding and unwritten slots) and positionIds must be given.
   */
  staticCache?: StaticKvCache;
  /** int32 [1]: the static cache index of this call's first token (default: staticCache.length). */
  cachePosition?: tf.Tensor1D;
  /** Enables dropout (else the model runs as in eval mode). */
  training?: boolean;
  /** Base seed of this pass's dropout masks (e.g. derived from the step). */
  dropoutSeed?: number;
  /**
   * Activation checkpointing in training: each block keeps only its input and recomputes its
   * activations in the backward pass (less memory, one more forward per block).
   */
  gradientCheckpointing?: boolean;
  outputHiddenStates?: boolean;
  outputAttentions?: boolean;
  /**
   * Masked-LM heads only: the logits at these flattened positions (b·T + t) alone, [n, V]
   * instead of [B, T, V] (the MLM loss reads the masked positions only, ~15% of them).
   */
  logitsAt?: tf.Tensor1D;
}

/** hidden [B, T, C] -> the rows at flattened positions `at` as [1, n, C] (for a head run on those rows only). */
export function hiddenRowsAt(hidden: tf.Tensor3D, at: tf.Tensor1D): tf.Tensor3D {
  const [B, T, C] = hidden.shape;
  return tf.reshape(tf.gather(tf.reshape(hidden, [B * T, C]), at), [1, at.shape[0], C]) as tf.Tensor3D;
}

/** One layer's cached keys and values, [B, heads, S, headDim] (before grouped-query repetition). */
export interface LayerKv {
  key: tf.Tensor4D;
  value: tf.Tensor4D;
}
export type KvCache = LayerKv[];

export interface ModelOutput {
  /** [B, T, V] for language models, [B, numLabels] for sequence classification. */
  logits: tf.Tensor;
  pastKeyValues?: KvCache;
  /** Embedding output, then each layer's output (the last one after the final norm, as transformers). */
  hiddenStates?: tf.Tensor3D[];
  /** Each layer's attention probabilities [B, H, T, S]. */
  attentions?: tf.Tensor4D[];
}

/**
 * Additive attention bias [B|1, 1, T, S]: 0 where query t may see key s (s <= past + t, within
 * `slidingWindow` positions back when given, and the key is not padding), -1e9 elsewhere.
 */
export function attentionBias(
  batch: number,
  t: number,
  past: number,
  attentionMask?: tf.Tensor2D,
  causal = true,
  documentIds?: tf.Tensor2D,
  slidingWindow?: number,
): tf.Tensor4D {
  return tf.tidy(() => {
    const s = past + t;
    let bias: tf.Tensor = causal ? causalBias(tf.scalar(past, 'int32'), t, s, slidingWindow) : tf.zeros([1, 1, t, s]);
    if (attentionMask) {
      if (attentionMask.shape[1] !== s)
        throw new Error(`attentionMask has ${attentionMask.shape[1]} positions, expected past ${past} + ${t}`);
      bias = tf.add(bias, paddingBias(attentionMask)); // [B, 1, T, S]
    }
    if (documentIds) {
      if (past) throw new Error('documentIds cannot be combined with a KV cache');
      const q = tf.reshape(documentIds, [batch, 1, t, 1]);
      const k = tf.reshape(documentIds, [batch, 1, 1, t]);
      bias = tf.add(bias, tf.mul(tf.cast(tf.notEqual(q, k), 'float32'), -1e9)); // [B, 1, T, T]
    }
    return bias as tf.Tensor4D;
  });
}

/**
 * [1, 1, T, S]: -1e9 where key s lies after query t (queries sit at key indices first .. first
 * + T - 1; `first` an int32 scalar or [1] tensor) or, with a sliding window, `window` or more
 * positions before it (indices in the sequence, as transformers).
 */
export function causalBias(first: tf.Tensor, t: number, s: number, slidingWindow?: number): tf.Tensor4D {
  const q = tf.reshape(tf.add(tf.range(0, t, 1, 'int32'), first), [t, 1]); // [T, 1]
  const k = tf.reshape(tf.range(0, s, 1, 'int32'), [1, s]); // [1, S]
  let hidden = tf.greater(k, q); // future keys
  if (slidingWindow) hidden = tf.logicalOr(hidden, tf.lessEqual(k, tf.sub(q, slidingWindow)));
  return tf.reshape(tf.mul(tf.cast(hidden, 'float32'), -1e9), [1, 1, t, s]) as tf.Tensor4D;
}

/** [B, 1, 1, S]: -1e9 at padded keys (attentionMask [B, S], 0 for padding). */
export function paddingBias(attentionMask: tf.Tensor2D): tf.Tensor4D {
  const [batch, s] = attentionMask.shape;
  return tf.mul(tf.sub(1, tf.reshape(tf.cast(attentionMask, 'float32'), [batch, 1, 1, s])), -1e9) as tf.Tensor4D;
}

/** Default position ids: past .. past + T - 1 for every row. */
export function defaultPositions(batch: number, t: number, past: number): tf.Tensor2D {
  return tf.tidy(
    () =>
      tf.tile(tf.reshape(tf.add(tf.range(0, t, 1, 'int32'), tf.scalar(past, 'int32')), [1, t]), [
        batch,
        1,
      ]) as tf.Tensor2D,
  );
}

/** The static cache index of a call's first token: cachePosition, else the cache's length (see ForwardArgs). */
export function staticPosition(a: ForwardArgs): tf.Tensor1D {
  return a.cachePosition ?? tf.tensor1d([a.staticCache!.length], 'int32');
}

/** A static-cache call's attention mask [B, L] (required: it says which slots are written). */
export function staticMask(a: ForwardArgs): tf.Tensor2D {
  if (!a.attentionMask || !a.positionIds)
    throw new Error('a forward pass with staticCache needs attentionMask [B, L] and positionIds [B, T]');
  return a.attentionMask;
}
