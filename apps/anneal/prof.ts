import * as tf from '@tensorflow/tfjs-core';
import { useBackend, valueAndGrads, AdamW } from '@anneal/core';
import { Gpt2LMHeadModel, GPT2_DEFAULTS, crossEntropySum } from '@anneal/modeling';
const be = process.argv[2] ?? 'wasm';
await useBackend(be as any);
const m = Gpt2LMHeadModel.init({ ...GPT2_DEFAULTS, vocabSize: 2048, nPositions: 64, nLayer: 4, nHead: 4, nEmbd: 128, residPdrop: 0, embdPdrop: 0, attnPdrop: 0 }, 1);
const B = 16, T = 64;
const ids = new Int32Array(B * T).map((_, i) => (i * 7) % 2048);
const targets = new Int32Array(B * (T - 1)).map((_, i) => (i * 5) % 2048);
const opt = new AdamW(m.params, { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 });
for (let s = 0; s < 6; s++) {
  const t0 = performance.now();
  const f = tf.tidy(() => m.forward(tf.tensor2d(ids, [B, T], 'int32')));
  f.dataSync(); f.dispose();
  const t1 = performance.now();
  const { value, grads } = valueAndGrads(m.params, () => {
    const logits = m.forward(tf.tensor2d(ids, [B, T], 'int32'));
    const flat = tf.reshape(tf.slice(logits, [0, 0, 0], [B, T - 1, -1]), [B * (T - 1), -1]) as tf.Tensor2D;
    const { sum, count } = crossEntropySum(flat, targets);
    return tf.div(sum, count) as tf.Scalar;
  });
  value.dataSync();
  const t2 = performance.now();
  opt.apply(grads, 1e-3); tf.dispose([...grads.values()]); value.dispose();
  tf.tidy(() => tf.sum(m.params.get('transformer.wte.weight')!)).dataSync();
  const t3 = performance.now();
  console.log(be, 'fwd', (t1 - t0).toFixed(0), 'fwd+bwd', (t2 - t1).toFixed(0), 'adam', (t3 - t2).toFixed(0), 'tensors', tf.memory().numTensors);
}
