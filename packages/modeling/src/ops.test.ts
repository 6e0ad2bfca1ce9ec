// The composed ops (the path every backend without fused kernels takes) against
// hand-computed values and central finite differences.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { rmsNorm } from './ops.js';

describe('rmsNorm', () => {
  beforeAll(async () => {
    await useBackend('cpu', {});
  });

  it('divides by the root mean square and scales (Llama RMSNorm, hand-checked)', () => {
    // rms([1, 2, 3, 4]) = sqrt(30 / 4) = 2.738613; weights [1, 1, 2, 0.5]
    const y = rmsNorm(tf.tensor2d([[1, 2, 3, 4]]), tf.tensor1d([1, 1, 2, 0.5]), 0).dataSync();
    [0.365148, 0.730297, 2.19089, 0.730297].forEach((v, i) => expect(y[i]).toBeCloseTo(v, 5));
    // eps enters under the root: x = [0, 0] stays 0 rather than NaN
    expect(Array.from(rmsNorm(tf.zeros([1, 2]), tf.ones([2]), 1e-6).dataSync())).toEqual([0, 0]);
  });

  it('has the gradient that central finite differences give, for x and weight', () => {
    const x = tf.randomNormal([2, 5], 0, 1, 'float32', 3);
    const w = tf.randomNormal([5], 1, 0.2, 'float32', 4);
    const proj = tf.randomNormal([2, 5], 0, 1, 'float32', 5);
    const f = (xi: tf.Tensor, wi: tf.Tensor) => tf.sum(tf.mul(rmsNorm(xi, wi, 1e-5), proj)) as tf.Scalar;
    const [gx, gw] = tf
      .grads(f)([x, w])
      .map((g) => g.dataSync());
    const h = 1e-2;
    const bump = (t: tf.Tensor, i: number, d: number) => {
      const v = Float32Array.from(t.dataSync());
      v[i] += d;
      return tf.tensor(v, t.shape);
    };
    for (let i = 0; i < 10; i++) {
      const numeric = (f(bump(x, i, h), w).dataSync()[0] - f(bump(x, i, -h), w).dataSync()[0]) / (2 * h);
      expect(gx[i]).toBeCloseTo(numeric, 2);
    }
    for (let i = 0; i < 5; i++) {
      const numeric = (f(x, bump(w, i, h)).dataSync()[0] - f(x, bump(w, i, -h)).dataSync()[0]) / (2 * h);
      expect(gw[i]).toBeCloseTo(numeric, 2);
    }
  });
});
