import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from './backend.js';
import { AdamW, clipGradNorm } from './optim.js';
import { Rng, deriveSeed } from './rng.js';
import { learningRateAt } from './schedule.js';

beforeAll(async () => {
  await useBackend('cpu');
});

describe('learningRateAt (transformers schedules)', () => {
  const base = { lr: 1, warmupSteps: 10, totalSteps: 110, minLrRatio: 0 };
  it('warms up linearly from 0', () => {
    expect(learningRateAt(0, { ...base, kind: 'cosine' })).toBe(0);
    expect(learningRateAt(5, { ...base, kind: 'cosine' })).toBe(0.5);
    expect(learningRateAt(10, { ...base, kind: 'cosine' })).toBe(1);
  });
  it('cosine: half way through decay is 0.5, the end is the floor', () => {
    expect(learningRateAt(60, { ...base, kind: 'cosine' })).toBeCloseTo(0.5, 12);
    expect(learningRateAt(35, { ...base, kind: 'cosine' })).toBeCloseTo(0.5 * (1 + Math.cos(Math.PI / 4)), 12);
    expect(learningRateAt(110, { ...base, kind: 'cosine', minLrRatio: 0.1 })).toBeCloseTo(0.1, 12);
  });
  it('linear and constant', () => {
    expect(learningRateAt(85, { ...base, kind: 'linear' })).toBeCloseTo(0.25, 12);
    expect(learningRateAt(85, { ...base, kind: 'constant' })).toBe(1);
  });
});

describe('AdamW', () => {
  it('matches the torch.optim.AdamW update computed by hand for two steps', () => {
    const p = tf.variable(tf.tensor2d([[1, -2]]));
    const params = new Map([['w', p]]);
    const opt = new AdamW(params, { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1 });
    const lr = 0.01;
    let w = [1, -2];
    let m = [0, 0];
    let v = [0, 0];
    const gs = [
      [0.5, -1],
      [0.25, 2],
    ];
    for (let t = 1; t <= 2; t++) {
      const g = gs[t - 1];
      const grads = new Map([['w', tf.tensor2d([g])]]);
      opt.apply(grads, lr);
      tf.dispose([...grads.values()]);
      w = w.map((x) => x * (1 - lr * 0.1));
      m = m.map((x, i) => 0.9 * x + 0.1 * g[i]);
      v = v.map((x, i) => 0.999 * x + 0.001 * g[i] * g[i]);
      w = w.map((x, i) => x - (lr * (m[i] / (1 - 0.9 ** t))) / (Math.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8));
    }
    const got = p.dataSync();
    expect(got[0]).toBeCloseTo(w[0], 6);
    expect(got[1]).toBeCloseTo(w[1], 6);
    opt.dispose();
    p.dispose();
  });

  it('does not decay biases (rank 1) by default', () => {
    const b = tf.variable(tf.tensor1d([1]));
    const opt = new AdamW(new Map([['b', b]]), { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.5 });
    const grads = new Map([['b', tf.tensor1d([0])]]);
    opt.apply(grads, 0.1);
    expect(b.dataSync()[0]).toBe(1);
    tf.dispose([...grads.values()]);
    opt.dispose();
  });

  it('round-trips its state', async () => {
    const p = tf.variable(tf.tensor1d([1, 2, 3]));
    const opt = new AdamW(new Map([['p', p]]), { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
    const g = new Map([['p', tf.tensor1d([0.1, 0.2, 0.3])]]);
    opt.apply(g, 0.1);
    const { tensors, step } = await opt.stateDict();
    const opt2 = new AdamW(new Map([['p', p]]), { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
    opt2.loadStateDict(tensors, step);
    const again = await opt2.stateDict();
    expect(again.step).toBe(1);
    expect(Array.from(again.tensors.get('p.exp_avg_sq')!.data)).toEqual(Array.from(tensors.get('p.exp_avg_sq')!.data));
    expect(() => opt2.loadStateDict(new Map(), 1)).toThrow(/p.exp_avg is missing/);
    tf.dispose([...g.values()]);
  });
});

describe('clipGradNorm', () => {
  it('scales to the max norm like torch (3-4-0 triangle)', () => {
    const grads = new Map([
      ['a', tf.tensor1d([3, 0])],
      ['b', tf.tensor1d([4])],
    ]);
    const { norm, grads: out } = clipGradNorm(grads, 1);
    expect(norm).toBeCloseTo(5, 6);
    expect(out.get('a')!.dataSync()[0]).toBeCloseTo(3 / (5 + 1e-6), 6);
    expect(out.get('b')!.dataSync()[0]).toBeCloseTo(4 / (5 + 1e-6), 6);
    tf.dispose([...out.values()]);
  });
});

describe('Rng', () => {
  it('resumes from its saved state with the same numbers', () => {
    const a = new Rng(42);
    a.next();
    const saved = a.state();
    const expected = [a.next(), a.next(), a.next()];
    const b = new Rng(saved);
    expect([b.next(), b.next(), b.next()]).toEqual(expected);
  });
  it('is roughly uniform and seeds differ', () => {
    const r = new Rng(1);
    let s = 0;
    for (let i = 0; i < 10000; i++) s += r.next();
    expect(s / 10000).toBeGreaterThan(0.48);
    expect(s / 10000).toBeLessThan(0.52);
    expect(new Rng(1).next()).not.toBe(new Rng(2).next());
    expect(deriveSeed(1, 2, 3)).not.toBe(deriveSeed(1, 3, 2));
  });
});
