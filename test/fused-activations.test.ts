// The torch backend's fused gated activations (SwiGLU, GeGLU) and RoPE against the same op
// chains on tfjs's own cpu backend (an independent implementation): values and gradients.
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADDON_PATH, registerTorchBackend } from '@anneal/backend-torch';
import { useBackend } from '@anneal/core';
import { addProduct, applyRotary, gatedActivation } from '@anneal/modeling';

const required = process.env.CI === 'true' || Boolean(process.env.ANNEAL_REQUIRE_TORCH);
const d = existsSync(ADDON_PATH) || required ? describe : describe.skip;

async function onBoth(run: () => Float32Array[]): Promise<[Float32Array[], Float32Array[]]> {
  await useBackend('cpu', {});
  const want = run();
  await useBackend('torch', {});
  return [run(), want];
}

function expectClose(got: Float32Array[], want: Float32Array[], tol: number) {
  got.forEach((arr, k) => {
    const worst = arr.reduce((m, v, i) => Math.max(m, Math.abs(v - want[k][i]) / Math.max(1, Math.abs(want[k][i]))), 0);
    expect(worst, `output ${k}`).toBeLessThanOrEqual(tol);
  });
}

d('fused gated activations, RoPE and y + u bᵀ (torch backend)', () => {
  beforeAll(() => registerTorchBackend({ warn: () => undefined }));

  for (const act of ['silu', 'gelu', 'gelu_tanh'] as const) {
    it(`${act}(gate) * up: values and both gradients equal the op chain`, async () => {
      const [got, want] = await onBoth(() =>
        tf.tidy(() => {
          const gate = tf.randomNormal([3, 5, 24], 0, 2, 'float32', 1);
          const up = tf.randomNormal([3, 5, 24], 0, 1, 'float32', 2);
          const w = tf.randomNormal([3, 5, 24], 0, 1, 'float32', 3);
          const { value, grads } = tf.valueAndGrads((g: tf.Tensor, u: tf.Tensor) =>
            tf.sum(tf.mul(gatedActivation(g, u, act), w)),
          )([gate, up]);
          return [value, ...grads, gatedActivation(gate, up, act)].map((t) => t.dataSync() as Float32Array);
        }),
      );
      expect(tf.getKernel('AnnealGatedAct', 'torch')).toBeDefined();
      expectClose(got, want, 2e-5);
    });
  }

  it('RoPE: x cos + rotate_half(x) sin and its gradient equal the op chain (cos/sin broadcast over heads)', async () => {
    const [got, want] = await onBoth(() =>
      tf.tidy(() => {
        const x = tf.randomNormal([2, 3, 4, 8], 0, 1, 'float32', 1); // [B, H, T, D]
        const angles = tf.mul(
          tf.reshape(tf.range(0, 2 * 4, 1, 'float32'), [2, 1, 4, 1]),
          tf.tensor1d([1, 0.3, 0.1, 0.01, 1, 0.3, 0.1, 0.01]),
        ); // [B, 1, T, D]
        const [cos, sin] = [tf.cos(angles), tf.sin(angles)];
        const w = tf.randomNormal([2, 3, 4, 8], 0, 1, 'float32', 2);
        const { value, grads } = tf.valueAndGrads((xi: tf.Tensor) => tf.sum(tf.mul(applyRotary(xi, cos, sin), w)))([x]);
        return [value, ...grads, applyRotary(x, cos, sin)].map((t) => t.dataSync() as Float32Array);
      }),
    );
    expect(tf.getKernel('AnnealRope', 'torch')).toBeDefined();
    expectClose(got, want, 2e-5);
  });

  it("y + u bᵀ (LoRA's term added inside the product): value and the gradients of y, u and b", async () => {
    const [got, want] = await onBoth(() =>
      tf.tidy(() => {
        const y = tf.randomNormal([7, 12], 0, 1, 'float32', 1) as tf.Tensor2D;
        const u = tf.randomNormal([7, 3], 0, 1, 'float32', 2) as tf.Tensor2D;
        const b = tf.randomNormal([12, 3], 0, 1, 'float32', 3) as tf.Tensor2D;
        const w = tf.randomNormal([7, 12], 0, 1, 'float32', 4);
        const f = (yi: tf.Tensor, ui: tf.Tensor, bi: tf.Tensor) =>
          tf.sum(tf.mul(addProduct(yi as tf.Tensor2D, ui as tf.Tensor2D, bi as tf.Tensor2D), w));
        const { value, grads } = tf.valueAndGrads(f)([y, u, b]);
        return [value, ...grads, addProduct(y, u, b)].map((t) => t.dataSync() as Float32Array);
      }),
    );
    expect(tf.getKernel('AnnealAddProduct', 'torch')).toBeDefined();
    expectClose(got, want, 2e-5);
  });
});
