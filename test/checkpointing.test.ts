// Activation checkpointing: each block keeps only its input in the forward pass and is run
// again in the backward pass. The gradients equal the plain run's bit for bit on the cpu
// backend (dropout on: its masks are seeded, so the recomputation draws the same ones), with
// LoRA too; and the memory held at the end of the forward pass falls.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend, valueAndGrads } from '@anneal/core';
import {
  DISTILBERT_DEFAULTS,
  DistilBertModelWithHead,
  causalLmLoss,
  loadPretrainedSync,
  tinyGpt2,
  type PretrainedModel,
} from '@anneal/modeling';
import { LoraConfigSchema, LoraModel } from '@anneal/peft-lora';

const FIXTURES = fileURLToPath(new URL('../../shared/fixtures/hf/', import.meta.url));
const IDS = Array.from({ length: 2 }, (_, b) => Array.from({ length: 12 }, (_, t) => (b * 31 + t * 7 + 5) % 61));

const tinyDistilBert = () =>
  DistilBertModelWithHead.init(
    { ...DISTILBERT_DEFAULTS, vocabSize: 61, dim: 32, nHeads: 2, nLayers: 2, hiddenDim: 64, maxPositionEmbeddings: 32 },
    'mlm',
    1,
  );

/** Loss, gradients and the bytes alive when the forward pass ended, with checkpointing on or off. */
function step(model: PretrainedModel, forward: { forward: PretrainedModel['forward'] }, on: boolean) {
  model.gradientCheckpointing = on;
  let atEnd = 0;
  const params = new Map([...model.params].filter(([, v]) => v.trainable));
  const trainable = forward instanceof LoraModel ? forward.params : params;
  const { value, grads } = valueAndGrads(trainable, () => {
    const logits = forward.forward({ inputIds: tf.tensor2d(IDS, [2, 12], 'int32'), training: true, dropoutSeed: 7 })
      .logits as tf.Tensor3D;
    atEnd = tf.memory().numBytes;
    return causalLmLoss(logits, IDS).loss;
  });
  const out = { loss: value.dataSync()[0], grads: new Map([...grads].map(([n, g]) => [n, g.dataSync()])), atEnd };
  tf.dispose([value, ...grads.values()]);
  return out;
}

describe('activation checkpointing', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  const models: Array<[string, () => PretrainedModel]> = [
    ['GPT-2 (dropout 0.1)', () => tinyGpt2(3, { residPdrop: 0.1, embdPdrop: 0.1, attnPdrop: 0.1, nLayer: 3 })],
    ['Qwen3 fixture', () => loadPretrainedSync(join(FIXTURES, 'qwen3'))],
    ['Gemma 3 fixture (sliding layers)', () => loadPretrainedSync(join(FIXTURES, 'gemma3'))],
    ['BERT MLM fixture', () => loadPretrainedSync(join(FIXTURES, 'bert_mlm'))],
    ['DistilBERT (BERT encoder under renamed parameters)', () => tinyDistilBert()],
  ];
  for (const [name, make] of models) {
    it(`${name}: the same loss and gradients bit for bit, less memory held after the forward pass`, () => {
      const model = make();
      const plain = step(model, model, false);
      const ckpt = step(model, model, true);
      expect(ckpt.loss).toBe(plain.loss);
      expect([...ckpt.grads.keys()].sort()).toEqual([...plain.grads.keys()].sort());
      for (const [n, g] of plain.grads) expect(Array.from(ckpt.grads.get(n)!), n).toEqual(Array.from(g));
      expect(ckpt.atEnd).toBeLessThan(plain.atEnd);
      model.dispose();
    });
  }

  it('with LoRA (dropout on the adapters): the adapters get the same gradients bit for bit', () => {
    const base = tinyGpt2(3, { residPdrop: 0.1, nLayer: 2 });
    const lora = new LoraModel(
      base,
      LoraConfigSchema.parse({ r: 4, targetModules: 'all-linear', loraDropout: 0.1, initLoraWeights: false }),
      1,
    );
    const plain = step(base, lora, false);
    const ckpt = step(base, lora, true);
    expect(ckpt.loss).toBe(plain.loss);
    expect(plain.grads.size).toBe(lora.params.size);
    for (const [n, g] of plain.grads) expect(Array.from(ckpt.grads.get(n)!), n).toEqual(Array.from(g));
    lora.dispose();
  });

  it("with LoRA on DistilBERT (a renamed view of BERT's encoder): the adapters get the same gradients", () => {
    const base = tinyDistilBert();
    const lora = new LoraModel(
      base,
      LoraConfigSchema.parse({ r: 4, targetModules: ['q_lin', 'lin1'], initLoraWeights: false }),
      1,
    );
    const plain = step(base, lora, false);
    const ckpt = step(base, lora, true);
    expect(plain.grads.size).toBe(lora.params.size);
    for (const [n, g] of plain.grads) expect(Array.from(ckpt.grads.get(n)!), n).toEqual(Array.from(g));
    lora.dispose();
  });
});
