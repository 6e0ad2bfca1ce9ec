// The torch backend against tfjs's own cpu backend (an independent implementation of
// every kernel), and against transformers on the GPT-2 fixture. In CI the addon must be
// built (the setup installs libtorch); elsewhere these tests are skipped with a reason.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, BackendError, FUSED_ADAMW, clipGradNorm, useBackend, valueAndGrads } from '@anneal/core';
import {
  ADDON_PATH,
  BUILD_RECORD,
  checkBuildRecord,
  checkDevice,
  fallbackKernels,
  loadedBlas,
  registerTorchBackend,
  type TorchBackend,
} from './index.js';

const required = process.env.CI === 'true' || Boolean(process.env.ANNEAL_REQUIRE_TORCH);
const available = existsSync(ADDON_PATH);
if (!available && !required) console.warn(`backend-torch tests skipped: ${ADDON_PATH} is not built (no libtorch)`);
const d = available || required ? describe : describe.skip;

type Case = [string, () => tf.Tensor | tf.Tensor[]];
const r = (shape: number[], seed: number, lo = -2, hi = 2) => tf.randomUniform(shape, lo, hi, 'float32', seed);
const ri = (shape: number[], seed: number, n: number) =>
  tf.floor(tf.randomUniform(shape, 0, n, 'float32', seed)).toInt();

// Each case builds its inputs from seeds, so the same numbers reach both backends.
const CASES: Case[] = [
  ['add with broadcasting', () => tf.add(r([2, 3, 4], 1), r([4], 2))],
  [
    'sub/mul/div',
    () => [
      tf.sub(r([3, 4], 1), r([3, 1], 2)),
      tf.mul(r([3, 4], 3), r([1, 4], 4)),
      tf.div(r([3, 4], 5), r([3, 4], 6, 0.5, 2)),
    ],
  ],
  [
    'int32 arithmetic stays int32',
    () => [
      tf.add(ri([5], 1, 9), ri([5], 2, 9)),
      tf.mul(ri([5], 3, 9), ri([5], 4, 9)),
      tf.floorDiv(ri([6], 5, 20), tf.scalar(3, 'int32')),
    ],
  ],
  [
    'maximum/minimum/pow/squaredDifference',
    () => [
      tf.maximum(r([4, 4], 1), r([4, 4], 2)),
      tf.minimum(r([4], 3), r([4], 4)),
      tf.pow(r([6], 5, 0.1, 3), r([6], 6)),
      tf.squaredDifference(r([3, 2], 7), r([3, 2], 8)),
    ],
  ],
  [
    'comparisons and logic',
    () => {
      const a = r([3, 4], 1);
      const b = r([3, 4], 2);
      return [
        tf.less(a, b),
        tf.lessEqual(a, b),
        tf.greater(a, b),
        tf.greaterEqual(a, b),
        tf.equal(a, a),
        tf.notEqual(a, b),
        tf.logicalAnd(tf.less(a, b), tf.greater(a, 0)),
        tf.logicalOr(tf.less(a, b), tf.greater(a, 0)),
        tf.logicalNot(tf.less(a, b)),
      ];
    },
  ],
  [
    'unary math',
    () => {
      const x = r([10], 1);
      const p = r([10], 2, 0.1, 3);
      return [
        tf.neg(x),
        tf.exp(x),
        tf.log(p),
        tf.log1p(p),
        tf.expm1(x),
        tf.sqrt(p),
        tf.rsqrt(p),
        tf.square(x),
        tf.abs(x),
        tf.tanh(x),
        tf.sigmoid(x),
        tf.relu(x),
        tf.erf(x),
        tf.sin(x),
        tf.cos(x),
        tf.floor(x),
        tf.ceil(x),
        tf.sign(x),
        tf.reciprocal(p),
        tf.step(x, 0.3),
        tf.leakyRelu(x, 0.2),
        tf.elu(x),
        tf.clipByValue(x, -0.5, 0.7),
        tf.zerosLike(x),
        tf.onesLike(x),
      ];
    },
  ],
  [
    'matMul in all transpose combinations, batched and broadcast',
    () => {
      const a = r([2, 3, 4], 1);
      const b = r([2, 4, 5], 2);
      return [
        tf.matMul(a, b),
        tf.matMul(tf.transpose(a, [0, 2, 1]), b, true, false),
        tf.matMul(a, tf.transpose(b, [0, 2, 1]), false, true),
        tf.matMul(r([3, 4], 3), r([4, 2], 4)),
        tf.matMul(r([2, 3, 4], 5), r([1, 4, 2], 6)),
      ];
      // (Batch shapes like [2, 1] x [3] are left out: tfjs-cpu broadcasts the flattened batch
      // index modulo each size, which is not numpy broadcasting; ATen follows numpy.)
    },
  ],
  [
    'matMul of 1 to 16 rows (the few-row kernels) by W and by Wᵀ, with row, column and depth remainders',
    () =>
      [
        [1, 768, 70],
        [2, 19, 9],
        [3, 7, 5],
        [5, 37, 22],
        [8, 264, 1030],
        [13, 40, 3],
        [16, 129, 61],
        [4, 8, 1],
      ].flatMap(([m, k, n], i) => {
        // (in [-1, 1]: a sum of 264 products of [-2, 2] cancels to within 1e-5 of rounding error)
        const x = r([m, k], 10 * i + 1, -1, 1);
        const w = r([k, n], 10 * i + 2, -1, 1);
        const wt = r([n, k], 10 * i + 3, -1, 1);
        return [
          tf.matMul(x, w), // x W, W [in, out] (GPT-2's Conv1D)
          tf.matMul(x, wt, false, true), // x Wᵀ, W [out, in] (nn.Linear, a tied head)
          tf.matMul(tf.transpose(x), wt, true, true), // x handed over transposed
          tf.matMul(tf.reshape(x, [1, m, k]), tf.reshape(w, [1, k, n])), // a batch of one
        ];
      }),
  ],
  [
    'reductions with axes and keepDims',
    () => {
      const x = r([2, 3, 4], 1);
      return [
        tf.sum(x),
        tf.sum(x, 1),
        tf.sum(x, [0, 2], true),
        tf.mean(x, -1),
        tf.max(x, 1),
        tf.min(x, [0, 1]),
        tf.prod(r([2, 3], 2, 0.5, 1.5), 1),
        tf.argMax(x, 2),
        tf.argMin(x, 0),
        tf.sum(ri([4, 3], 3, 9), 0),
        tf.all(tf.greater(x, -1.5), 1),
        tf.any(tf.greater(x, 1.5), 2),
      ];
    },
  ],
  ['softmax and logSoftmax', () => [tf.softmax(r([3, 7], 1)), tf.logSoftmax(r([2, 3, 5], 2))]],
  [
    'reshape/transpose/slice/concat/stack/unstack/split/tile/pad',
    () => {
      const x = r([2, 3, 4], 1);
      return [
        tf.reshape(x, [4, -1]),
        tf.transpose(x, [2, 0, 1]),
        tf.slice(x, [0, 1, 1], [2, -1, 2]),
        tf.concat([x, r([2, 3, 2], 2)], -1),
        tf.stack([r([3], 3), r([3], 4)], 1),
        ...tf.unstack(x, 1),
        ...tf.split(x, 2, 2),
        ...tf.split(x, [1, -1, 1], 1),
        tf.tile(r([2, 3], 5), [2, 1]),
        tf.pad(
          r([2, 2], 6),
          [
            [1, 0],
            [0, 2],
          ],
          0.5,
        ),
      ];
    },
  ],
  [
    'gather and its gradient (UnsortedSegmentSum)',
    () => {
      const table = r([6, 3], 1);
      const idx = ri([2, 4], 2, 6);
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), r([2, 4, 3], 3))))(table);
      return [
        tf.gather(table, idx),
        tf.gather(r([3, 5], 4), tf.tensor1d([4, 0, 4], 'int32'), 1),
        g,
        tf.unsortedSegmentSum(r([5, 2], 5), tf.tensor1d([1, 1, 0, 3, 1], 'int32'), 4),
      ];
    },
  ],
  [
    'oneHot/where/addN/fill/cast',
    () => [
      tf.oneHot(tf.tensor1d([0, 3, 1], 'int32'), 4),
      tf.oneHot(tf.tensor1d([2], 'int32'), 3, 5, -1),
      tf.where(tf.greater(r([4], 1), 0), r([4], 2), r([4], 3)),
      tf.addN([r([3], 4), r([3], 5), r([3], 6)]),
      tf.fill([2, 2], 7),
      tf.cast(r([5], 7, -3, 3), 'int32'),
      tf.cast(tf.greater(r([3], 8), 0), 'float32'),
    ],
  ],
  ['linalg.bandPart (causal masks)', () => tf.linalg.bandPart(tf.ones([4, 4]), -1, 0)],
  [
    'more unary math (trig, hyperbolic, softplus, relu6, selu) and atan2',
    () => {
      const x = r([10], 1);
      const u = r([10], 2, -0.9, 0.9);
      return [
        tf.tan(u),
        tf.asin(u),
        tf.acos(u),
        tf.atan(x),
        tf.sinh(x),
        tf.cosh(x),
        tf.asinh(x),
        tf.acosh(r([10], 3, 1.1, 4)),
        tf.atanh(u),
        tf.softplus(tf.mul(x, 8)),
        tf.relu6(tf.mul(x, 4)),
        tf.selu(x),
        tf.atan2(x, r([10], 4)),
      ];
    },
  ],
  [
    'prelu, elu gradient, expandDims, reverse',
    () => {
      const x = r([3, 4], 1);
      return [
        tf.prelu(x, r([4], 2, 0.1, 0.5)),
        tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.elu(t), r([3, 4], 3))))(x),
        tf.expandDims(x, 1),
        tf.expandDims(x, -1),
        tf.reverse(x, 1),
        tf.reverse(r([2, 3, 4], 4), [0, 2]),
      ];
    },
  ],
  [
    'topk (values and int32 indices)',
    () => {
      const x = tf.add(tf.mul(tf.range(0, 24).reshape([2, 12]), 0.01), r([2, 12], 1)); // distinct values: no ties
      const { values, indices } = tf.topk(x, 5);
      const whole = tf.topk(r([7], 2), 7);
      return [values, indices, whole.values, whole.indices];
    },
  ],
  [
    'gatherND, scatterND and batched gather',
    () => {
      const params = r([4, 3, 2], 1);
      const idx2 = tf.tensor2d(
        [
          [0, 1],
          [3, 2],
          [1, 0],
        ],
        [3, 2],
        'int32',
      );
      const idx1 = tf.tensor2d([[2], [0]], [2, 1], 'int32');
      const logp = r([2, 3, 5], 2); // [B, T, V]: pick the log-prob of each sampled token
      const tokens = tf.tensor3d(
        [
          [[4], [0], [2]],
          [[1], [1], [3]],
        ],
        [2, 3, 1],
        'int32',
      );
      return [
        tf.gatherND(params, idx2),
        tf.gatherND(params, idx1),
        tf.scatterND(tf.tensor2d([[1], [3], [1]], [3, 1], 'int32'), r([3, 2], 3), [5, 2]),
        tf.gather(logp, tokens, 2, 2),
        tf.gather(
          r([2, 6], 4),
          tf.tensor2d(
            [
              [5, 0],
              [2, 2],
            ],
            [2, 2],
            'int32',
          ),
          1,
          1,
        ),
      ];
    },
  ],
  [
    'stridedSlice with strides, negative strides and masks',
    () => {
      const x = r([4, 5, 6], 1);
      return [
        tf.stridedSlice(x, [0, 1, 0], [4, 5, 6], [2, 2, 3]),
        tf.stridedSlice(x, [3, 4, 5], [0, 0, 0], [-1, -2, -2]),
        tf.stridedSlice(x, [1, 0, 0], [2, 0, 0], [1, 1, 1], 0b110, 0b110, 0, 0, 0b001), // x[1] (shrink)
        tf.stridedSlice(x, [0, 2], [0, 4], [1, 1], 0b01, 0b01, 0, 0b100), // new axis
        tf.stridedSlice(x, [0, 0, 0], [4, 5, 6], [1, 1, 1]),
      ];
    },
  ],
  [
    'cumprod and linspace',
    () => [
      tf.cumprod(r([3, 4], 1, 0.5, 1.5), 1),
      tf.cumprod(r([3, 4], 2, 0.5, 1.5), 0, true),
      tf.cumprod(r([5], 3, 0.5, 1.5), 0, false, true),
      tf.cumprod(ri([2, 4], 4, 4), 1, true, true),
      tf.linspace(-1, 2, 7),
    ],
  ],
  [
    'range and cumsum',
    () => [
      tf.range(0, 7),
      tf.range(2, -3, -1.5),
      tf.range(0, 5, 2, 'int32'),
      tf.range(3, 3),
      tf.cumsum(r([3, 4], 1), 1),
      tf.cumsum(r([3, 4], 2), 0, true),
      tf.cumsum(r([5], 3), 0, false, true),
      tf.cumsum(ri([2, 5], 4, 9), 1, true, true),
    ],
  ],
];

function run(c: Case): Array<{ shape: number[]; dtype: string; values: number[] }> {
  return tf.tidy(() => {
    const out = c[1]();
    return (Array.isArray(out) ? out : [out]).map((t) => ({
      shape: t.shape,
      dtype: t.dtype,
      values: Array.from(t.dataSync()),
    }));
  });
}

d('torch backend', () => {
  let backend: TorchBackend;
  beforeAll(async () => {
    registerTorchBackend({ warn: () => undefined });
    await useBackend('torch', {});
    backend = tf.backend() as TorchBackend;
    console.log(
      `torch backend: libtorch ${backend.addon.info().torchVersion}, ${backend.addon.info().threads} threads, BLAS ${loadedBlas()}`,
    );
  });

  it.each(CASES)('%s: same shapes, dtypes and values as the cpu backend', async (_, f) => {
    await useBackend('cpu', {});
    const want = run([_, f]);
    await useBackend('torch', {});
    const got = run([_, f]);
    expect(got.map((g) => [g.shape, g.dtype])).toEqual(want.map((w) => [w.shape, w.dtype]));
    got.forEach((g, i) =>
      g.values.forEach((v, j) => {
        const w = want[i].values[j];
        expect(Math.abs(v - w), `output ${i}[${j}]: ${v} vs ${w}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(w)));
      }),
    );
  });

  it('auto picks torch once it is registered', async () => {
    expect((await useBackend('auto', {})).name).toBe('torch');
  });

  it('surfaces libtorch shape errors as JS errors naming the kernel', async () => {
    await useBackend('torch', {});
    const a = tf.ones([2, 3]);
    const b = tf.ones([4, 5]);
    expect(() => backend.runNative('BatchMatMul', [a, b], { transposeA: false, transposeB: false })).toThrow(
      /torch backend, kernel BatchMatMul: .*(shape|size|mat)/i,
    );
    tf.dispose([a, b]);
  });

  it('refuses a cuda device without a CUDA build, and a device that does not exist, with clear errors', () => {
    const gpus = backend.addon.info().cudaDevices;
    if (gpus === 0) {
      expect(() => checkDevice('cuda:0')).toThrow(BackendError);
      expect(() => checkDevice('cuda:0')).toThrow(
        /device cuda:0 needs a CUDA build of libtorch, and this one \(\d+\.\d+.*\) has no CUDA/,
      );
    } else {
      expect(() => checkDevice(`cuda:${gpus}`)).toThrow(
        new RegExp(`device cuda:${gpus} does not exist: ${gpus} CUDA device\\(s\\) visible`),
      );
    }
    expect(() => checkDevice('tpu')).toThrow(/device|Expected one of/i);
    const device = process.env.ANNEAL_DEVICE ?? 'cpu'; // where this run's tensors live (cuda:0 on a GPU machine)
    expect(() => checkDevice('cpu')).not.toThrow();
    expect(backend.addon.info().device).toBe('cpu');
    checkDevice(device);
    expect(backend.addon.info().device).toBe(device);
  });

  it('samples multinomial natively: the same seed gives the same draws, frequencies follow the probabilities', async () => {
    await useBackend('torch', {});
    const probs = [0.1, 0.2, 0.3, 0.4];
    const logits = tf.log(tf.tensor2d([probs, [0.25, 0.25, 0.25, 0.25]]));
    const a = tf.multinomial(logits as tf.Tensor2D, 20000, 7);
    const b = tf.multinomial(logits as tf.Tensor2D, 20000, 7);
    const c = tf.multinomial(logits as tf.Tensor2D, 20000, 8);
    const av = a.arraySync() as number[][];
    expect(a.dtype).toBe('int32');
    expect(av).toEqual(b.arraySync());
    expect(av).not.toEqual(c.arraySync());
    const freq = [0, 1, 2, 3].map((k) => av[0].filter((x) => x === k).length / 20000);
    // 20000 draws: the standard error of each frequency is below 0.0035; allow 5 of them
    freq.forEach((f, k) => expect(Math.abs(f - probs[k])).toBeLessThan(0.0175));
    const normalized = tf.multinomial(tf.tensor2d([[0, 0, 1, 0]]), 50, 3, true);
    expect(new Set(normalized.dataSync())).toEqual(new Set([2]));
    expect(fallbackKernels()).not.toContain('Multinomial');
    tf.dispose([logits, a, b, c, normalized]);
  });

  it('bf16 autocast multiplies bfloat16-rounded inputs with float32 accumulation and returns bfloat16, as torch.autocast', async () => {
    await useBackend('torch', {});
    const a = tf.randomNormal([64, 128], 0, 1, 'float32', 1);
    const b = tf.randomNormal([128, 32], 0, 1, 'float32', 2);
    // reference: round each input to bfloat16 by hand (round half to even), multiply in float32
    const toBf16 = (t: tf.Tensor) => {
      const u = new Uint32Array(Float32Array.from(t.dataSync()).buffer);
      for (let i = 0; i < u.length; i++) u[i] = ((u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16) << 16;
      return tf.tensor(new Float32Array(u.buffer), t.shape);
    };
    const [ar, br] = [toBf16(a), toBf16(b)];
    const want = tf.matMul(ar, br).dataSync();
    const exact = tf.matMul(a, b).dataSync();
    backend.addon.configure({ autocast: 'bf16' });
    let half: tf.Tensor;
    let bytes = 0;
    try {
      expect(backend.addon.info().autocast).toBe('bf16');
      const before = backend.addon.bytes();
      half = tf.matMul(a, b);
      bytes = backend.addon.bytes() - before;
    } finally {
      backend.addon.configure({ autocast: 'none' });
    }
    expect(half.dtype).toBe('float32'); // what JS sees; libtorch holds bfloat16
    expect(bytes).toBe(64 * 32 * 2);
    const got = half.dataSync();
    // The float32 sum rounded to bfloat16 (as cuBLAS writes it under torch.autocast): within
    // one bfloat16 ulp (2^-7 relative) of the hand-rounded reference, whose float32 sum ran in
    // another order; every value is a bfloat16 (low 16 bits zero).
    const bits = new Uint32Array(Float32Array.from(got).buffer);
    let offExact = 0;
    got.forEach((v, i) => {
      expect(Math.abs(v - want[i])).toBeLessThanOrEqual(2 ** -7 * Math.max(1, Math.abs(want[i])));
      expect(bits[i] & 0xffff).toBe(0);
      offExact = Math.max(offExact, Math.abs(v - exact[i]));
    });
    expect(offExact).toBeGreaterThan(1e-3); // it really used bfloat16 inputs
    expect(() => backend.addon.configure({ autocast: 'fp8' as 'bf16' })).toThrow(/autocast fp8 is not supported/);
    tf.dispose([a, b, ar, br, half!]);
  });

  it('reports an addon built against another libtorch, or a libtorch gone missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'anneal-torch-'));
    const header = join(dir, 'version.h');
    writeFileSync(header, '#define TORCH_VERSION \\\n  "9.9.9"\n');
    const rec = (o: object) => {
      const f = join(dir, `rec-${Math.random()}.json`);
      writeFileSync(f, JSON.stringify(o));
      return f;
    };
    const real = JSON.parse(readFileSync(BUILD_RECORD, 'utf8'));
    expect(checkBuildRecord(BUILD_RECORD)).toBeUndefined();
    expect(checkBuildRecord(rec({ ...real, versionHeader: header }))?.message).toBe(
      `the addon was built against libtorch ${real.torchVersion} but 9.9.9 is installed now`,
    );
    // libtorch 2.x states its version through MAJOR / MINOR / PATCH (TORCH_VERSION is built with C10_STRINGIZE).
    const header2 = join(dir, 'version2.h');
    writeFileSync(
      header2,
      '#define TORCH_VERSION_MAJOR 9\n#define TORCH_VERSION_MINOR 9\n#define TORCH_VERSION_PATCH 8\n#define TORCH_VERSION C10_STRINGIZE(TORCH_VERSION_MAJOR) "." C10_STRINGIZE(TORCH_VERSION_MINOR)\n',
    );
    expect(checkBuildRecord(rec({ ...real, versionHeader: header2 }))?.message).toBe(
      `the addon was built against libtorch ${real.torchVersion} but 9.9.8 is installed now`,
    );
    expect(checkBuildRecord(rec({ ...real, libDir: join(dir, 'nowhere') }))?.message).toMatch(
      /libtorch is missing at run time/,
    );
  });

  it('lists the kernels that still run through the cpu fallback', () => {
    const fb = fallbackKernels();
    for (const k of ['BatchMatMul', 'TopK', 'Multinomial', 'GatherNd', 'StridedSlice', 'Cumsum', 'Softplus'])
      expect(fb).not.toContain(k);
    expect(fb.length).toBeGreaterThan(0);
  });

  it('runs AdamW as one fused kernel, equal to the op chain on the cpu backend', async () => {
    const trajectory = async (b: 'cpu' | 'torch') => {
      await useBackend(b, {});
      const params = new Map([
        ['w', tf.variable(tf.randomNormal([5, 3], 0, 1, 'float32', 11))],
        ['b', tf.variable(tf.randomNormal([3], 0, 1, 'float32', 12))],
      ]);
      const opt = new AdamW(params, { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 });
      for (let s = 0; s < 3; s++) {
        const grads = new Map([...params].map(([n, p]) => [n, tf.randomNormal(p.shape, 0, 1, 'float32', 100 + s)]));
        opt.apply(grads, 0.01);
        tf.dispose([...grads.values()]);
      }
      const out = [...params.values()].flatMap((p) => Array.from(p.dataSync()));
      tf.dispose([...params.values()]);
      opt.dispose();
      return out;
    };
    const want = await trajectory('cpu');
    expect(tf.getKernel(FUSED_ADAMW, 'cpu')).toBeUndefined();
    const got = await trajectory('torch');
    expect(tf.getKernel(FUSED_ADAMW, 'torch')).toBeDefined();
    got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want[i]))));
  });

  it('never changes a tensor that shares a parameter buffer (in-place AdamW only when exclusive)', async () => {
    await useBackend('torch', {});
    const w = tf.variable(
      tf.tensor2d([
        [1, 2],
        [3, 4],
      ]),
    );
    const view = tf.reshape(w, [4]); // on torch a reshape is a view of the same buffer
    const opt = new AdamW(new Map([['w', w]]), { betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.1 });
    const g = tf.ones([2, 2]);
    opt.apply(new Map([['w', g]]), 0.1);
    expect(Array.from(view.dataSync())).toEqual([1, 2, 3, 4]);
    expect(Array.from(w.dataSync()).every((x, i) => x < [1, 2, 3, 4][i])).toBe(true);
    tf.dispose([w, view, g]);
    opt.dispose();
  });

  it('leaks nothing: numDataIds flat over repeated gradient steps, native count equal', async () => {
    await useBackend('torch', {});
    const w = tf.variable(tf.randomNormal([8, 4], 0, 1, 'float32', 1));
    const opt = new AdamW(new Map([['w', w]]), { betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.1 });
    const x = tf.randomNormal([16, 8], 0, 1, 'float32', 2);
    const counts: number[] = [];
    for (let s = 0; s < 6; s++) {
      const { value, grads } = valueAndGrads(
        new Map([['w', w]]),
        () => tf.mean(tf.square(tf.tanh(tf.matMul(x, w)))) as tf.Scalar,
      );
      const clipped = clipGradNorm(grads, 1);
      opt.apply(clipped.grads, 1e-2);
      tf.dispose([value, ...clipped.grads.values()]);
      counts.push(backend.numDataIds());
      expect(backend.nativeCount()).toBe(backend.numDataIds());
    }
    expect(new Set(counts.slice(1)).size).toBe(1);
    tf.dispose([w, x]);
    opt.dispose();
  });
});
