// Quantizing a model's projections for QLoRA: each linear weight (not embeddings, not the
// output heads, as bitsandbytes skips lm_head) is stored in 4 or 8 bits in host memory and
// its f32 tensor freed. The projection dequantizes the weight when it runs, in the forward
// pass and again in the backward pass (which needs only dL/dx: the weight is frozen), so at
// most one layer's f32 weight exists at a time.
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '@anneal/core';
import { setLinearProjection, type PretrainedModel } from '@anneal/modeling';
import { z } from 'zod';
import { dequantize4bit, quantize4bit, storedBytes4bit } from './blockwise.js';
import { dequantizeInt8Rows, quantizeInt8Rows, storedBytesInt8 } from './int8.js';

export const QuantizationConfigSchema = z
  .object({
    /** nf4 / fp4: bitsandbytes' 4-bit code books, blockwise absmax; int8: absmax per row. */
    method: z.enum(['nf4', 'fp4', 'int8']).default('nf4'),
    blockSize: z.number().int().min(2).multipleOf(2).default(64),
    /** Quantize the 4-bit blocks' scales too (8-bit, blocks of 256). */
    doubleQuant: z.boolean().default(true),
  })
  .strict();

export type QuantizationConfig = z.infer<typeof QuantizationConfigSchema>;

export interface QuantizationReport {
  layers: number;
  /** Parameters now stored quantized. */
  parameters: number;
  /** Bytes those parameters take now, and took as float32. */
  storedBytes: number;
  float32Bytes: number;
}

const EMBEDDING = /(^|\.)(embed_tokens|wte|wpe|word_embeddings|position_embeddings|token_type_embeddings)$/;
const HEAD = /(^|\.)(lm_head|score|classifier|vocab_projector|pre_classifier|pooler\.dense)$/;
const GPT2_CONV1D = /\.(c_attn|c_proj|c_fc)$/;

/** x [..., in] -> x W^T (or x W for Conv1D) with W dequantized on use; dL/dx alone flows back. */
function quantizedProjection(weight: () => tf.Tensor, conv: boolean, inDim: number, outDim: number): (x: tf.Tensor) => tf.Tensor {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const x = args[0] as tf.Tensor;
    const w = weight();
    const y = tf.matMul(tf.reshape(x, [-1, inDim]), w, false, !conv); // [N, out]
    w.dispose();
    return {
      value: tf.reshape(y, [...x.shape.slice(0, -1), outDim]),
      gradFunc: (dy: tf.Tensor) => {
        const w2 = weight();
        const dx = tf.matMul(tf.reshape(dy, [-1, outDim]), w2, false, conv); // [N, in]
        w2.dispose();
        return tf.reshape(dx, x.shape);
      },
    };
  });
  return (x) => f(x);
}

/**
 * Quantizes the model's projection weights in place (their f32 tensors are freed); the
 * model then trains only through adapters (LoRA) and cannot be saved as float32.
 */
export function quantize(model: PretrainedModel, c: QuantizationConfig): QuantizationReport {
  const report: QuantizationReport = { layers: 0, parameters: 0, storedBytes: 0, float32Bytes: 0 };
  // One scratch buffer per weight size, reused by every dequantization: a fresh array each
  // time would leave ~8 bytes per parameter per step to the garbage collector. Safe because
  // each dequantized tensor is disposed before the next one is made.
  const scratch = new Map<number, Float32Array<ArrayBuffer>>();
  const buffer = (n: number) => scratch.get(n) ?? scratch.set(n, new Float32Array(n)).get(n)!;
  for (const [name, p] of model.params) {
    if (!name.endsWith('.weight') || p.rank !== 2) continue;
    const module = name.slice(0, -'.weight'.length);
    if (EMBEDDING.test(module) || HEAD.test(module) || p.isDisposed) continue;
    const conv = model.modelType === 'gpt2' && GPT2_CONV1D.test(module);
    const [rows, cols] = p.shape;
    const data = p.dataSync() as Float32Array;
    let weight: () => tf.Tensor;
    if (c.method === 'int8') {
      const q = quantizeInt8Rows(data, rows, cols);
      report.storedBytes += storedBytesInt8(q);
      weight = () => tf.tensor(dequantizeInt8Rows(q, buffer(rows * cols)), [rows, cols]);
    } else {
      const q = quantize4bit(data, { type: c.method, blockSize: c.blockSize, doubleQuant: c.doubleQuant });
      report.storedBytes += storedBytes4bit(q);
      weight = () => tf.tensor(dequantize4bit(q, buffer(rows * cols)), [rows, cols]);
    }
    setLinearProjection(p, quantizedProjection(weight, conv, conv ? rows : cols, conv ? cols : rows));
    p.dispose(); // the tensor object stays as the layer's key and shape; its float32 data is gone
    report.layers++;
    report.parameters += rows * cols;
    report.float32Bytes += rows * cols * 4;
  }
  if (!report.layers) throw new ConfigError(`${model.modelType} has no linear layers to quantize`, { field: 'quantization' });
  model.savePretrained = () => Promise.reject(new ConfigError('a quantized model has no float32 weights to save', { field: 'quantization', hint: 'save the LoRA adapter instead (checkpoints of a QLoRA run do), or merge it into the unquantized base' }));
  return report;
}
