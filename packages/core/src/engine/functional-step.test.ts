// AdamW's update as a function of tensors (updateTensors + assignUpdate, the form a recorded
// step replays) and FunctionalStep, on the cpu backend (the op-chain path), against
// torch.optim.AdamW's update computed by hand.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from './backend.js';
import { FunctionalStep } from './functional-step.js';
import { AdamW } from './optim.js';

beforeAll(async () => {
  await useBackend('cpu');
});

/** torch.optim.AdamW's update by hand: w, m, v after each (gradient, lr) step. */
function byHand(w0: number[], steps: Array<{ g: number[]; lr: number }>, wd: number) {
  let [w, m, v] = [w0, w0.map(() => 0), w0.map(() => 0)];
  steps.forEach(({ g, lr }, k) => {
    const t = k + 1;
    w = w.map((x) => x * (1 - lr * wd));
    m = m.map((x, i) => 0.9 * x + 0.1 * g[i]);
    v = v.map((x, i) => 0.999 * x + 0.001 * g[i] * g[i]);
    w = w.map((x, i) => x - (lr * (m[i] / (1 - 0.9 ** t))) / (Math.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8));
  });
  return w;
}

describe('AdamW as a function of tensors', () => {
  it('updateTensors + assignUpdate equal the hand-computed AdamW, with lr and step as tensors', () => {
    const p = tf.variable(tf.tensor2d([[1, -2, 0.5]]));
    const opt = new AdamW(new Map([['w', p]]), { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1 });
    const steps = [
      { g: [0.5, -1, 2], lr: 0.01 },
      { g: [0.25, 2, -0.5], lr: 0.005 },
      { g: [-1, 0.1, 0.3], lr: 0.02 },
    ];
    for (const { g, lr } of steps) {
      const grads = new Map([['w', tf.tensor2d([g])]]);
      const [lrT, stepT] = [tf.scalar(lr), tf.scalar(opt.step + 1)];
      const names = opt.updateOrder(grads);
      const outs = opt.updateTensors(grads, lrT, stepT);
      opt.assignUpdate(names, outs);
      tf.dispose([...grads.values(), lrT, stepT, ...outs]);
    }
    expect(opt.step).toBe(3);
    const want = byHand([1, -2, 0.5], steps, 0.1);
    Array.from(p.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(want[i], 6));
    opt.dispose();
    p.dispose();
  });

  it('FunctionalStep: loss, gradients and update of a quadratic, and the state it hands back', () => {
    const p = tf.variable(tf.tensor2d([[1, -2]]));
    const params = new Map([['w', p]]);
    const opt = new AdamW(params, { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
    // loss = sum((w - target)^2): gradient 2 (w - target)
    const step = new FunctionalStep(params, opt, ([target]) => tf.sum(tf.square(tf.sub(p, target))) as tf.Scalar);
    const target = tf.tensor2d([[0, 1]]);
    const [lr, t] = [tf.scalar(0.1), tf.scalar(1)];
    const before = tf.memory().numTensors;
    const outs = tf.tidy(() => step.fn(step.inputs([target], lr, t)));
    expect(outs).toHaveLength(4); // loss, then p, m, v
    const loss = step.take(outs);
    expect(loss.dataSync()[0]).toBeCloseTo(1 + 9, 6);
    loss.dispose();
    const want = byHand([1, -2], [{ g: [2, -6], lr: 0.1 }], 0);
    // (bias corrections 1 - beta^t are float32 tensors here: 0.999 in float32 moves the first
    // step's update by ~1e-6 relative, against the hand computation in doubles)
    Array.from(p.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(want[i], 5));
    expect(tf.memory().numTensors).toBe(before); // the old state was released by assign, the outputs by take
    tf.dispose([target, lr, t]);
    opt.dispose();
    p.dispose();
  });

  it('FunctionalStep refuses a loss that leaves a trainable parameter without a gradient', () => {
    const [a, b] = [tf.variable(tf.scalar(1)), tf.variable(tf.scalar(2))];
    const params = new Map([
      ['a', a],
      ['b', b],
    ]);
    const opt = new AdamW(params, { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
    const step = new FunctionalStep(params, opt, () => tf.square(a) as tf.Scalar);
    const [lr, t] = [tf.scalar(0.1), tf.scalar(1)];
    expect(() => tf.tidy(() => step.fn(step.inputs([], lr, t)))).toThrow(/does not depend on b: freeze them/);
    tf.dispose([lr, t, a, b]);
    opt.dispose();
  });
});
