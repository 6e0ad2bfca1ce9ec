// The projections every architecture is made of, in one place: nn.Linear (weight [out, in])
// and GPT-2's Conv1D (weight [in, out]), over the last axis of x. A weight may carry an
// adapter (LoRA, from @anneal/peft-lora) that wraps the projection: the model code calls
// linear() as always, and the adapter adds its term, as PEFT wraps nn.Linear modules.
// Embedding lookups go through embedding() the same way.
import * as tf from '@tensorflow/tfjs-core';

/** Wraps a projection: gets x and the base projection, returns the adapted output. */
export type LinearAdapter = (x: tf.Tensor, base: (x: tf.Tensor) => tf.Tensor) => tf.Tensor;

const adapters = new WeakMap<tf.Tensor, LinearAdapter>();
const projections = new WeakMap<tf.Tensor, (x: tf.Tensor) => tf.Tensor>();

/** Registers (or with undefined removes) the adapter of a weight; keyed by the weight tensor itself. */
export function setLinearAdapter(weight: tf.Tensor, adapter: LinearAdapter | undefined): void {
  if (adapter) adapters.set(weight, adapter);
  else adapters.delete(weight);
}

/**
 * Replaces (or with undefined restores) how x is projected through a weight, bias left out:
 * a quantized weight (from @anneal/quantization) dequantizes inside its own projection, and
 * the f32 tensor `weight` is then only a key and a shape.
 */
export function setLinearProjection(weight: tf.Tensor, project: ((x: tf.Tensor) => tf.Tensor) | undefined): void {
  if (project) projections.set(weight, project);
  else projections.delete(weight);
}

/** Does this weight project through a replacement (a quantized one)? */
export function hasLinearProjection(weight: tf.Tensor): boolean {
  return projections.has(weight);
}

/**
 * y = x W^T + b for `layout` 'linear' (W [out, in]), or x W + b for 'conv1d' (W [in, out]);
 * x [..., in] -> y [..., out].
 */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor, layout: 'linear' | 'conv1d' = 'linear'): tf.Tensor {
  const project = projections.get(w);
  const base = (xi: tf.Tensor) => {
    if (project) return b ? tf.add(project(xi), b) : project(xi);
    const conv = layout === 'conv1d';
    const [inDim, outDim] = conv ? [w.shape[0]!, w.shape[1]!] : [w.shape[1]!, w.shape[0]!];
    let y = tf.matMul(tf.reshape(xi, [-1, inDim]), w, false, !conv); // [N, out]
    if (b) y = tf.add(y, b);
    return tf.reshape(y, [...xi.shape.slice(0, -1), outDim]);
  };
  const adapter = adapters.get(w);
  return adapter ? adapter(x, base) : base(x);
}

/** Wraps an embedding lookup: gets the ids and the base lookup, returns the adapted rows. */
export type EmbeddingAdapter = (ids: tf.Tensor, base: (ids: tf.Tensor) => tf.Tensor) => tf.Tensor;

const embeddingAdapters = new WeakMap<tf.Tensor, EmbeddingAdapter>();

/** Registers (or with undefined removes) the adapter of an embedding table. */
export function setEmbeddingAdapter(table: tf.Tensor, adapter: EmbeddingAdapter | undefined): void {
  if (adapter) embeddingAdapters.set(table, adapter);
  else embeddingAdapters.delete(table);
}

/** Rows of an embedding table [V, C] for ids [...]: [..., C]; an adapter on the table adds its term. */
export function embedding(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  const base = (i: tf.Tensor) => tf.gather(table, i);
  const adapter = embeddingAdapters.get(table);
  return adapter ? adapter(ids, base) : base(ids);
}
