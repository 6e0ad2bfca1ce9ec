// tf.variableGrads keys gradients by tfjs's internal variable names; Anneal keys
// parameters by their Hugging Face names. This maps one onto the other.
import * as tf from '@tensorflow/tfjs-core';

export function valueAndGrads(params: Map<string, tf.Variable>, f: () => tf.Scalar): { value: tf.Scalar; grads: Map<string, tf.Tensor> } {
  const trainable = [...params].filter(([, v]) => v.trainable);
  const { value, grads } = tf.variableGrads(f, trainable.map(([, v]) => v));
  const out = new Map<string, tf.Tensor>();
  for (const [name, v] of trainable) {
    const g = grads[v.name];
    if (g) out.set(name, g);
  }
  return { value, grads: out };
}
