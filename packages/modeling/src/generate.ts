// Text generation for causal LMs: greedy or temperature/top-k sampling, one token at a
// time over the last `contextLength` tokens. Sampling draws from a seeded Rng so that
// generations are reproducible. (A KV cache arrives with the modeling issue.)
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@anneal/core';

export interface CausalLm {
  forward(inputIds: tf.Tensor2D): tf.Tensor3D;
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** Longest context the model accepts (n_positions). */
  contextLength: number;
  /** 0 = greedy (argmax). */
  temperature?: number;
  /** Sample only among the k most likely tokens (0 = all). */
  topK?: number;
  eosTokenId?: number;
  rng?: Rng;
}

/** Returns prompt + generated ids (stops early at eos). */
export function generate(model: CausalLm, prompt: number[], o: GenerateOptions): number[] {
  const ids = [...prompt];
  const temperature = o.temperature ?? 0;
  const rng = o.rng ?? new Rng(0);
  for (let n = 0; n < o.maxNewTokens; n++) {
    const ctx = ids.slice(-o.contextLength);
    const last = tf.tidy(() => {
      const logits = model.forward(tf.tensor2d([ctx], [1, ctx.length], 'int32')); // [1, T, V]
      return tf.squeeze(tf.slice(logits, [0, ctx.length - 1, 0], [1, 1, -1])); // [V]
    });
    const scores = last.dataSync() as Float32Array;
    last.dispose();
    const next = temperature <= 0 ? argmax(scores) : sample(scores, temperature, o.topK ?? 0, rng);
    ids.push(next);
    if (next === o.eosTokenId) break;
  }
  return ids;
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

function sample(logits: Float32Array, temperature: number, topK: number, rng: Rng): number {
  let order = Array.from(logits.keys());
  if (topK > 0 && topK < logits.length) order = order.sort((a, b) => logits[b] - logits[a]).slice(0, topK);
  const max = Math.max(...order.map((i) => logits[i]));
  const weights = order.map((i) => Math.exp((logits[i] - max) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let r = rng.next() * total;
  for (let j = 0; j < order.length; j++) {
    r -= weights[j];
    if (r <= 0) return order[j];
  }
  return order[order.length - 1];
}
