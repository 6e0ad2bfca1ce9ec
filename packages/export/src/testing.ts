// What the export tests share (not part of the package's API): int64 feeds for onnxruntime,
// the empty past of a decoder's first step, an exported graph's initializer names, Anneal's
// own logits to compare with.
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import type { ForwardArgs } from '@anneal/modeling';
import { ModelProto } from './onnx/proto.js';

/** Rows of ids as an int64 [rows, columns] tensor. */
export const i64 = (rows: number[][]) =>
  new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);

/** past_key_values.{l}{infix}.key/value of length 0 ([B, heads, 0, D]) for `layers` layers. */
export const emptyPast = (layers: number, B: number, heads: number, D: number, infix = '') =>
  Object.fromEntries(
    Array.from({ length: layers }, (_, l) =>
      ['key', 'value'].map((kv) => [
        `past_key_values.${l}${infix}.${kv}`,
        new ort.Tensor('float32', new Float32Array(0), [B, heads, 0, D]),
      ]),
    ).flat(),
  );

/** The names of an encoded model's initializers, in order. */
export const initializerNames = (bytes: Uint8Array) =>
  (
    ModelProto.toObject(ModelProto.decode(bytes)) as { graph: { initializer: Array<{ name: string }> } }
  ).graph.initializer.map((t) => t.name);

/** Anneal's logits for these ids (and attention mask), flattened row-major. */
export const annealLogits = (
  model: { forward(a: ForwardArgs): { logits: tf.Tensor } },
  ids: number[][],
  mask?: number[][],
): number[] =>
  tf.tidy(() =>
    Array.from(
      model
        .forward({
          inputIds: tf.tensor2d(ids, undefined, 'int32'),
          attentionMask: mask && tf.tensor2d(mask, undefined, 'int32'),
        })
        .logits.dataSync(),
    ),
  );
