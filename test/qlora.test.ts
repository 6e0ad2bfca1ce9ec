// QLoRA across packages: LoRA adapters (@anneal/peft-lora) trained on a base whose
// projections are stored in NF4 (@anneal/quantization).
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, useBackend, valueAndGrads } from '@anneal/core';
import { causalLmLoss, tinyGpt2 } from '@anneal/modeling';
import { LoraConfigSchema, LoraModel } from '@anneal/peft-lora';
import { quantize } from '@anneal/quantization';

const gpt2 = () => tinyGpt2(3);
const IDS = Int32Array.from({ length: 2 * 12 }, (_, i) => (i * 17 + 5) % 61);
const logits = (m: { forward: (a: { inputIds: tf.Tensor2D }) => { logits: tf.Tensor } }) =>
  tf.tidy(() => Float32Array.from(m.forward({ inputIds: tf.tensor2d(IDS, [2, 12], 'int32') }).logits.dataSync()));

describe('QLoRA', () => {
  beforeAll(async () => {
    await useBackend('cpu', {});
  });

  it('trains LoRA adapters on the quantized base (QLoRA): the loss falls, the codes stay as they were', async () => {
    const base = gpt2();
    quantize(base, { method: 'nf4', blockSize: 64, doubleQuant: true });
    const frozen = logits(base);
    const lora = new LoraModel(base, LoraConfigSchema.parse({ r: 8, loraAlpha: 16, targetModules: 'all-linear' }), 1);
    const opt = new AdamW(lora.params, { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
    const losses: number[] = [];
    for (let s = 0; s < 30; s++) {
      const { value, grads } = valueAndGrads(
        lora.params,
        () =>
          causalLmLoss(
            lora.forward({ inputIds: tf.tensor2d(IDS, [2, 12], 'int32'), training: true }).logits as tf.Tensor3D,
            IDS,
          ).loss,
      );
      losses.push(value.dataSync()[0]);
      opt.apply(grads, 1e-2);
      tf.dispose([value, ...grads.values()]);
    }
    expect(losses.at(-1)!).toBeLessThan(losses[0] - 0.1);
    expect(Array.from(lora.withAdapterDisabled(() => logits(lora)))).toEqual(Array.from(frozen));
    opt.dispose();
    lora.dispose();
  });
});
