// The projections every architecture is made of, in one place: nn.Linear (weight [out, in])
// and GPT-2's Conv1D (weight [in, out]), over the last axis of x. A weight may carry an
// adapter (LoRA, from @anneal/peft-lora) that wraps the projection: the model code calls
// linear() as always, and the adapter adds its term, as PEFT wraps nn.Linear modules.
import * as tf from '@tensorflow/tfjs-core';

/** Wraps a projection: gets x and the base projection, returns the adapted output. */
export type LinearAdapter = (x: tf.Tensor, base: (x: tf.Tensor) => tf.Tensor) => tf.Tensor;

const adapters = new WeakMap<tf.Tensor, LinearAdapter>();

/** Registers (or with undefined removes) the adapter of a weight; keyed by the weight tensor itself. */
export function setLinearAdapter(weight: tf.Tensor, adapter: LinearAdapter | undefined): void {
  if (adapter) adapters.set(weight, adapter);
  else adapters.delete(weight);
}

/**
 * y = x W^T + b for `layout` 'linear' (W [out, in]), or x W + b for 'conv1d' (W [in, out]);
 * x [..., in] -> y [..., out].
 */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor, layout: 'linear' | 'conv1d' = 'linear'): tf.Tensor {
  const base = (xi: tf.Tensor) => {
    const conv = layout === 'conv1d';
    const [inDim, outDim] = conv ? [w.shape[0]!, w.shape[1]!] : [w.shape[1]!, w.shape[0]!];
    let y = tf.matMul(tf.reshape(xi, [-1, inDim]), w, false, !conv); // [N, out]
    if (b) y = tf.add(y, b);
    return tf.reshape(y, [...xi.shape.slice(0, -1), outDim]);
  };
  const adapter = adapters.get(w);
  return adapter ? adapter(x, base) : base(x);
}
