// The LM head and what the loss needs of it, a chunk of rows at a time (Liger-Kernel's fused
// linear cross-entropy, TRL's chunked NLL): the [N, V] logits of a whole batch are the largest
// activation of a small model's step (GPT-2: 50257 floats per token, 65x its hidden size), and
// here only one chunk's [n, V] exists at once. Two ways, any backend:
// - a frozen head (LoRA, QLoRA: softcap(h Wᵀ) with W not trained): each row's loss term has
//   a closed-form gradient with respect to its hidden row, (softmax − one-hot) · W, taken in
//   the forward pass chunk by chunk and kept as [N, C]; the backward pass only scales it
//   (Liger-Kernel's way: no second pass of the head);
// - any other head (trained weights, an adapter on lm_head): the forward pass runs the head
//   chunk by chunk keeping only its input, and the backward pass runs each chunk again,
//   recorded, taking its gradients before the next (activation checkpointing of the head).
import * as tf from '@tensorflow/tfjs-core';
import { gradients } from '@anneal/core';
import { softcap, type LmHead } from './lm-head.js';
import { IGNORE_INDEX, crossEntropySum, crossEntropySumOfTargets, pickTargets } from './loss.js';

export interface HeadPass {
  /** Rows of hidden per chunk; 0 or at least N: one pass over all rows (the [N, V] logits at once). */
  chunkRows: number;
  /** Sees each chunk's logits [n, V] (rows start .. start + n) in the forward pass, for metrics; not differentiated. */
  observe?: (logits: tf.Tensor2D, start: number) => void;
}

/** About 64 MB of float32 logits per chunk, and no chunking while a batch's logits stay under 256 MB. */
const AUTO_CHUNK_LOGITS = 2 ** 24;
const AUTO_THRESHOLD_LOGITS = 2 ** 26;

/**
 * Rows per chunk for `lossChunkSize` (train.lossChunkSize: tokens per chunk, 0 = off, auto =
 * chunks of about 64 MB of logits once a micro-batch's [N, V] logits pass 256 MB).
 */
export function chunkRowsFor(lossChunkSize: number | 'auto', rows: number, vocabSize: number): number {
  if (lossChunkSize !== 'auto') return lossChunkSize;
  if (rows * vocabSize <= AUTO_THRESHOLD_LOGITS) return 0;
  return Math.max(1, Math.floor(AUTO_CHUNK_LOGITS / vocabSize));
}

/**
 * Summed cross-entropy of head(hidden [N, C]) against targets [N] (-100 = ignored, others
 * must be token ids) and the number counted. Gradients reach hidden and the head's trainable
 * variables. Call inside tf.tidy or a gradient function.
 */
export function headCrossEntropySum(
  hidden: tf.Tensor2D,
  head: LmHead,
  targets: Int32Array,
  o: HeadPass,
): { sum: tf.Scalar; count: number } {
  const count = checkTargets(targets, head.vocabSize, true);
  if (!chunked(hidden, o)) {
    const logits = head.logits(hidden); // [N, V]
    o.observe?.(logits, 0);
    return { sum: crossEntropySum(logits, targets).sum, count };
  }
  const t = tf.tensor1d(targets, 'int32');
  const sum = overChunks(hidden, head, o, 'sum', [t], {
    value: (logits, start, n, [kept]) => crossEntropySumOfTargets(logits, tf.slice(kept, start, n) as tf.Tensor1D),
    // the summed cross-entropy of counted rows and its gradient: softmax − one-hot on those rows
    withGradient: (z, start, n, [kept]) => {
      const tc = tf.slice(kept, start, n) as tf.Tensor1D;
      const valid = tf.cast(tf.notEqual(tc, IGNORE_INDEX), 'float32'); // [n]
      const hot = tf.oneHot(tf.where(tf.notEqual(tc, IGNORE_INDEX), tc, tf.zerosLike(tc)) as tf.Tensor1D, z.shape[1]);
      const lp = tf.logSoftmax(z); // [n, V]
      const value = tf.neg(tf.sum(tf.mul(tf.sum(tf.mul(lp, hot), 1), valid)));
      const dz = tf.mul(tf.sub(tf.exp(lp), hot), tf.reshape(valid, [n, 1])) as tf.Tensor2D;
      return { value, dz };
    },
  });
  return { sum: sum as tf.Scalar, count };
}

/**
 * log softmax(head(hidden [N, C]) / temperature)[n, targets[n]] for each row: [N] (targets must
 * be token ids: callers mask what does not count). Call inside tf.tidy or a gradient function.
 */
export function headTargetLogprobs(
  hidden: tf.Tensor2D,
  head: LmHead,
  targets: Int32Array,
  o: HeadPass & { temperature?: number },
): tf.Tensor1D {
  checkTargets(targets, head.vocabSize, false);
  const temperature = o.temperature ?? 1;
  const logprobs = (logits: tf.Tensor2D, start: number, n: number) =>
    pickTargets(
      tf.logSoftmax(temperature === 1 ? logits : tf.div(logits, temperature)) as tf.Tensor2D,
      targets.subarray(start, start + n),
    );
  if (!chunked(hidden, o)) {
    const logits = head.logits(hidden); // [N, V]
    o.observe?.(logits, 0);
    return logprobs(logits, 0, hidden.shape[0]);
  }
  return overChunks(hidden, head, o, 'concat', [], {
    value: logprobs,
    // each row's target log-prob and its gradient: (one-hot − softmax(z / t)) / t
    withGradient: (z, start, n) => {
      const hot = tf.oneHot(tf.tensor1d(targets.subarray(start, start + n), 'int32'), z.shape[1]);
      const lp = tf.logSoftmax(temperature === 1 ? z : tf.div(z, temperature)); // [n, V]
      return { value: tf.sum(tf.mul(lp, hot), 1), dz: tf.div(tf.sub(hot, tf.exp(lp)), temperature) as tf.Tensor2D };
    },
  }) as tf.Tensor1D;
}

const chunked = (hidden: tf.Tensor2D, o: HeadPass) => o.chunkRows > 0 && o.chunkRows < hidden.shape[0];

/** Checks every target is a token id (or IGNORE_INDEX where allowed); returns how many count. */
function checkTargets(targets: Int32Array, V: number, ignorable: boolean): number {
  let count = 0;
  for (let i = 0; i < targets.length; i++) {
    if (ignorable && targets[i] === IGNORE_INDEX) continue;
    if (targets[i] < 0 || targets[i] >= V)
      throw new RangeError(`target id ${targets[i]} at position ${i} is outside the vocabulary (size ${V})`);
    count++;
  }
  return count;
}

/** What a loss computes of one chunk's logits [n, V] (rows start .. start + n). */
interface ChunkLoss {
  /** Its value: a scalar ('sum') or one per row ('concat'). */
  value: (logits: tf.Tensor2D, start: number, n: number, constants: tf.Tensor[]) => tf.Tensor;
  /** The value and its gradient with respect to the (soft-capped) logits z [n, V], row by row (frozen heads). */
  withGradient: (
    z: tf.Tensor2D,
    start: number,
    n: number,
    constants: tf.Tensor[],
  ) => { value: tf.Tensor; dz: tf.Tensor2D };
}

/**
 * The chunk losses over chunks of o.chunkRows rows, summed ('sum': scalar values) or
 * concatenated ('concat': [n] values), recorded as one operation of hidden and the head's
 * trainable variables. `constants` (tensors the loss reads, made by the caller) are kept
 * for the backward pass and handed to it.
 */
function overChunks(
  hidden: tf.Tensor2D,
  head: LmHead,
  o: HeadPass,
  combine: 'sum' | 'concat',
  constants: tf.Tensor[],
  loss: ChunkLoss,
): tf.Tensor {
  const [N, C] = hidden.shape;
  const chunks: Array<[number, number]> = [];
  for (let s = 0; s < N; s += o.chunkRows) chunks.push([s, Math.min(o.chunkRows, N - s)]);
  const rowsOf = (h: tf.Tensor, [s, n]: [number, number]) => tf.slice(h, [s, 0], [n, C]) as tf.Tensor2D; // [n, C]
  const joined = (parts: tf.Tensor[]) => (combine === 'sum' ? tf.addN(parts) : tf.concat(parts));
  const variables = head.trainableVariables();
  const frozen = variables.length === 0 ? head.frozen : undefined;

  if (frozen) {
    // Each loss term reads one row, so d(term)/d(its row) is all the backward pass needs: kept as [N, C].
    const { weight, softcap: cap } = frozen;
    const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const h = args[0] as tf.Tensor2D;
      const values: tf.Tensor[] = [];
      const rowGrads: tf.Tensor[] = [];
      for (const [s, n] of chunks) {
        const [value, rowGrad] = tf.tidy(() => {
          const x = tf.matMul(rowsOf(h, [s, n]), weight, false, true); // [n, V]
          const z = softcap(x, cap) as tf.Tensor2D;
          o.observe?.(z, s);
          const r = loss.withGradient(z, s, n, constants);
          const dx = cap ? tf.mul(r.dz, tf.sub(1, tf.square(tf.div(z, cap)))) : r.dz; // through cap · tanh(x / cap)
          return [r.value, tf.matMul(dx, weight)]; // value, d(value)/d(rows) [n, C]
        });
        values.push(value);
        rowGrads.push(rowGrad);
      }
      const rowGrad = tf.concat(rowGrads); // [N, C]
      (args[args.length - 1] as tf.GradSaveFunc)([rowGrad]);
      return {
        value: joined(values),
        gradFunc: (dy: tf.Tensor, [g]: tf.Tensor[]) => tf.mul(g, combine === 'sum' ? dy : tf.reshape(dy, [N, 1])),
      };
    });
    return f(hidden);
  }

  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const h = args[0] as tf.Tensor2D;
    (args[args.length - 1] as tf.GradSaveFunc)([h, ...constants]);
    // not recorded: each chunk's logits are freed before the next chunk's are made
    const parts = chunks.map(([s, n]) =>
      tf.tidy(() => {
        const logits = head.logits(rowsOf(h, [s, n]), s); // [n, V]
        o.observe?.(logits, s);
        return loss.value(logits, s, n, constants);
      }),
    );
    return {
      value: joined(parts),
      gradFunc: (dy: tf.Tensor, [saved, ...kept]: tf.Tensor[]) => {
        const dHidden: tf.Tensor[] = [];
        let dVars: tf.Tensor[] = [];
        for (const [s, n] of chunks) {
          const [dRows, ...dv] = tf.tidy(() => {
            const rows = rowsOf(saved, [s, n]);
            const dyChunk = combine === 'sum' ? dy : tf.slice(dy, s, n);
            // the vector-Jacobian product of this chunk: d/d(rows, variables) of sum(value * dy)
            const { value: v, grads } = gradients(
              () => tf.sum(tf.mul(loss.value(head.logits(rows, s), s, n, kept), dyChunk)),
              [rows, ...variables],
            );
            v.dispose();
            const g = grads.map((d, i) => d ?? tf.zerosLike(i === 0 ? rows : variables[i - 1]));
            return [g[0], ...g.slice(1).map((d, i) => (dVars.length ? tf.add(dVars[i], d) : d))];
          });
          tf.dispose(dVars);
          dHidden.push(dRows);
          dVars = dv;
        }
        const dh = tf.concat(dHidden);
        tf.dispose(dHidden);
        return [dh, ...dVars];
      },
    };
  });
  return f(hidden, ...variables);
}
