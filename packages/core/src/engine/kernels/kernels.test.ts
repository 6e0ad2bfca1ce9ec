// The replacement kernels against independent references: a naive loop for
// UnsortedSegmentSum, the cpu backend's matmul for wasm's transposed products, and
// central finite differences for the gradient of an embedding lookup.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { useBackend } from '../backend.js';

function naiveSegmentSum(x: number[][], ids: number[], n: number): number[][] {
  const out = Array.from({ length: n }, () => new Array(x[0].length).fill(0));
  ids.forEach((s, i) => x[i].forEach((v, j) => (out[s][j] += v)));
  return out;
}

describe.each(['cpu', 'wasm'] as const)('UnsortedSegmentSum on %s', (backend) => {
  it('sums rows into segments like a naive loop', async () => {
    await useBackend(backend);
    const x = [
      [1, 2],
      [3, 4],
      [5, 6],
      [7, 8],
      [9, 10],
    ];
    const ids = [2, 0, 2, 3, 0];
    const got = tf.tidy(() => tf.unsortedSegmentSum(tf.tensor2d(x), tf.tensor1d(ids, 'int32'), 4).arraySync());
    expect(got).toEqual(naiveSegmentSum(x, ids, 4));
  });

  it('gives the embedding gradient that finite differences give', async () => {
    await useBackend(backend);
    const table = tf.variable(
      tf.tensor2d([
        [0.1, -0.2],
        [0.3, 0.4],
        [-0.5, 0.6],
      ]),
    );
    const idx = tf.tensor1d([2, 0, 2, 1], 'int32');
    const w = tf.tensor2d([
      [1, 2],
      [3, -1],
      [0.5, 0.5],
      [-2, 1],
    ]);
    const f = () => tf.sum(tf.mul(tf.square(tf.gather(table, idx)), w)) as tf.Scalar;
    const { grads } = tf.variableGrads(f, [table]);
    const analytic = grads[table.name].arraySync() as number[][];
    const base = table.arraySync() as number[][];
    const h = 1e-2; // the function is quadratic, so central differences are exact up to rounding
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 2; c++) {
        const at = (d: number) => {
          const t = base.map((row) => [...row]);
          t[r][c] += d;
          table.assign(tf.tensor2d(t));
          return tf.tidy(() => f().dataSync()[0]);
        };
        const numeric = (at(h) - at(-h)) / (2 * h);
        expect(analytic[r][c]).toBeCloseTo(numeric, 3);
      }
    }
    tf.dispose([table, idx, w, ...Object.values(grads)]);
  });
});

describe('BatchMatMul with transposes on wasm', () => {
  it('matches the cpu backend for all four transpose combinations, batched', async () => {
    const a = Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(i));
    const b = Array.from({ length: 2 * 4 * 5 }, (_, i) => Math.cos(i));
    const results: Record<string, number[][]> = {};
    for (const backend of ['cpu', 'wasm'] as const) {
      await useBackend(backend);
      const out: number[][] = [];
      for (const [ta, tb] of [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ] as const) {
        const A = ta ? tf.transpose(tf.tensor3d(a, [2, 3, 4]), [0, 2, 1]) : tf.tensor3d(a, [2, 3, 4]);
        const B = tb ? tf.transpose(tf.tensor3d(b, [2, 4, 5]), [0, 2, 1]) : tf.tensor3d(b, [2, 4, 5]);
        const before = tf.memory().numTensors;
        const r = tf.matMul(A, B, ta, tb);
        expect(tf.memory().numTensors).toBe(before + 1);
        out.push(Array.from(r.dataSync()));
        tf.dispose([A, B, r]);
      }
      results[backend] = out;
    }
    for (let i = 0; i < 4; i++) {
      results.wasm[i].forEach((v, j) => expect(v).toBeCloseTo(results.cpu[i][j], 5));
    }
  });
});

describe('useBackend', () => {
  it('lets ANNEAL_BACKEND override the config and rejects unknown names', async () => {
    const active = await useBackend('wasm', { ANNEAL_BACKEND: 'cpu' });
    expect(active.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    await expect(useBackend('cpu', { ANNEAL_BACKEND: 'gpu' })).rejects.toThrow(/ANNEAL_BACKEND="gpu" is not a backend/);
  });

  it('says so when tensorflow is asked for but tfjs-node is not installed', async () => {
    await expect(useBackend('tensorflow', {})).rejects.toThrow(/tfjs-node/);
  });

  it('resolves auto to wasm without tfjs-node or a registered torch backend', async () => {
    const active = await useBackend('auto', {});
    expect(active.name).toBe('wasm');
    expect(active.detail).toMatch(/wasm/);
    await expect(useBackend('torch', {})).rejects.toThrow(/backend "torch" is not available/);
  });
});
