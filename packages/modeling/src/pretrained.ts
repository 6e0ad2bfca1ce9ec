// What every architecture shares: parameters keyed by Hugging Face names, train/eval
// mode, and the checkpoint format (config.json + model.safetensors, or shards listed in
// model.safetensors.index.json; f32/f16/bf16 read as f32; missing and unexpected tensors
// reported together).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  CheckpointError,
  ShapeError,
  float32Data,
  readSafetensors,
  requireFloatTensor,
  serializeSafetensors,
  stringifyJson,
  writeFileDurable,
  type SafeTensor,
  type TensorToWrite,
} from '@anneal/core';
import type { ForwardArgs, ModelOutput } from './types.js';

export type Params = Map<string, tf.Variable>;

/**
 * config.json / generation_config.json fields that transformers types as float (GPT2Config,
 * LlamaConfig, BertConfig, DistilBertConfig, GenerationConfig in transformers 4.40,
 * src/transformers/models/<name>/configuration_<name>.py, generation/configuration_utils.py):
 * written 1.0 rather than 1, so they read back as Python floats.
 */
export const TRANSFORMERS_FLOAT_KEYS = [
  'resid_pdrop',
  'embd_pdrop',
  'attn_pdrop',
  'summary_first_dropout',
  'layer_norm_epsilon',
  'layer_norm_eps',
  'rms_norm_eps',
  'initializer_range',
  'rope_theta',
  'attention_dropout',
  'hidden_dropout_prob',
  'attention_probs_dropout_prob',
  'classifier_dropout',
  'dropout',
  'qa_dropout',
  'seq_classif_dropout',
  'temperature',
  'top_p',
  'repetition_penalty',
  'length_penalty',
];

export abstract class PretrainedModel {
  abstract readonly modelType: string;
  /** Dropout on (train()) or off (eval(), the default); ForwardArgs.training overrides it. */
  training = false;

  constructor(readonly params: Params) {}

  abstract forward(a: ForwardArgs): ModelOutput;
  /** config.json as transformers writes it. */
  abstract hfConfig(): Record<string, unknown>;
  /** Longest sequence the model accepts. */
  abstract get maxPositions(): number;
  /** generation_config.json fields. */
  protected generationConfig(): Record<string, unknown> {
    const c = this.hfConfig();
    return {
      bos_token_id: c.bos_token_id ?? undefined,
      eos_token_id: c.eos_token_id ?? undefined,
      transformers_version: '4.40.0',
    };
  }

  train(): this {
    this.training = true;
    return this;
  }

  eval(): this {
    this.training = false;
    return this;
  }

  /** Parameters keyed by their Hugging Face names. */
  parameters(): Record<string, tf.Variable> {
    return Object.fromEntries(this.params);
  }

  get numParameters(): number {
    let n = 0;
    for (const p of this.params.values()) n += p.size;
    return n;
  }

  /** Weights as safetensors entries with Hugging Face names. */
  async stateDict(): Promise<Map<string, TensorToWrite>> {
    const out = new Map<string, TensorToWrite>();
    for (const [name, p] of this.params)
      out.set(name, { dtype: 'F32', shape: p.shape, data: (await p.data()) as Float32Array });
    return out;
  }

  /** Writes config.json, generation_config.json and model.safetensors (fsynced), creating `dir` as save_pretrained does. */
  async savePretrained(dir: string): Promise<void> {
    mkdirSync(dir, { recursive: true });
    writeFileDurable(join(dir, 'config.json'), stringifyJson(this.hfConfig(), TRANSFORMERS_FLOAT_KEYS));
    writeFileDurable(
      join(dir, 'generation_config.json'),
      stringifyJson(this.generationConfig(), TRANSFORMERS_FLOAT_KEYS),
    );
    writeFileDurable(join(dir, 'model.safetensors'), serializeSafetensors(await this.stateDict(), { format: 'pt' }));
  }

  /** Overwrites the weights from a safetensors file of this model (e.g. a checkpoint). */
  loadWeights(file: string): void {
    const { tensors } = readSafetensors(file);
    for (const [name, p] of this.params) {
      const t = tensors.get(name);
      if (!t) throw new CheckpointError(`tensor ${name} is missing`, { file, field: name });
      if (t.shape.join(',') !== p.shape.join(','))
        throw new ShapeError(`shape [${t.shape}] does not match the model's [${p.shape}]`, { file, field: name });
      requireFloatTensor(t, p.shape, { file, name });
      tf.tidy(() => p.assign(tf.tensor(float32Data(t), p.shape, 'float32')));
    }
  }

  dispose(): void {
    for (const p of this.params.values()) p.dispose();
  }
}

/** config.json of a model folder. */
export function readHfConfig(dir: string): { hf: Record<string, unknown>; file: string } {
  const file = join(dir, 'config.json');
  if (!existsSync(file))
    throw new CheckpointError('file not found', {
      file,
      hint: 'expected a Hugging Face model folder with config.json and model.safetensors',
    });
  try {
    return { hf: JSON.parse(readFileSync(file, 'utf8')), file };
  } catch (e) {
    throw new CheckpointError(`not valid JSON: ${(e as Error).message}`, { file });
  }
}

/** All tensors of model.safetensors, or of the shards named by model.safetensors.index.json. */
export function readWeights(dir: string): { tensors: Map<string, SafeTensor>; file: string } {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return { tensors: readSafetensors(single).tensors, file: single };
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    let map: Record<string, string>;
    try {
      map = JSON.parse(readFileSync(index, 'utf8')).weight_map;
    } catch (e) {
      throw new CheckpointError(`not valid JSON: ${(e as Error).message}`, { file: index });
    }
    if (!map || typeof map !== 'object')
      throw new CheckpointError('no weight_map', { file: index, field: 'weight_map' });
    const tensors = new Map<string, SafeTensor>();
    for (const shard of new Set(Object.values(map))) {
      if (!/^[\w.-]+$/.test(shard))
        throw new CheckpointError(`shard name ${JSON.stringify(shard)} is not a plain file name`, { file: index });
      for (const [name, t] of readSafetensors(join(dir, shard)).tensors) tensors.set(name, t);
    }
    return { tensors, file: index };
  }
  const pickle = ['pytorch_model.bin', 'model.bin'].find((f) => existsSync(join(dir, f)));
  throw new CheckpointError(
    pickle
      ? `only ${pickle} (pickle) is here, and Anneal never loads pickle`
      : 'no model.safetensors or model.safetensors.index.json',
    {
      file: dir,
      hint: pickle
        ? 'convert it to safetensors in Python: model.save_pretrained(dir, safe_serialization=True)'
        : 'expected a Hugging Face model folder',
    },
  );
}

/**
 * A checkpoint tensor as float32. A backend that reads files itself (the torch backend's
 * AnnealReadFile kernel) takes F32/F16/BF16 bytes straight from the file into its memory:
 * no JavaScript copy, which V8 may keep long after the upload (a 150 MB embedding table
 * stayed in RSS through the first training step).
 */
function floatTensor(t: SafeTensor): tf.Tensor {
  if (
    t.source &&
    (t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16') &&
    tf.getKernel('AnnealReadFile', tf.getBackend())
  ) {
    return tf.engine().runKernel('AnnealReadFile', {}, {
      path: t.source.file,
      offset: t.source.offset,
      dtype: t.dtype,
      shape: t.shape,
    } as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  return tf.tensor(float32Data(t), t.shape, 'float32');
}

/**
 * Builds one parameter from the checkpoint's tensors in its own way (a quantized layer:
 * @anneal/quantization), or returns undefined to load it as float32. `key` is the
 * checkpoint's name for the parameter `name` of `shape`; `used` lists any further tensors
 * it read (so they are not reported as unexpected). It validates what it reads.
 */
export type WeightLoader = (w: {
  name: string;
  key: string;
  shape: number[];
  tensors: Map<string, SafeTensor>;
  file: string;
}) => { param: tf.Variable; used: string[] } | undefined;

/** How fromPretrained builds parameters: `weights` takes over those it chooses. */
export interface LoadOptions {
  weights?: WeightLoader;
}

/**
 * Parameters for the expected names and shapes from checkpoint tensors. `alias` maps an
 * expected name to other spellings found in checkpoints; `ignore` matches tensors a
 * checkpoint may carry that the model does not use (buffers, tied copies).
 */
export function paramsFromTensors(
  expected: Array<[string, number[]]>,
  tensors: Map<string, SafeTensor>,
  file: string,
  alias: (name: string) => string[] = () => [],
  ignore: RegExp[] = [],
  loader?: WeightLoader,
): Params {
  const used = new Set<string>();
  const missing: string[] = [];
  const found = new Map<string, SafeTensor>();
  const built = new Map<string, tf.Variable>();
  for (const [name, shape] of expected) {
    const key = [name, ...alias(name)].find((k) => tensors.has(k));
    if (!key) {
      missing.push(name);
      continue;
    }
    const own = loader?.({ name, key, shape, tensors, file });
    if (own) {
      built.set(name, own.param);
      for (const k of [key, ...own.used]) used.add(k);
      continue;
    }
    const t = tensors.get(key)!;
    if (t.shape.join(',') !== shape.join(','))
      throw new ShapeError(`shape [${t.shape}] does not match [${shape}] implied by config.json`, { file, field: key });
    requireFloatTensor(t, shape, { file, name: key });
    used.add(key);
    found.set(name, t);
  }
  const unexpected = [...tensors.keys()].filter((k) => !used.has(k) && !ignore.some((r) => r.test(k)));
  if (missing.length || unexpected.length) {
    const list = (xs: string[]) => xs.slice(0, 8).join(', ') + (xs.length > 8 ? `, … (${xs.length} in all)` : '');
    throw new CheckpointError(
      [
        missing.length && `missing tensors: ${list(missing)}`,
        unexpected.length && `unexpected tensors: ${list(unexpected)}`,
      ]
        .filter(Boolean)
        .join('; '),
      {
        file,
        hint: 'the checkpoint does not match config.json (another architecture or size?)',
      },
    );
  }
  const params: Params = new Map();
  for (const [name] of expected) {
    const own = built.get(name);
    const t = found.get(name);
    if (own) params.set(name, own);
    else if (t)
      params.set(
        name,
        tf.tidy(() => tf.variable(floatTensor(t), true)),
      );
  }
  return params;
}
