// Gradient accumulation normalized over all loss tokens: one batch of 8 equals 4 micro-
// batches of 2 (loss, gradients and the parameters after an AdamW step, to 1e-5), even
// when the micro-batches hold different numbers of loss tokens; TRL's token metrics by hand.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, useBackend, type Collective } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, causalLmLossSum } from '@anneal/modeling';
import { accumulatedGradients, tokenMetrics } from './index.js';

describe('accumulatedGradients', () => {
  beforeAll(async () => {
    await useBackend('cpu', {});
  });

  it('batch 8 equals 4 x 2 accumulation (uneven loss tokens per micro-batch)', () => {
    const cfg = { ...GPT2_DEFAULTS, vocabSize: 50, nPositions: 8, nLayer: 1, nHead: 2, nEmbd: 16 };
    const [a, b] = [Gpt2LMHeadModel.init(cfg, 1), Gpt2LMHeadModel.init(cfg, 1)];
    const T = 8;
    // labels: -100 on a varying number of positions, so micro-batches weigh differently
    const ids = Array.from({ length: 8 }, (_, r) => Array.from({ length: T }, (_, t) => (r * 13 + t * 7) % 50));
    const labels = ids.map((row, r) => row.map((v, t) => (t < r % 4 ? -100 : v)));
    const lossOf = (m: Gpt2LMHeadModel, rows: number[]) => () => {
      const { logits } = m.forward({
        inputIds: tf.tensor2d(
          rows.map((r) => ids[r]),
          [rows.length, T],
          'int32',
        ),
      });
      return causalLmLossSum(logits, Int32Array.from(rows.flatMap((r) => labels[r])));
    };
    const whole = accumulatedGradients(a.params, [lossOf(a, [0, 1, 2, 3, 4, 5, 6, 7])]);
    const acc = accumulatedGradients(
      b.params,
      [
        [0, 1],
        [2, 3],
        [4, 5],
        [6, 7],
      ].map((rows) => lossOf(b, rows)),
    );
    expect(acc.tokens).toBe(whole.tokens);
    expect(Math.abs(acc.loss - whole.loss)).toBeLessThan(1e-5);
    for (const [name, g] of whole.grads) {
      const d = tf.tidy(() => tf.max(tf.abs(tf.sub(g, acc.grads.get(name)!))).dataSync()[0]);
      expect(d, name).toBeLessThan(1e-5);
    }
    const [oa, ob] = [
      new AdamW(a.params, { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 }),
      new AdamW(b.params, { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 }),
    ];
    oa.apply(whole.grads, 1e-3);
    ob.apply(acc.grads, 1e-3);
    for (const [name, p] of a.params)
      expect(
        tf.tidy(() => tf.max(tf.abs(tf.sub(p, b.params.get(name)!))).dataSync()[0]),
        name,
      ).toBeLessThan(1e-5);
    tf.dispose([...whole.grads.values(), ...acc.grads.values()]);
  });

  it('with a collective: sums across ranks before dividing, and leaves no tensors behind', () => {
    // Two ranks holding identical data: the all-reduce doubles every sum, so the mean loss,
    // the gradients and the metrics equal one process's on that data, and the tokens double.
    const twoIdentical: Collective = {
      rank: 0,
      worldSize: 2,
      allReduce: (ts) => ts.map((t) => tf.mul(t, 2)),
      broadcast: (ts) => ts.map((t) => t.clone()),
      barrier: () => undefined,
    };
    const cfg = { ...GPT2_DEFAULTS, vocabSize: 50, nPositions: 8, nLayer: 1, nHead: 2, nEmbd: 16 };
    const m = Gpt2LMHeadModel.init(cfg, 1);
    const ids = Int32Array.from({ length: 4 * 8 }, (_, i) => (i * 7) % 50);
    const micro = () => {
      const { sum, count } = causalLmLossSum(
        m.forward({ inputIds: tf.tensor2d(ids, [4, 8], 'int32') }).logits as tf.Tensor3D,
        ids,
      );
      return { sum, count, metrics: { hits: count / 2 } };
    };
    const alone = accumulatedGradients(m.params, [micro]);
    const before = tf.memory().numTensors;
    const dp = accumulatedGradients(m.params, [micro], twoIdentical);
    expect(dp.tokens).toBe(2 * alone.tokens);
    expect(Math.abs(dp.loss - alone.loss)).toBeLessThan(1e-6);
    expect(dp.metrics).toEqual(alone.metrics);
    for (const [name, g] of alone.grads)
      expect(
        tf.tidy(() => tf.max(tf.abs(tf.sub(g, dp.grads.get(name)!))).dataSync()[0]),
        name,
      ).toBeLessThan(1e-6);
    tf.dispose([...dp.grads.values()]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([...alone.grads.values()]);
  });
});

describe('tokenMetrics (TRL mean_token_accuracy and entropy)', () => {
  it('counts labelled positions only (hand-checked)', () => {
    // row 0: argmax 1 = label 1 (right); row 1: argmax 0, label 1 (wrong); row 2 ignored
    const logits = tf.tensor2d([
      [0, 2],
      [3, 1],
      [5, 0],
    ]);
    const m = tokenMetrics(logits, Int32Array.from([1, 1, -100]));
    expect(m.numTokens).toBe(2);
    expect(m.meanTokenAccuracy).toBe(0.5);
    const h = (a: number, b: number) => {
      const [p, q] = [Math.exp(a) / (Math.exp(a) + Math.exp(b)), Math.exp(b) / (Math.exp(a) + Math.exp(b))];
      return -(p * Math.log(p) + q * Math.log(q));
    };
    expect(m.entropy).toBeCloseTo((h(0, 2) + h(3, 1)) / 2, 6);
  });
});
