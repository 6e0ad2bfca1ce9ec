import * as tf from '@tensorflow/tfjs-core';
import { useBackend, valueAndGrads } from '@anneal/core';
import { Gpt2LMHeadModel, GPT2_DEFAULTS, crossEntropySum } from '@anneal/modeling';
const be = process.argv[2] ?? 'wasm';
await useBackend(be as any);
const m = Gpt2LMHeadModel.init({ ...GPT2_DEFAULTS, vocabSize: 2048, nPositions: 64, nLayer: 4, nHead: 4, nEmbd: 128, residPdrop: 0, embdPdrop: 0, attnPdrop: 0 }, 1);
const B = 16, T = 64;
const ids = new Int32Array(B * T).map((_, i) => (i * 7) % 2048);
const targets = new Int32Array(B * (T - 1)).map((_, i) => (i * 5) % 2048);
const step = () => {
  const { value, grads } = valueAndGrads(m.params, () => {
    const logits = m.forward(tf.tensor2d(ids, [B, T], 'int32'));
    const flat = tf.reshape(tf.slice(logits, [0, 0, 0], [B, T - 1, -1]), [B * (T - 1), -1]) as tf.Tensor2D;
    const { sum, count } = crossEntropySum(flat, targets);
    return tf.div(sum, count) as tf.Scalar;
  });
  value.dataSync(); value.dispose(); tf.dispose([...grads.values()]);
};
step();
const before = tf.memory().numTensors; step(); console.log('leak per step', tf.memory().numTensors - before);
const info = await tf.profile(() => { step(); });
const agg = new Map<string, number>();
for (const k of info.kernels) agg.set(k.name, (agg.get(k.name) ?? 0) + (k.kernelTimeMs as number));
console.log([...agg].sort((a, b) => b[1] - a[1]).slice(0, 15));
