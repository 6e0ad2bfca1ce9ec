// A static key/value cache for generation (transformers' StaticCache): each layer's keys and
// values preallocated for the generation's whole length, [B, KV, L, D], and written at the
// current cache index. On the torch backend the write is in place (AnnealCacheWrite), so a
// decode step neither grows nor recopies the cache, and its shapes are the same at every token:
// what lets generation record the decode step once and replay it natively. Other backends run
// the same arithmetic with tfjs ops (a new tensor per write, as the growing cache did).
import * as tf from '@tensorflow/tfjs-core';
import { hasAnnealKernel, runAnnealKernel } from '@anneal/core';
import { causalBias, paddingBias, type LayerKv } from './types.js';

export class StaticKvCache {
  /** Each layer's keys and values [B, KV, L, D]; allocated at the layer's first write. */
  readonly layers: Array<LayerKv | undefined> = [];
  /** Cache index of the next write: how many positions are written (the caller advances it). */
  length = 0;

  constructor(
    readonly batch: number,
    /** L: the generation's whole length (prompt + new tokens). */
    readonly maxLength: number,
  ) {}

  /**
   * Writes layer l's new keys and values [B, KV, T, D] at cache index `position` (int32 [1]:
   * a tensor, so a recorded decode step takes it as an input; its value is `this.length`)
   * and returns the layer's whole cache [B, KV, L, D] (unwritten slots are zeros: the
   * attention bias hides them).
   */
  write(l: number, key: tf.Tensor, value: tf.Tensor, position: tf.Tensor1D): LayerKv {
    const [B, KV, T, D] = key.shape as [number, number, number, number];
    if (B !== this.batch || this.length + T > this.maxLength)
      throw new Error(
        `StaticKvCache: writing [${key.shape}] at ${this.length} into batch ${this.batch} × length ${this.maxLength}`,
      );
    let layer = this.layers[l];
    if (!layer) {
      layer = {
        key: tf.keep(tf.zeros([B, KV, this.maxLength, D])),
        value: tf.keep(tf.zeros([B, KV, this.maxLength, D])),
      };
      this.layers[l] = layer;
    }
    if (hasAnnealKernel('AnnealCacheWrite'))
      return {
        key: runAnnealKernel('AnnealCacheWrite', { cache: layer.key, update: key, position }, {})[0] as tf.Tensor4D,
        value: runAnnealKernel(
          'AnnealCacheWrite',
          { cache: layer.value, update: value, position },
          {},
        )[0] as tf.Tensor4D,
      };
    // tfjs ops: the cache rebuilt around the new rows (the old tensors freed)
    const at = this.length;
    const splice = (cache: tf.Tensor4D, rows: tf.Tensor) =>
      tf.keep(
        tf.concat(
          [
            tf.slice(cache, [0, 0, 0, 0], [B, KV, at, D]),
            rows,
            tf.slice(cache, [0, 0, at + T, 0], [B, KV, this.maxLength - at - T, D]),
          ],
          2,
        ) as tf.Tensor4D,
      );
    const next = { key: splice(layer.key, key), value: splice(layer.value, value) };
    tf.dispose([layer.key, layer.value]);
    this.layers[l] = next;
    return next;
  }

  /**
   * Keeps batch rows `rows` in this order (beam search reorders its beams). On the torch
   * backend the reordered rows are copied back into the same tensors, which a recorded
   * decode step holds on to.
   */
  select(rows: number[]): void {
    const idx = tf.tensor1d(rows, 'int32');
    const inPlace = hasAnnealKernel('AnnealCacheWrite');
    const start = tf.tensor1d([0], 'int32');
    this.layers.forEach((layer, l) => {
      if (!layer) return;
      if (inPlace)
        return tf.tidy(() => {
          for (const cache of [layer.key, layer.value])
            runAnnealKernel('AnnealCacheWrite', { cache, update: tf.gather(cache, idx), position: start }, {});
        });
      this.layers[l] = { key: tf.keep(tf.gather(layer.key, idx)), value: tf.keep(tf.gather(layer.value, idx)) };
      tf.dispose([layer.key, layer.value]);
    });
    tf.dispose([idx, start]);
  }

  dispose(): void {
    for (const layer of this.layers) if (layer) tf.dispose([layer.key, layer.value]);
    this.layers.length = 0;
  }
}

/**
 * Attention bias [B|1, 1, T, L] for queries at cache indices position .. position + T - 1 over
 * a static cache of length L: 0 where the key's index is at most the query's (and within
 * `slidingWindow` of it), and the key is not padding (attentionMask [B, L], 0 for padding and
 * for slots not written yet); -1e9 elsewhere. Made from tensors only (the position is one), so
 * a recorded decode step computes it anew at every replay.
 */
export function staticCacheBias(
  batch: number,
  t: number,
  length: number,
  position: tf.Tensor1D,
  attentionMask: tf.Tensor2D,
  slidingWindow?: number,
): tf.Tensor4D {
  if (attentionMask.shape[0] !== batch || attentionMask.shape[1] !== length)
    throw new Error(`attentionMask is [${attentionMask.shape}], expected the static cache's [${batch}, ${length}]`);
  // queries at cache indices position ..; keys are all L slots
  return tf.tidy(
    () => tf.add(causalBias(position, t, length, slidingWindow), paddingBias(attentionMask)) as tf.Tensor4D,
  );
}
