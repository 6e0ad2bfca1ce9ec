// The memory-freeing backward walk against tfjs's own (engine.gradients via tf.grads),
// which it must equal exactly: same tape, same gradient functions, same order.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { TFJS_CORE_VERSION, checkEngineInternals, gradients } from './backprop.js';
import { BackendError } from '../errors.js';
import { useBackend } from './backend.js';

// A customGrad op (like the fused kernels in @anneal/modeling): y = x^2 with its own backward.
const square = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  return { value: tf.mul(x, x), gradFunc: (dy: tf.Tensor, [sx]: tf.Tensor[]) => tf.mul(dy, tf.mul(sx, 2)) };
});

// Shared inputs (x*x), broadcasting, a tied weight used by gather and matMul, multi-output
// ops (split, unstack), a custom gradient, and an x the loss does not depend on.
function loss(w: tf.Tensor, b: tf.Tensor, emb: tf.Tensor): tf.Scalar {
  const ids = tf.tensor2d(
    [
      [0, 3, 1],
      [2, 2, 4],
    ],
    [2, 3],
    'int32',
  );
  const h = tf.gather(emb, ids); // [2, 3, 4]
  const z = tf.add(tf.matMul(tf.reshape(h, [6, 4]), w), b); // [6, 5]
  const [p, q] = tf.split(tf.tanh(z), [2, 3], 1);
  const rows = tf.unstack(tf.mul(q, q), 0);
  const logits = tf.matMul(tf.reshape(h, [6, 4]), emb, false, true); // tied: [6, 5]
  // every kernel whose gradient needs only shapes (their saved tensors are freed while recording)
  const shaped = tf.sub(
    tf.slice(tf.concat([z, logits], 1), [1, 2], [4, 6]),
    tf.expandDims(
      tf
        .stack([b, b, b, b, b, b], 0)
        .slice([0, 0], [1, 5])
        .reshape([5])
        .pad([[0, 1]]),
      0,
    ),
  ); // [4, 6]
  return tf.addN([
    tf.sum(square(p)),
    tf.sum(rows[1]),
    tf.mean(tf.logSoftmax(logits)),
    tf.mul(tf.sum(tf.mul(b, b)), 0.1),
    tf.mean(tf.mul(shaped, shaped)),
  ]) as tf.Scalar;
}

const inputs = () => [
  tf.randomNormal([4, 5], 0, 1, 'float32', 1),
  tf.randomNormal([5], 0, 1, 'float32', 2),
  tf.randomNormal([5, 4], 0, 1, 'float32', 3),
  tf.randomNormal([3], 0, 1, 'float32', 4),
];

describe('gradients (backward walk that frees as it goes)', () => {
  beforeAll(async () => {
    await useBackend('cpu', {});
  });

  it('equals tfjs gradients exactly, and gives null for an input the loss does not use', () => {
    const xs = inputs();
    const want = tf.grads((w, b, e) => loss(w, b, e))(xs.slice(0, 3));
    const { value, grads } = gradients(() => loss(xs[0], xs[1], xs[2]), xs);
    expect(value.dataSync()[0]).toBe(loss(xs[0], xs[1], xs[2]).dataSync()[0]);
    for (let i = 0; i < 3; i++) expect(Array.from(grads[i]!.dataSync())).toEqual(Array.from(want[i].dataSync()));
    expect(grads[3]).toBeNull();
  });

  it('leaves no tensor behind but the value and the gradients', () => {
    const xs = inputs();
    gradients(() => loss(xs[0], xs[1], xs[2]), xs); // warm up (kernel caches)
    const before = tf.memory().numTensors;
    const { value, grads } = gradients(() => loss(xs[0], xs[1], xs[2]), xs);
    expect(tf.memory().numTensors).toBe(before + 1 + grads.filter((g) => g).length);
    tf.dispose([value, ...grads.filter((g): g is tf.Tensor => g !== null)]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('frees saved activations and consumed gradients during backward (tfjs holds them to the end)', () => {
    // A deep chain whose first op records memory when its gradient runs: the last moment of backward.
    let atEnd = 0;
    const probe = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const x = args[0] as tf.Tensor;
      return {
        value: tf.clone(x),
        gradFunc: (dy: tf.Tensor) => {
          atEnd = tf.memory().numBytes;
          return dy.clone();
        },
      };
    });
    const w = tf.variable(tf.randomNormal([64, 64], 0, 0.1, 'float32', 5));
    const x0 = tf.randomNormal([32, 64], 0, 1, 'float32', 6);
    const f = () => {
      let h = probe(tf.mul(w, 1));
      let x = x0;
      for (let l = 0; l < 20; l++) x = tf.tanh(tf.matMul(x, h));
      h = tf.sum(x);
      return h as tf.Scalar;
    };
    const base = tf.memory().numBytes;
    const ours = gradients(f, [w]);
    const oursBytes = atEnd - base;
    const theirs = tf.variableGrads(f, [w]);
    const theirsBytes = atEnd - base;
    expect(Array.from(ours.grads[0]!.dataSync())).toEqual(Array.from(theirs.grads[w.name].dataSync()));
    // 20 layers x ([32,64] tanh output saved + its gradient) held by tfjs; a few layers' worth by us
    expect(oursBytes).toBeLessThan(theirsBytes / 4);
    tf.dispose([ours.value, ours.grads[0]!, theirs.value, theirs.grads[w.name], w, x0]);
  });

  it('frees during the forward pass what shape-only gradients (Add, Reshape, Slice, Concat, …) save', () => {
    // A chain of ops that tfjs saves inputs for but only reads the shapes of: ours keeps none
    // of a layer's intermediates alive to the end of the forward pass, tfjs keeps them all.
    let atForwardEnd = 0;
    const w = tf.variable(tf.randomNormal([64, 64], 0, 0.1, 'float32', 7));
    const f = () => {
      let x = tf.mul(w, 1);
      // each layer in its own tidy, as the models scope their blocks: what is not saved goes at its end
      for (let l = 0; l < 20; l++)
        x = tf.tidy(() => tf.reshape(tf.add(tf.slice(tf.concat([x, x], 0), [32, 0], [64, 64]), w), [64, 64]));
      const y = tf.sum(tf.mul(x, x)) as tf.Scalar;
      atForwardEnd = tf.memory().numBytes;
      return y;
    };
    const base = tf.memory().numBytes;
    const ours = gradients(f, [w]);
    const oursBytes = atForwardEnd - base;
    const theirs = tf.variableGrads(f, [w]);
    const theirsBytes = atForwardEnd - base;
    expect(Array.from(ours.grads[0]!.dataSync())).toEqual(Array.from(theirs.grads[w.name].dataSync()));
    // tfjs: ~8 [64, 64]-sized tensors per layer; ours: each layer's output (the enclosing scope holds it)
    expect(oursBytes).toBeLessThan(theirsBytes / 5);
    tf.dispose([ours.value, ours.grads[0]!, theirs.value, theirs.grads[w.name], w]);
  });

  it('hands nested (higher-order) gradients to tfjs: d/dx (d/dx x^3) = 6x', () => {
    const x = tf.scalar(1.5);
    const second = tf.grad((xi: tf.Tensor) => gradients(() => tf.pow(xi, 3) as tf.Scalar, [xi]).grads[0]!)(x);
    expect(second.dataSync()[0]).toBeCloseTo(9, 5);
  });
});

describe('checkEngineInternals', () => {
  it('passes on the pinned tfjs-core, and names the version and the missing internals otherwise', () => {
    expect(() => checkEngineInternals()).not.toThrow();
    expect(tf.version_core).toBe(TFJS_CORE_VERSION);
    const engine = tf.engine() as unknown as Record<string, unknown>;
    const withoutTape = {
      ...engine,
      state: (engine as { state: object }).state,
      startTape: undefined,
      scopedRun: engine.scopedRun,
      endTape: engine.endTape,
      tidy: engine.tidy,
      gradients: engine.gradients,
    };
    expect(() => checkEngineInternals(withoutTape, TFJS_CORE_VERSION)).toThrow(BackendError);
    expect(() => checkEngineInternals(withoutTape, TFJS_CORE_VERSION)).toThrow(
      /tfjs-core 4\.22\.0 is not the 4\.22\.0 .*: it lacks engine\.startTape\(\)/,
    );
    expect(() => checkEngineInternals(engine, '4.23.0')).toThrow(
      /@tensorflow\/tfjs-core 4\.23\.0 is not the 4\.22\.0 Anneal's backprop was written for/,
    );
  });
});
