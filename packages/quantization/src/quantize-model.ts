// Quantizing a model's projections for QLoRA: each linear weight (not embeddings, not the
// output heads, as bitsandbytes skips lm_head) is stored in 4 or 8 bits in host memory, in
// Linear layout [out, in] (GPT-2's Conv1D transposed, as transformers does for bitsandbytes).
// The model keeps a disposed float32 tensor as the weight's key and shape; the projection
// dequantizes the weight when it runs, in the forward pass and again in the backward pass
// (which needs only dL/dx: the weight is frozen), so at most one layer's f32 weight exists at
// a time. `quantize` does this to a model in memory; `loadQuantized` while loading, so the
// float32 projections are never built (or from a checkpoint that is quantized already).
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  CheckpointError,
  ConfigError,
  float32Data,
  serializeSafetensors,
  stringifyJson,
  writeDirAtomic,
  writeFileDurable,
  type TensorToWrite,
} from '@anneal/core';
import {
  TRANSFORMERS_FLOAT_KEYS,
  loadPretrainedSync,
  localModelDir,
  readHfConfig,
  setLinearProjection,
  type HubOptions,
  type PretrainedModel,
  type WeightLoader,
} from '@anneal/modeling';
import { z } from 'zod';
import { blockScales, dequantize4bit, quantize4bit, storedBytes4bit, type Quantized4bit } from './blockwise.js';
import { FP4_CODE, NF4_CODE } from './codebooks.js';
import {
  BNB_FLOAT_KEYS,
  bnbQuantizationConfig,
  fourBitTensors,
  int8Tensors,
  readFourBit,
  readInt8,
} from './bnb-format.js';
import { dequantizeInt8Rows, quantizeInt8Rows, storedBytesInt8, type QuantizedInt8 } from './int8.js';

export const QuantizationConfigSchema = z
  .object({
    /** nf4 / fp4: bitsandbytes' 4-bit code books, blockwise absmax; int8: absmax per row. */
    method: z.enum(['nf4', 'fp4', 'int8']).default('nf4'),
    blockSize: z.number().int().min(2).multipleOf(2).default(64),
    /** Quantize the 4-bit blocks' scales too (8-bit dynamic map, blocks of 256). */
    doubleQuant: z.boolean().default(true),
    /**
     * The dtype the projections multiply in (bnb_4bit_compute_dtype). bfloat16 is what the
     * torch backend's bf16 autocast does to every matmul, so a run asks for it with
     * `autocast: bf16`; the recipes check the two agree.
     */
    computeDtype: z.enum(['float32', 'bfloat16']).optional(), // float32 when unset
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

type Stored = ({ kind: '4bit'; q: Quantized4bit } | { kind: 'int8'; q: QuantizedInt8 }) & {
  rows: number;
  cols: number;
  config: QuantizationConfig;
  /** The model keeps this weight as [cols, rows] (GPT-2's Conv1D). */
  transposed?: boolean;
  /** On a backend with the dequantization kernels: the codes live there (the host copy is dropped). */
  device?: { codes: tf.Tensor; scales: tf.Tensor; book?: tf.Tensor };
};

/** The weight key of each quantized projection -> its data ([rows, cols] = [out, in]). */
const STORED = new WeakMap<tf.Tensor, Stored>();

const EMBEDDING = /(^|\.)(embed_tokens|wte|wpe|word_embeddings|position_embeddings|token_type_embeddings)$/;
const HEAD = /(^|\.)(lm_head|score|classifier|vocab_projector|pre_classifier|pooler\.dense)$/;
const GPT2_CONV1D = /\.(c_attn|c_proj|c_fc)$/;

/** Is `name` a projection weight that quantization stores in low bits? */
function isProjection(name: string, shape: number[]): boolean {
  if (!name.endsWith('.weight') || shape.length !== 2) return false;
  const module = name.slice(0, -'.weight'.length);
  return !EMBEDDING.test(module) && !HEAD.test(module);
}

const isConv1d = (modelType: string, name: string) =>
  modelType === 'gpt2' && GPT2_CONV1D.test(name.slice(0, -'.weight'.length));

/** Values of a [rows, cols] weight in [cols, rows] order. */
function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** x [..., in] -> x W^T with W [out, in] dequantized on use; dL/dx alone flows back. */
function quantizedProjection(weight: () => tf.Tensor, inDim: number, outDim: number): (x: tf.Tensor) => tf.Tensor {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const x = args[0] as tf.Tensor;
    const w = weight();
    const y = tf.matMul(tf.reshape(x, [-1, inDim]), w, false, true); // [N, out]
    w.dispose();
    return {
      value: tf.reshape(y, [...x.shape.slice(0, -1), outDim]),
      gradFunc: (dy: tf.Tensor) => {
        const w2 = weight();
        const dx = tf.matMul(tf.reshape(dy, [-1, outDim]), w2); // [N, in]
        w2.dispose();
        return tf.reshape(dx, x.shape);
      },
    };
  });
  return (x) => f(x);
}

/** Weights by key, for dequantize: how each projection dequantizes (Linear layout). */
const DEQUANT = new WeakMap<tf.Tensor, () => tf.Tensor>();

/** Installs quantized weights on their keys and counts them. */
class Quantizer {
  readonly report: QuantizationReport = { layers: 0, parameters: 0, storedBytes: 0, float32Bytes: 0 };
  // One scratch buffer per weight size, reused by every dequantization: a fresh array each
  // time would leave ~8 bytes per parameter per step to the garbage collector. Safe because
  // each dequantized tensor is disposed before the next one is made.
  private readonly scratch = new Map<number, Float32Array<ArrayBuffer>>();

  constructor(readonly config: QuantizationConfig) {}

  private buffer(n: number): Float32Array<ArrayBuffer> {
    return this.scratch.get(n) ?? this.scratch.set(n, new Float32Array(n)).get(n)!;
  }

  /** Quantizes `data` (Linear layout [rows, cols]) onto the weight key. */
  fromFloat(key: tf.Tensor, data: Float32Array, rows: number, cols: number, transposed: boolean): void {
    const c = this.config;
    const s: Stored =
      c.method === 'int8'
        ? { kind: 'int8', q: quantizeInt8Rows(data, rows, cols), rows, cols, config: c, transposed }
        : {
            kind: '4bit',
            q: quantize4bit(data, { type: c.method, blockSize: c.blockSize, doubleQuant: c.doubleQuant }),
            rows,
            cols,
            config: c,
            transposed,
          };
    this.install(key, s);
  }

  install(key: tf.Tensor, s: Stored): void {
    const { rows, cols } = s;
    this.report.layers++;
    this.report.parameters += rows * cols;
    this.report.float32Bytes += rows * cols * 4;
    this.report.storedBytes += s.kind === 'int8' ? storedBytesInt8(s.q) : storedBytes4bit(s.q);
    const onDevice = hasKernel(s.kind === 'int8' ? 'AnnealDequantInt8' : 'AnnealDequant4bit');
    const weight = onDevice
      ? toDevice(s)
      : () =>
          tf.tensor(
            s.kind === 'int8'
              ? dequantizeInt8Rows(s.q, this.buffer(rows * cols))
              : dequantize4bit(s.q, this.buffer(rows * cols)),
            [rows, cols],
          );
    STORED.set(key, s);
    DEQUANT.set(key, weight);
    setLinearProjection(key, quantizedProjection(weight, cols, rows));
  }
}

const hasKernel = (name: string) => tf.getKernel(name, tf.getBackend()) !== undefined;

/** Bytes as int32 words (zero-padded), to carry uint8/int8 data in a tfjs tensor. */
function words(bytes: Uint8Array | Int8Array): tf.Tensor {
  const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  padded.set(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return tf.keep(tf.tensor1d(new Int32Array(padded.buffer), 'int32'));
}

/**
 * Moves a weight's codes and scales to the backend (the torch backend: CPU or GPU memory) and
 * returns its dequantization there, one kernel per use, bit-identical to the host's
 * (code x scale, one float32 rounding). The host copy of the codes is dropped; 4-bit block
 * scales are held dequantized (float32: +0.047 bytes per parameter with double quantization).
 */
function toDevice(s: Stored): () => tf.Tensor {
  const { rows, cols } = s;
  if (s.kind === 'int8') {
    const d = { codes: words(s.q.codes), scales: tf.keep(tf.tensor1d(s.q.scales)) };
    s.device = d;
    s.q = { ...s.q, codes: new Int8Array(0) };
    return () =>
      tf.engine().runKernel('AnnealDequantInt8', { codes: d.codes, scales: d.scales }, {
        rows,
        cols,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  // the code book as a byte -> (high nibble's value, low nibble's value) table, built once here
  const code = s.q.type === 'nf4' ? NF4_CODE : FP4_CODE;
  const pairs = Float32Array.from({ length: 512 }, (_, i) => code[i % 2 === 0 ? i >> 5 : (i >> 1) & 15]);
  const d = {
    codes: words(s.q.packed),
    scales: tf.keep(tf.tensor1d(blockScales(s.q))),
    book: tf.keep(tf.tensor2d(pairs, [256, 2])),
  };
  s.device = d;
  s.q = { ...s.q, packed: new Uint8Array(0) };
  const blockSize = s.q.blockSize;
  return () =>
    tf.engine().runKernel('AnnealDequant4bit', { codes: d.codes, book: d.book, scales: d.scales }, {
      rows,
      cols,
      blockSize,
    } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** A stored weight with its codes back on the host (read from the device when they live there). */
async function onHost(s: Stored): Promise<Stored> {
  if (!s.device) return s;
  const bytes = new Uint8Array(((await s.device.codes.data()) as Int32Array).buffer);
  if (s.kind === 'int8') return { ...s, q: { ...s.q, codes: new Int8Array(bytes.buffer, 0, s.rows * s.cols) } };
  return { ...s, q: { ...s.q, packed: bytes.subarray(0, Math.ceil(s.q.n / 2)) } };
}

function finish(model: PretrainedModel, q: Quantizer): QuantizationReport {
  if (!q.report.layers)
    throw new ConfigError(`${model.modelType} has no linear layers to quantize`, { field: 'quantization' });
  const dispose = model.dispose.bind(model);
  model.dispose = () => {
    for (const p of model.params.values()) {
      const d = STORED.get(p)?.device;
      if (d) tf.dispose([d.codes, d.scales, ...(d.book ? [d.book] : [])]);
    }
    dispose();
  };
  model.savePretrained = () =>
    Promise.reject(
      new ConfigError('a quantized model has no float32 weights to save', {
        field: 'quantization',
        hint: 'save it with saveQuantized, or save the LoRA adapter (checkpoints of a QLoRA run do), or merge the adapter into the unquantized base',
      }),
    );
  return q.report;
}

/**
 * Quantizes the model's projection weights in place (their f32 tensors are freed); the
 * model then trains only through adapters (LoRA) and saves only with saveQuantized.
 */
export function quantize(model: PretrainedModel, c: QuantizationConfig): QuantizationReport {
  const q = new Quantizer(c);
  for (const [name, p] of model.params) {
    if (!isProjection(name, p.shape) || p.isDisposed || STORED.has(p)) continue;
    const [rows, cols] = p.shape;
    const data = p.dataSync() as Float32Array;
    const conv = isConv1d(model.modelType, name);
    if (conv) q.fromFloat(p, transposed(data, rows, cols), cols, rows, true);
    else q.fromFloat(p, data, rows, cols, false);
    p.dispose(); // the tensor object stays as the layer's key and shape; its float32 data is gone
  }
  return finish(model, q);
}

/**
 * Undoes quantize in place, as transformers' model.dequantize(): each quantized projection
 * becomes a float32 parameter again, holding the dequantized values (the quantization error
 * stays). The model can then be saved with savePretrained, merged with a QLoRA adapter, or
 * trained in full. Returns the number of weights restored.
 */
export function dequantize(model: PretrainedModel): number {
  let n = 0;
  for (const [name, key] of [...model.params]) {
    const s = STORED.get(key);
    const weight = DEQUANT.get(key);
    if (!s || !weight) continue;
    const w = tf.tidy(() => {
      // a copy: on the cpu backend the dequantized tensor aliases the shared scratch buffer
      const lin = tf.tensor(weight().dataSync().slice(), [s.rows, s.cols]); // [out, in]
      return tf.variable(s.transposed ? tf.transpose(lin) : lin, true);
    });
    setLinearProjection(key, undefined);
    if (s.device) tf.dispose([s.device.codes, s.device.scales, ...(s.device.book ? [s.device.book] : [])]);
    STORED.delete(key);
    model.params.set(name, w);
    n++;
  }
  if (n) delete (model as { savePretrained?: unknown }).savePretrained; // the class's own again
  return n;
}

/** Are this model's projections stored quantized (by quantize or loadQuantized; also a model built on such weights, like a classifier on a quantized trunk)? */
export function isQuantized(model: PretrainedModel): boolean {
  for (const p of model.params.values()) if (STORED.has(p)) return true;
  return false;
}

/** A weight key: a float32 tensor of the weight's shape whose data is freed at once. */
function weightKey(shape: number[]): tf.Variable {
  const v = tf.tidy(() => tf.variable(tf.zeros(shape), false));
  v.dispose();
  return v;
}

/** The quantization a checkpoint's config.json records (transformers' BitsAndBytesConfig), if any. */
export function storedQuantization(hf: Record<string, unknown>, file: string): QuantizationConfig | undefined {
  const qc = hf.quantization_config as Record<string, unknown> | undefined;
  if (!qc) return undefined;
  if (qc.quant_method !== 'bitsandbytes')
    throw new ConfigError(`quant_method ${JSON.stringify(qc.quant_method)} is not supported`, {
      file,
      field: 'quantization_config.quant_method',
      hint: 'Anneal reads bitsandbytes checkpoints (nf4, fp4, int8)',
    });
  const computeDtype = qc.bnb_4bit_compute_dtype === 'bfloat16' ? 'bfloat16' : 'float32';
  if (qc.load_in_8bit) return { method: 'int8', blockSize: 64, doubleQuant: false, computeDtype };
  const method = qc.bnb_4bit_quant_type;
  if (!qc.load_in_4bit || (method !== 'nf4' && method !== 'fp4'))
    throw new ConfigError(`bitsandbytes config with neither load_in_4bit (nf4/fp4) nor load_in_8bit`, {
      file,
      field: 'quantization_config',
    });
  return { method, blockSize: 64, doubleQuant: Boolean(qc.bnb_4bit_use_double_quant), computeDtype };
}

/**
 * Loads a model with its projections quantized: from a float32 checkpoint, quantized one
 * weight at a time as it is read (the float32 projections are never all in memory); or from
 * a checkpoint saved quantized (saveQuantized, or transformers + bitsandbytes), whose stored
 * quantization is used as is (`c`, if given, must agree with its method).
 */
export async function loadQuantized(
  dirOrRepoId: string,
  c?: QuantizationConfig,
  hub: HubOptions = {},
): Promise<{ model: PretrainedModel; report: QuantizationReport; config: QuantizationConfig }> {
  const dir = await localModelDir(dirOrRepoId, hub);
  const { hf, file } = readHfConfig(dir);
  const stored = storedQuantization(hf, file);
  if (stored && c && stored.method !== c.method)
    throw new ConfigError(`the checkpoint is quantized as ${stored.method}, not ${c.method}`, {
      file,
      field: 'quantization.method',
      hint: `set quantization.method: ${stored.method}, or start from the float32 checkpoint`,
    });
  const config = stored ?? c;
  if (!config)
    throw new ConfigError('the checkpoint is not quantized and no quantization was asked for', {
      file,
      field: 'quantization',
      hint: 'pass a quantization config (method nf4, fp4 or int8)',
    });
  const q = new Quantizer(config);
  const modelType = String(hf.model_type);
  const weights: WeightLoader = ({ name, key, shape, tensors, file: wfile }) => {
    if (!isProjection(name, shape)) return undefined;
    const conv = isConv1d(modelType, name);
    const [rows, cols] = conv ? [shape[1], shape[0]] : [shape[0], shape[1]]; // Linear layout
    const t = tensors.get(key)!;
    if (stored) {
      // A checkpoint may keep some projections in float32 (bitsandbytes' skip list): read those as usual.
      if (t.dtype !== 'U8' && t.dtype !== 'I8') return undefined;
      const param = weightKey(shape);
      if (t.dtype === 'I8') {
        const r = readInt8(key, [rows, cols], tensors, wfile);
        q.install(param, { kind: 'int8', q: r.q, rows, cols, config, transposed: conv });
        return { param, used: r.used };
      }
      const r = readFourBit(key, [rows, cols], tensors, wfile);
      q.install(param, {
        kind: '4bit',
        q: r.q,
        rows,
        cols,
        config: { ...config, blockSize: r.q.blockSize, doubleQuant: !(r.q.absmax instanceof Float32Array) },
        transposed: conv,
      });
      return { param, used: r.used };
    }
    if (String(t.shape) !== String(shape))
      throw new CheckpointError(`shape [${t.shape}] does not match [${shape}] implied by config.json`, {
        file: wfile,
        field: key,
      });
    const data = float32Data(t);
    const param = weightKey(shape);
    q.fromFloat(param, conv ? transposed(data, shape[0], shape[1]) : data, rows, cols, conv);
    return { param, used: [] };
  };
  const model = loadPretrainedSync(dir, { weights });
  return { model, report: finish(model, q), config };
}

/**
 * Writes a quantized model as a Hugging Face folder in bitsandbytes' layout (config.json with
 * quantization_config, model.safetensors), atomically (`also` adds files, e.g. the tokenizer's,
 * to the folder before it appears); returns the safetensors file's bytes.
 */
export async function saveQuantized(
  model: PretrainedModel,
  dir: string,
  also?: (tmpDir: string) => void,
): Promise<number> {
  const config = [...model.params.values()].map((p) => STORED.get(p)?.config).find((c) => c);
  if (!config)
    throw new ConfigError('the model is not quantized', { hint: 'quantize it first (quantize or loadQuantized)' });
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, p] of model.params) {
    const stored = STORED.get(p);
    const s = stored && (await onHost(stored));
    if (!s) tensors.set(name, { dtype: 'F32', shape: p.shape, data: (await p.data()) as Float32Array });
    else
      for (const [k, t] of s.kind === '4bit' ? fourBitTensors(name, s.q, [s.rows, s.cols]) : int8Tensors(name, s.q))
        tensors.set(k, t);
  }
  const bytes = serializeSafetensors(tensors, { format: 'pt' });
  await writeDirAtomic(dir, (tmp) => {
    writeFileDurable(
      join(tmp, 'config.json'),
      stringifyJson(
        {
          ...model.hfConfig(),
          quantization_config: bnbQuantizationConfig(config.method, config.doubleQuant, config.computeDtype),
        },
        [...TRANSFORMERS_FLOAT_KEYS, ...BNB_FLOAT_KEYS],
      ),
    );
    writeFileDurable(join(tmp, 'model.safetensors'), bytes);
    also?.(tmp);
  });
  return bytes.length;
}
