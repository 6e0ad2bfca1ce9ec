// Gradients of a scalar loss with respect to named parameters. Anneal keys parameters by
// their Hugging Face names; the backward walk is backprop.ts (tfjs's tape, freeing memory
// as it goes).
import * as tf from '@tensorflow/tfjs-core';
import { gradients } from './backprop.js';

export function valueAndGrads(
  params: Map<string, tf.Variable>,
  f: () => tf.Scalar,
): { value: tf.Scalar; grads: Map<string, tf.Tensor> } {
  const trainable = [...params].filter(([, v]) => v.trainable);
  if (trainable.length === 0) throw new Error('valueAndGrads: no trainable parameter');
  const { value, grads } = gradients(
    f,
    trainable.map(([, v]) => v),
  );
  const out = new Map<string, tf.Tensor>();
  trainable.forEach(([name], i) => {
    const g = grads[i];
    if (g) out.set(name, g);
  });
  if (out.size === 0) {
    value.dispose();
    throw new Error('valueAndGrads: the loss does not depend on any trainable parameter');
  }
  return { value, grads: out };
}

/** x's values with no gradient through them (torch's detach()): what is computed from it is a constant to backprop. */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const t = args[0] as tf.Tensor;
    return { value: tf.clone(t), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
  });
  return f(x) as T;
}
