// Rollouts for online RL (PPO, GRPO, RLOO): sample responses for a batch of prompts with the
// policy (batched, static KV cache), lay the batch out as TRL does — queries left-padded to
// one width, responses right-padded after them — and read each response token's log-prob
// under a causal LM (the policy, an old policy, the reference).
import * as tf from '@tensorflow/tfjs-core';
import { chunkRowsFor, generate, headTargetLogprobs, type CausalLm, type ForwardArgs } from '@anneal/modeling';

/** Queries and responses laid out as [B, Tq + Tr] rows. */
export interface RolloutBatch {
  B: number;
  /** Query width (left-padded) and response width (right-padded). */
  Tq: number;
  Tr: number;
  inputIds: Int32Array; // [B, Tq + Tr]
  attentionMask: Int32Array; // [B, Tq + Tr]
  positionIds: Int32Array; // [B, Tq + Tr]: 0.. from each row's first real token
  /** Response tokens [B, Tr] (pad after the end) and 1 where a token belongs to the response (up to and including EOS). */
  responses: Int32Array;
  responseMask: Float32Array;
  /** Each response's length and whether it ended with EOS. */
  lengths: number[];
  endedWithEos: boolean[];
}

/** How responses are sampled: TRL's generation settings. */
export interface SamplingSettings {
  responseLength: number;
  temperature: number;
  eosTokenId: number;
  padTokenId: number;
  seed: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
  /** Greedy decoding instead of sampling (held-out evaluation). */
  greedy?: boolean;
}

/**
 * Samples a response per prompt (batched, static KV cache). With `logprobs` (an array to fill)
 * each response token's log-prob under the policy at the sampling temperature comes back
 * from the sampling forward itself, as TRL's PPO takes them from generate's logits.
 */
export function sampleResponses(
  policy: CausalLm,
  prompts: number[][],
  o: SamplingSettings,
  logprobs?: number[][],
): number[][] {
  const out = generate(policy, prompts, {
    maxNewTokens: o.responseLength,
    doSample: !o.greedy,
    temperature: o.temperature,
    topP: o.topP,
    topK: o.topK,
    minP: o.minP,
    repetitionPenalty: o.repetitionPenalty,
    eosTokenId: o.eosTokenId,
    padTokenId: o.padTokenId,
    seed: o.seed,
    tokenLogprobs: logprobs,
  });
  return out.map((row, b) => row.slice(prompts[b].length));
}

/** Per-token log-probs of each response (from sampleResponses) laid out as the batch's [B, Tr], zeros after each end. */
export function layoutLogprobs(logprobs: number[][], Tr: number): Float32Array {
  const out = new Float32Array(logprobs.length * Tr);
  logprobs.forEach((row, b) => out.set(row.slice(0, Tr), b * Tr));
  return out;
}

export function layout(prompts: number[][], responses: number[][], padId: number, eosId: number): RolloutBatch {
  const B = prompts.length;
  const Tq = Math.max(...prompts.map((p) => p.length));
  const Tr = Math.max(1, ...responses.map((r) => r.length));
  const T = Tq + Tr;
  const inputIds = new Int32Array(B * T).fill(padId);
  const attentionMask = new Int32Array(B * T);
  const positionIds = new Int32Array(B * T);
  const resp = new Int32Array(B * Tr).fill(padId);
  const responseMask = new Float32Array(B * Tr);
  for (let b = 0; b < B; b++) {
    const p = prompts[b];
    const r = responses[b];
    for (let i = 0; i < p.length; i++) {
      inputIds[b * T + Tq - p.length + i] = p[i];
      attentionMask[b * T + Tq - p.length + i] = 1;
      positionIds[b * T + Tq - p.length + i] = i;
    }
    for (let i = 0; i < r.length; i++) {
      inputIds[b * T + Tq + i] = r[i];
      attentionMask[b * T + Tq + i] = 1;
      positionIds[b * T + Tq + i] = p.length + i;
      resp[b * Tr + i] = r[i];
      responseMask[b * Tr + i] = 1;
    }
  }
  return {
    B,
    Tq,
    Tr,
    inputIds,
    attentionMask,
    positionIds,
    responses: resp,
    responseMask,
    lengths: responses.map((r) => r.length),
    endedWithEos: responses.map((r) => r.length > 0 && r[r.length - 1] === eosId),
  };
}

export function forwardArgs(batch: RolloutBatch, rows?: number[]): ForwardArgs {
  const T = batch.Tq + batch.Tr;
  const pick = (a: Int32Array) =>
    rows ? Int32Array.from(rows.flatMap((b) => Array.from(a.subarray(b * T, (b + 1) * T)))) : a;
  const n = rows?.length ?? batch.B;
  return {
    inputIds: tf.tensor2d(pick(batch.inputIds), [n, T], 'int32'),
    attentionMask: tf.tensor2d(pick(batch.attentionMask), [n, T], 'int32'),
    positionIds: tf.tensor2d(pick(batch.positionIds), [n, T], 'int32'),
  };
}

/** Rows of a [B, Tr] host array. */
export function rowsOf<A extends Int32Array | Float32Array>(a: A, Tr: number, rows: number[]): A {
  const out = new (a.constructor as { new (n: number): A })(rows.length * Tr);
  rows.forEach((b, i) => out.set(a.subarray(b * Tr, (b + 1) * Tr), i * Tr));
  return out;
}

/**
 * Response tokens' log-probs [n, Tr] under a causal LM with logits divided by the sampling
 * temperature, and with `withEntropy` the mean entropy of those distributions over response
 * tokens (TRL's policy/entropy, a number: it is logged, not trained). The head runs on the
 * response positions only, in chunks of rows per lossChunkSize. Call inside tf.tidy or a
 * gradient function.
 */
export function responseLogprobs(
  lm: CausalLm,
  batch: RolloutBatch,
  rows: number[],
  o: { temperature: number; lossChunkSize: number | 'auto'; withEntropy?: boolean },
): { logprobs: tf.Tensor2D; entropy?: number } {
  const { Tq, Tr } = batch;
  const n = rows.length;
  const hidden = lm.hidden(forwardArgs(batch, rows)); // [n, T, C]
  const C = hidden.shape[2];
  // position Tq - 1 + t predicts response token t
  const response = tf.reshape(tf.slice(hidden, [0, Tq - 1, 0], [n, Tr, C]), [n * Tr, C]) as tf.Tensor2D; // [n * Tr, C]
  const head = lm.lmHead();
  const temperature = o.temperature + 1e-7;
  const mask = rowsOf(batch.responseMask, Tr, rows);
  let entropySum = 0;
  const observe = (logits: tf.Tensor2D, start: number) =>
    tf.tidy(() => {
      const logp = tf.logSoftmax(tf.div(logits, temperature)); // [rows, V]
      const ent = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1)); // [rows]
      const m = tf.tensor1d(mask.subarray(start, start + logits.shape[0]));
      entropySum += tf.sum(tf.mul(ent, m)).dataSync()[0];
    });
  const logprobs = headTargetLogprobs(response, head, rowsOf(batch.responses, Tr, rows), {
    chunkRows: chunkRowsFor(o.lossChunkSize, n * Tr, head.vocabSize),
    temperature,
    observe: o.withEntropy ? observe : undefined,
  });
  const logprobs2d = tf.reshape(logprobs, [n, Tr]) as tf.Tensor2D;
  if (!o.withEntropy) return { logprobs: logprobs2d };
  return {
    logprobs: logprobs2d,
    entropy:
      entropySum /
      Math.max(
        1,
        mask.reduce((s, x) => s + x, 0),
      ),
  };
}
