// What every architecture shares: parameters keyed by Hugging Face names, train/eval
// mode, and the checkpoint format (config.json + model.safetensors, or shards listed in
// model.safetensors.index.json; f32/f16/bf16 read as f32; missing and unexpected tensors
// reported together).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  CheckpointError,
  ConfigError,
  ShapeError,
  float32Data,
  hasAnnealKernel,
  readSafetensors,
  requireFloatTensor,
  runAnnealKernel,
  serializeSafetensors,
  stringifyJson,
  writeFileDurable,
  type SafeTensor,
  type TensorToWrite,
} from '@anneal/core';
import { blockVariables, buildLayers, type Layer, type LayerFactory, type LayerSpec, type Params } from './layers.js';
import type { ForwardArgs, ModelOutput } from './types.js';

export type { Params } from './layers.js';

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
  'rope_local_base_freq',
  'partial_rotary_factor',
  'final_logit_softcapping',
  'attn_logit_softcapping',
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
  /** Activation checkpointing in training passes (transformers' gradient_checkpointing_enable()). */
  gradientCheckpointing = false;
  /**
   * The model's projections and embedding tables by module name, as its architecture
   * declares them; an adapter or a quantized weight replaces its layer here (replaceLayer).
   */
  readonly layers: Map<string, Layer>;

  /**
   * `params`: every float32 variable by its Hugging Face name; `specs`: the architecture's
   * layers; `prebuilt`: layers made another way (quantized on load, or a trunk's layers).
   */
  constructor(
    readonly params: Params,
    specs: LayerSpec[],
    prebuilt?: Map<string, LayerFactory>,
  ) {
    this.layers = buildLayers(specs, params, prebuilt);
  }

  /**
   * Whether forward takes ForwardArgs.staticCache (generation's static KV cache), and whether
   * its decode step is one program at every token (so it may be recorded and replayed).
   */
  get staticCache(): { replayable: boolean } | undefined {
    return undefined;
  }

  /** Module names of the transformer blocks, in order (e.g. transformer.h.0, transformer.h.1, ...). */
  abstract get blockNames(): string[];

  /**
   * Each transformer block with every variable its forward reads: its norms and base
   * weights, and whatever wraps its layers (LoRA adapters), by full name.
   */
  blocks(): Array<{ name: string; variables: Map<string, tf.Variable> }> {
    return this.blockNames.map((name) => ({ name, variables: blockVariables(this, name) }));
  }

  /** Puts `layer` in place of the layer of the same name (wrapping it, or restoring the one it wrapped); returns the old one. */
  replaceLayer(layer: Layer): Layer {
    const old = this.layers.get(layer.name);
    if (!old) throw new Error(`the model has no layer ${layer.name}`);
    this.layers.set(layer.name, layer);
    return old;
  }

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

  /** The base model's parameters, those held outside params (quantized weights) included. */
  get numParameters(): number {
    let n = 0;
    for (const p of this.params.values()) n += p.size;
    for (const l of this.withoutFloatWeight()) n += l.kind === 'projection' ? l.inDim * l.outDim : l.rows * l.dim;
    return n;
  }

  /** Layers whose weight is not a float32 parameter (a quantized weight): savePretrained cannot write them. */
  private withoutFloatWeight(): Layer[] {
    return [...this.layers.values()].filter((l) => !this.params.has(`${l.name}.weight`));
  }

  /** Weights as safetensors entries with Hugging Face names. */
  async stateDict(): Promise<Map<string, TensorToWrite>> {
    const held = this.withoutFloatWeight();
    if (held.length)
      throw new ConfigError(
        `a quantized model has no float32 weights to save: ${held.length} layers hold theirs in another form (${held[0].name} is ${held[0].type})`,
        {
          field: 'quantization',
          hint: 'save a quantized model with saveQuantized, or save the LoRA adapter (checkpoints of a QLoRA run do), or dequantize it first',
        },
      );
    const out = new Map<string, TensorToWrite>();
    for (const [name, p] of this.params)
      out.set(name, { dtype: 'F32', shape: p.shape, data: (await p.data()) as Float32Array });
    return out;
  }

  /** Writes config.json, generation_config.json and model.safetensors (fsynced), creating `dir` as save_pretrained does. */
  async savePretrained(dir: string): Promise<void> {
    const state = await this.stateDict(); // first: a model that cannot be saved leaves no folder behind
    this.saveConfigs(dir);
    writeFileDurable(join(dir, 'model.safetensors'), serializeSafetensors(state, { format: 'pt' }));
  }

  /** Writes config.json and generation_config.json as save_pretrained does (creating `dir`), without the weights. */
  saveConfigs(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeFileDurable(join(dir, 'config.json'), stringifyJson(this.hfConfig(), TRANSFORMERS_FLOAT_KEYS));
    writeFileDurable(
      join(dir, 'generation_config.json'),
      stringifyJson(this.generationConfig(), TRANSFORMERS_FLOAT_KEYS),
    );
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
    for (const l of this.layers.values()) l.dispose?.();
    for (const p of this.params.values()) p.dispose();
  }
}

/** A new head copies the encoder's float32 weights; a quantized encoder has none to copy. */
export function requireFloatTrunk(m: PretrainedModel): void {
  const held = [...m.layers.values()].find((l) => !m.params.has(`${l.name}.weight`));
  if (held)
    throw new ConfigError(`cannot put a new head on a quantized ${m.modelType} (${held.name} is ${held.type})`, {
      field: 'quantization',
      hint: 'start from the float32 checkpoint: the head is put on first, then the model is quantized',
    });
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
  if (t.source && (t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16') && hasAnnealKernel('AnnealReadFile')) {
    const { file: path, offset } = t.source;
    return runAnnealKernel('AnnealReadFile', {}, { path, offset, dtype: t.dtype, shape: t.shape })[0];
  }
  return tf.tensor(float32Data(t), t.shape, 'float32');
}

/**
 * Builds one layer from the checkpoint's tensors in its own way (a quantized projection:
 * @anneal/quantization), or returns undefined to load its weight as float32. It is asked
 * for the weight of each declared layer: `spec` is the layer, `key` the checkpoint's name
 * for its weight of `shape`; `used` lists any further tensors it read (so they are not
 * reported as unexpected). It validates what it reads.
 */
export type WeightLoader = (w: {
  spec: LayerSpec;
  key: string;
  shape: number[];
  tensors: Map<string, SafeTensor>;
  file: string;
}) => { layer: LayerFactory; used: string[] } | undefined;

/** How fromPretrained builds parameters: `weights` takes over those it chooses. */
export interface LoadOptions {
  weights?: WeightLoader;
}

/** A checkpoint read for a model: float32 parameters, and the layers a WeightLoader built instead. */
export interface LoadedWeights {
  params: Params;
  prebuilt: Map<string, LayerFactory>;
}

/**
 * Parameters for the expected names and shapes from checkpoint tensors, for a model with
 * the layers `specs`. `alias` maps an expected name to other spellings found in checkpoints;
 * `ignore` matches tensors a checkpoint may carry that the model does not use (buffers,
 * tied copies).
 */
export function weightsFromTensors(
  expected: Array<[string, number[]]>,
  specs: LayerSpec[],
  tensors: Map<string, SafeTensor>,
  file: string,
  alias: (name: string) => string[] = () => [],
  ignore: RegExp[] = [],
  loader?: WeightLoader,
): LoadedWeights {
  const layerOfWeight = new Map(specs.map((s) => [`${s.name}.weight`, s]));
  const prebuilt = new Map<string, LayerFactory>();
  const used = new Set<string>();
  const missing: string[] = [];
  const found = new Map<string, SafeTensor>();
  for (const [name, shape] of expected) {
    const key = [name, ...alias(name)].find((k) => tensors.has(k));
    if (!key) {
      missing.push(name);
      continue;
    }
    const spec = layerOfWeight.get(name);
    const own = spec && loader?.({ spec, key, shape, tensors, file });
    if (own) {
      prebuilt.set(spec.name, own.layer);
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
    const t = found.get(name);
    if (t)
      params.set(
        name,
        tf.tidy(() => tf.variable(floatTensor(t), true)),
      );
  }
  return { params, prebuilt };
}
