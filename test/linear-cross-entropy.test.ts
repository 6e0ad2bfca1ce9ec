// The LM head and its loss as one chunked kernel (linearCrossEntropySum on the torch
// backend) against the product followed by the cross-entropy, computed by tfjs's own cpu
// backend (an independent implementation): values and gradients, with ignored targets and a
// last partial chunk; and GPT-2's causal-LM loss through it equals the loss from its logits.
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADDON_PATH, registerTorchBackend } from '@anneal/backend-torch';
import { useBackend, valueAndGrads } from '@anneal/core';
import {
  GPT2_DEFAULTS,
  Gpt2LMHeadModel,
  causalLmLossSum,
  causalLmTargets,
  crossEntropySumOfTargets,
  linearCrossEntropySum,
} from '@anneal/modeling';

const required = process.env.CI === 'true' || Boolean(process.env.ANNEAL_REQUIRE_TORCH);
const d = existsSync(ADDON_PATH) || required ? describe : describe.skip;

function close(got: Float32Array, want: Float32Array, tol: number, what: string) {
  const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 1);
  got.forEach((v, i) => expect(Math.abs(v - want[i]), `${what}[${i}]`).toBeLessThanOrEqual(tol * scale));
}

d('linear + cross-entropy in chunks (torch backend)', () => {
  beforeAll(() => registerTorchBackend({ warn: () => undefined }));

  it('equals matMul + cross-entropy on the cpu backend: loss and gradients of hidden and weight', async () => {
    const targets = Int32Array.from([3, -100, 0, 36, 7, 11, -100, 9, 1, 2, 35, 6, 20]); // N = 13: chunks of 5, 5, 3
    const run = (fused: boolean) =>
      tf.tidy(() => {
        const h = tf.randomNormal([13, 16], 0, 1, 'float32', 1);
        const w = tf.randomNormal([37, 16], 0, 0.5, 'float32', 2);
        const t = tf.tensor1d(targets, 'int32');
        const f = (hi: tf.Tensor, wi: tf.Tensor) =>
          fused
            ? linearCrossEntropySum(hi as tf.Tensor2D, wi as tf.Tensor2D, t, 5)
            : crossEntropySumOfTargets(tf.matMul(hi as tf.Tensor2D, wi as tf.Tensor2D, false, true), t);
        const { value, grads } = tf.valueAndGrads(f)([h, w]);
        return [value, ...grads].map((x) => x.dataSync() as Float32Array);
      });
    await useBackend('cpu', {});
    const want = run(false);
    await useBackend('torch', {});
    expect(tf.getKernel('AnnealLinearCrossEntropy', 'torch')).toBeDefined();
    const got = run(true);
    ['loss', 'd hidden', 'd weight'].forEach((what, k) => close(got[k], want[k], 2e-5, what));
  });

  it("GPT-2's causal-LM loss from its hidden states and tied head equals the loss from its logits, with the same gradients", async () => {
    await useBackend('torch', {});
    const cfg = {
      ...GPT2_DEFAULTS,
      vocabSize: 61,
      nPositions: 16,
      nEmbd: 32,
      nHead: 4,
      nLayer: 2,
      residPdrop: 0,
      embdPdrop: 0,
      attnPdrop: 0,
    };
    const model = Gpt2LMHeadModel.init(cfg, 4);
    const [B, T] = [3, 10];
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 17 + 5) % cfg.vocabSize);
    const { targets } = causalLmTargets(ids, B, T);
    const viaLogits = valueAndGrads(
      model.params,
      () => causalLmLossSum(model.forward({ inputIds: tf.tensor2d(ids, [B, T], 'int32') }).logits, ids).sum,
    );
    const viaHidden = valueAndGrads(model.params, () => {
      const hidden = tf.reshape(model.hidden({ inputIds: tf.tensor2d(ids, [B, T], 'int32') }), [
        B * T,
        cfg.nEmbd,
      ]) as tf.Tensor2D;
      return linearCrossEntropySum(hidden, model.lmHeadWeight, tf.tensor1d(targets, 'int32'), 7);
    });
    close(viaHidden.value.dataSync() as Float32Array, viaLogits.value.dataSync() as Float32Array, 1e-5, 'loss');
    for (const [name, g] of viaLogits.grads)
      close(viaHidden.grads.get(name)!.dataSync() as Float32Array, g.dataSync() as Float32Array, 1e-5, name);
    tf.dispose([viaLogits.value, viaHidden.value, ...viaLogits.grads.values(), ...viaHidden.grads.values()]);
    model.dispose();
  });
});
