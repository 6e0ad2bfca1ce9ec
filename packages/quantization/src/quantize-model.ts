// Quantizing a model's projections for QLoRA: each hidden projection (not embeddings, not
// the heads, as bitsandbytes skips lm_head) is replaced in model.layers by a QuantLinear
// (quant-linear.ts) that stores its weight in 4 or 8 bits, and the float32 weight leaves the
// model's params. `quantize` does this to a model in memory; `loadQuantized` while loading,
// so the float32 projections are never built (or from a checkpoint that is quantized already).
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
  Linear,
  TRANSFORMERS_FLOAT_KEYS,
  layerChain,
  loadPretrainedSync,
  localModelDir,
  readHfConfig,
  type HubOptions,
  type Layer,
  type LayerSpec,
  type PretrainedModel,
  type Layout,
  type ProjectionRole,
  type WeightLoader,
} from '@anneal/modeling';
import { z } from 'zod';
import { quantize4bit } from './blockwise.js';
import {
  BNB_FLOAT_KEYS,
  bnbQuantizationConfig,
  fourBitTensors,
  int8Tensors,
  readFourBit,
  readInt8,
} from './bnb-format.js';
import { quantizeInt8Rows } from './int8.js';
import { QuantLinear, ScratchBuffers, type StoredWeight } from './quant-linear.js';

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

/** Quantization stores the hidden projections: embeddings, heads and poolers stay float32. */
const quantizable = (spec: LayerSpec | Layer) => spec.kind === 'projection' && spec.role === 'hidden';

/** Values of a [rows, cols] weight in [cols, rows] order. */
function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** Makes QuantLinear layers and counts them. */
class Quantizer {
  readonly report: QuantizationReport = { layers: 0, parameters: 0, storedBytes: 0, float32Bytes: 0 };
  private readonly scratch = new ScratchBuffers();

  constructor(readonly config: QuantizationConfig) {}

  /** Quantizes `data` (Linear layout [rows, cols] = [out, in]). */
  fromFloat(data: Float32Array, rows: number, cols: number): StoredWeight {
    const c = this.config;
    return c.method === 'int8'
      ? { kind: 'int8', q: quantizeInt8Rows(data, rows, cols), rows, cols, config: c }
      : {
          kind: '4bit',
          q: quantize4bit(data, { type: c.method, blockSize: c.blockSize, doubleQuant: c.doubleQuant }),
          rows,
          cols,
          config: c,
        };
  }

  layer(
    spec: { name: string; layout: Layout; role: ProjectionRole },
    s: StoredWeight,
    bias?: tf.Variable,
  ): QuantLinear {
    const layer = new QuantLinear(spec.name, s, bias, spec.layout, spec.role, this.scratch);
    this.report.layers++;
    this.report.parameters += s.rows * s.cols;
    this.report.float32Bytes += s.rows * s.cols * 4;
    this.report.storedBytes += layer.storedBytes;
    return layer;
  }
}

function finish(model: PretrainedModel, q: Quantizer): QuantizationReport {
  if (!q.report.layers)
    throw new ConfigError(`${model.modelType} has no linear layers to quantize`, { field: 'quantization' });
  return q.report;
}

/**
 * Quantizes the model's projection weights in place (their f32 tensors are freed); the
 * model then trains only through adapters (LoRA) and saves only with saveQuantized.
 */
export function quantize(model: PretrainedModel, c: QuantizationConfig): QuantizationReport {
  const q = new Quantizer(c);
  for (const layer of [...model.layers.values()]) {
    if (!quantizable(layer) || !(layer instanceof Linear)) continue;
    const [a, b] = layer.weight.shape as [number, number];
    const data = layer.weight.dataSync() as Float32Array;
    const stored = layer.layout === 'conv1d' ? q.fromFloat(transposed(data, a, b), b, a) : q.fromFloat(data, a, b);
    model.replaceLayer(q.layer(layer, stored, layer.bias));
    model.params.delete(`${layer.name}.weight`);
    layer.weight.dispose(); // its float32 data is gone; the QuantLinear holds the weight now
  }
  return finish(model, q);
}

/**
 * Undoes quantize in place, as transformers' model.dequantize(): each quantized projection
 * becomes a float32 Linear again, holding the dequantized values (the quantization error
 * stays). The model can then be saved with savePretrained, merged with a QLoRA adapter, or
 * trained in full. Returns the number of weights restored.
 */
export function dequantize(model: PretrainedModel): number {
  let n = 0;
  for (const layer of [...model.layers.values()]) {
    const chain = layerChain(layer);
    const quant = chain.find((l): l is QuantLinear => l instanceof QuantLinear);
    if (!quant) continue;
    if (quant !== layer)
      throw new ConfigError(`${layer.name} is ${layer.type}: its quantized base is wrapped`, {
        hint: 'dequantize the base model before adding adapters to it',
      });
    const weight = tf.tidy(() => tf.variable(quant.dequantized(), true));
    model.params.set(`${quant.name}.weight`, weight);
    model.replaceLayer(new Linear(quant.name, weight, quant.bias, quant.layout, quant.role));
    quant.dispose();
    n++;
  }
  return n;
}

/** The quantized projections of a model (by quantize or loadQuantized; also of a model built on them, like a classifier on a quantized trunk), adapters looked through. */
export function quantizedLayers(model: { layers: Map<string, Layer> }): QuantLinear[] {
  return [...model.layers.values()].flatMap((l) =>
    layerChain(l).filter((x): x is QuantLinear => x instanceof QuantLinear),
  );
}

/** Are this model's projections stored quantized? */
export function isQuantized(model: PretrainedModel): boolean {
  return quantizedLayers(model).length > 0;
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
  const storedConfig = storedQuantization(hf, file);
  if (storedConfig && c && storedConfig.method !== c.method)
    throw new ConfigError(`the checkpoint is quantized as ${storedConfig.method}, not ${c.method}`, {
      file,
      field: 'quantization.method',
      hint: `set quantization.method: ${storedConfig.method}, or start from the float32 checkpoint`,
    });
  const config = storedConfig ?? c;
  if (!config)
    throw new ConfigError('the checkpoint is not quantized and no quantization was asked for', {
      file,
      field: 'quantization',
      hint: 'pass a quantization config (method nf4, fp4 or int8)',
    });
  const q = new Quantizer(config);
  const weights: WeightLoader = ({ spec, key, shape, tensors, file: wfile }) => {
    if (!quantizable(spec) || spec.kind !== 'projection') return undefined;
    const conv = spec.layout === 'conv1d';
    const [rows, cols] = conv ? [shape[1], shape[0]] : [shape[0], shape[1]]; // Linear layout
    const t = tensors.get(key)!;
    let stored: StoredWeight;
    let used: string[] = [];
    if (storedConfig) {
      // A checkpoint may keep some projections in float32 (bitsandbytes' skip list): read those as usual.
      if (t.dtype !== 'U8' && t.dtype !== 'I8') return undefined;
      if (t.dtype === 'I8') {
        const r = readInt8(key, [rows, cols], tensors, wfile);
        stored = { kind: 'int8', q: r.q, rows, cols, config };
        used = r.used;
      } else {
        const r = readFourBit(key, [rows, cols], tensors, wfile);
        const own = { ...config, blockSize: r.q.blockSize, doubleQuant: !(r.q.absmax instanceof Float32Array) };
        stored = { kind: '4bit', q: r.q, rows, cols, config: own };
        used = r.used;
      }
    } else {
      if (String(t.shape) !== String(shape))
        throw new CheckpointError(`shape [${t.shape}] does not match [${shape}] implied by config.json`, {
          file: wfile,
          field: key,
        });
      const data = float32Data(t);
      stored = q.fromFloat(conv ? transposed(data, shape[0], shape[1]) : data, rows, cols);
    }
    return { layer: (_, bias) => q.layer(spec, stored, bias), used };
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
  const quantized = quantizedLayers(model);
  const config = quantized[0]?.config;
  if (!config)
    throw new ConfigError('the model is not quantized', { hint: 'quantize it first (quantize or loadQuantized)' });
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, p] of model.params)
    tensors.set(name, { dtype: 'F32', shape: p.shape, data: (await p.data()) as Float32Array });
  for (const layer of quantized) {
    const s = await layer.onHost();
    const key = `${layer.name}.weight`;
    for (const [k, t] of s.kind === '4bit' ? fourBitTensors(key, s.q, [s.rows, s.cols]) : int8Tensors(key, s.q))
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
