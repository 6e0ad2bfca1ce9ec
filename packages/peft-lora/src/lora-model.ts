// A model with LoRA adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language
// Models"), as PEFT's LoraModel: each target projection W gets y = W x + s B A dropout(x),
// A [r, in], B [out, r], s = alpha / r. The base model's code is untouched: the adapters are
// registered on its weights and @anneal/modeling's linear() applies them. Only the adapters
// (and modulesToSave, and biases per `bias`) train; the base weights are frozen.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  ConfigError,
  deriveSeed,
  serializeSafetensors,
  stringifyJson,
  writeFileDurable,
  type TensorToWrite,
} from '@anneal/core';
import {
  addProduct,
  setEmbeddingAdapter,
  setLinearAdapter,
  type ForwardArgs,
  type ModelOutput,
  type PretrainedModel,
} from '@anneal/modeling';
import { PEFT_FLOAT_KEYS, loraScaling, peftTaskType, toPeftConfig, type LoraConfig } from './config.js';
import { findTargets, moduleMatches, type LoraTarget } from './targets.js';

/** PEFT's state-dict prefix for everything in an adapter file. */
export const PEFT_PREFIX = 'base_model.model.';

interface Adapter extends LoraTarget {
  a: tf.Variable; // [r, in]
  b: tf.Variable; // [out, r]
  weight: tf.Variable;
  used: boolean;
}

export class LoraModel {
  /** Trainable parameters under PEFT's key names (lora_A/lora_B, then trained biases and modulesToSave). */
  readonly params = new Map<string, tf.Variable>();
  readonly scaling: number;
  private readonly adapters: Adapter[] = [];
  private enabled = true;
  private merged = false;
  private mode = { training: false, seed: 0 };
  private checked = false;

  /** Adds adapters to `base` (which it then owns); A is drawn from `seed`. */
  constructor(
    readonly base: PretrainedModel,
    readonly config: LoraConfig,
    seed = 0,
    file?: string,
  ) {
    this.scaling = loraScaling(config);
    const targets = findTargets(base, config, file);
    targets.forEach((t, i) => {
      const weight = base.params.get(`${t.module}.weight`)!;
      const init = config.initLoraWeights;
      if (t.layout === 'embedding') return this.addEmbedding(t, weight, i, seed);
      const a = tf.tidy(() =>
        init === 'gaussian'
          ? tf.randomNormal([config.r, t.inDim], 0, 1 / config.r, 'float32', deriveSeed(seed, i))
          : tf.randomUniform(
              [config.r, t.inDim],
              -1 / Math.sqrt(t.inDim),
              1 / Math.sqrt(t.inDim),
              'float32',
              deriveSeed(seed, i),
            ),
      ); // kaiming_uniform_(a=sqrt(5)): bound 1/sqrt(in)
      const b = tf.tidy(() =>
        init === false
          ? tf.randomNormal([t.outDim, config.r], 0, 0.02, 'float32', deriveSeed(seed, i, 1))
          : tf.zeros([t.outDim, config.r]),
      );
      const ad: Adapter = { ...t, a: tf.variable(a, true), b: tf.variable(b, true), weight, used: false };
      a.dispose();
      b.dispose();
      this.adapters.push(ad);
      this.params.set(`${PEFT_PREFIX}${t.module}.lora_A.weight`, ad.a);
      this.params.set(`${PEFT_PREFIX}${t.module}.lora_B.weight`, ad.b);
      setLinearAdapter(weight, (x, baseFn) => this.apply(ad, i, x, baseFn));
    });
    // Biases and whole modules that train next to the adapters (the same tensors the base uses).
    let saved = 0;
    for (const [name, p] of base.params) {
      const module = name.replace(/\.(weight|bias)$/, '');
      const biasTrains =
        name.endsWith('.bias') &&
        (config.bias === 'all' ||
          (config.bias === 'lora_only' && targets.some((t) => t.module === module && t.layout !== 'embedding')));
      const toSave = config.modulesToSave.length > 0 && moduleMatches(module, config.modulesToSave);
      if (toSave) saved++;
      if (biasTrains || toSave) this.params.set(`${PEFT_PREFIX}${name}`, p);
    }
    if (config.modulesToSave.length && !saved) {
      throw new ConfigError(
        `modulesToSave ${JSON.stringify(config.modulesToSave)} matches none of the model's modules`,
        { file, field: 'peft.modulesToSave' },
      );
    }
  }

  /**
   * An embedding table [rows, dim] gets PEFT's embedding adapter: A [r, rows] zero, B [dim, r]
   * N(0, 1) (the other way round from Linear), rows += s B A[:, ids], no dropout; saved as
   * lora_embedding_A / lora_embedding_B (no ".weight").
   */
  private addEmbedding(t: LoraTarget, weight: tf.Variable, i: number, seed: number): void {
    const r = this.config.r;
    const random = this.config.initLoraWeights === false;
    const a = tf.tidy(() =>
      random ? tf.randomNormal([r, t.inDim], 0, 1, 'float32', deriveSeed(seed, i)) : tf.zeros([r, t.inDim]),
    );
    const b = tf.tidy(() => tf.randomNormal([t.outDim, r], 0, 1, 'float32', deriveSeed(seed, i, 1)));
    const ad: Adapter = { ...t, a: tf.variable(a, true), b: tf.variable(b, true), weight, used: false };
    tf.dispose([a, b]);
    this.adapters.push(ad);
    this.params.set(`${PEFT_PREFIX}${t.module}.lora_embedding_A`, ad.a);
    this.params.set(`${PEFT_PREFIX}${t.module}.lora_embedding_B`, ad.b);
    setEmbeddingAdapter(weight, (ids, baseFn) => {
      ad.used = true;
      const rows = baseFn(ids); // [..., dim]
      if (!this.enabled || this.merged) return rows;
      const after = tf.gather(tf.transpose(ad.a), ids); // [..., r]
      const delta = tf.matMul(tf.reshape(after, [-1, r]), ad.b, false, true); // [N, dim]
      return tf.add(rows, tf.reshape(tf.mul(delta, this.scaling), rows.shape));
    });
  }

  private apply(ad: Adapter, i: number, x: tf.Tensor, baseFn: (x: tf.Tensor) => tf.Tensor): tf.Tensor {
    ad.used = true;
    const y = baseFn(x);
    if (!this.enabled || this.merged) return y;
    const drop =
      this.mode.training && this.config.loraDropout > 0
        ? tf.dropout(x, this.config.loraDropout, undefined, deriveSeed(this.mode.seed, 7919, i))
        : x;
    const flat = tf.reshape(drop, [-1, ad.inDim]); // [N, in]
    // s scales the [N, r] intermediate, not the [N, out] result: one wide tensor fewer kept for backward
    const u = tf.mul(tf.matMul(flat, ad.a, false, true), this.scaling) as tf.Tensor2D; // [N, r]
    const out = y.shape[y.rank - 1]!;
    return tf.reshape(addProduct(tf.reshape(y, [-1, out]) as tf.Tensor2D, u, ad.b as tf.Tensor2D), y.shape); // y + u Bᵀ, the sum inside the product
  }

  /** The base model's forward with the adapters active (unless disabled or merged). */
  forward(a: ForwardArgs): ModelOutput {
    this.mode = { training: a.training ?? false, seed: a.dropoutSeed ?? 0 };
    const out = (this.base as unknown as { forward(a: ForwardArgs): ModelOutput }).forward(a);
    if (!this.checked && this.enabled && !this.merged) {
      const unused = this.adapters.filter((ad) => !ad.used).map((ad) => ad.module);
      if (unused.length)
        throw new ConfigError(
          `LoRA targets ${unused.join(', ')} are not layers this model applies with linear() or embedding()`,
          { field: 'peft.targetModules', hint: 'target attention/MLP projections; train heads with modulesToSave' },
        );
      this.checked = true;
    }
    return out;
  }

  /** ΔW = s B A laid out like the base weight ([out, in]; [in, out] for Conv1D; [rows, dim] for an embedding). */
  private delta(ad: Adapter): tf.Tensor {
    const d = tf.mul(tf.matMul(ad.b, ad.a), this.scaling); // [out, in]
    return ad.layout === 'linear' ? d : tf.transpose(d);
  }

  /** Adds each ΔW into its base weight (faster inference); unmerge() takes it out again. */
  merge(): void {
    if (this.merged) return;
    // A word-embedding table without a separate lm_head is also the output projection
    // (tied): merging into it would change the head as well (PEFT warns of the same).
    const tied = this.adapters.find(
      (ad) =>
        ad.layout === 'embedding' &&
        /(^|\.)(wte|embed_tokens|word_embeddings)$/.test(ad.module) &&
        !this.base.params.has('lm_head.weight'),
    );
    if (tied)
      throw new ConfigError(
        `cannot merge the adapter on ${tied.module}: the table is tied to the output head, so merging would change the head too`,
        { field: 'peft.targetModules', hint: 'keep this adapter unmerged, or adapt an untied table' },
      );
    for (const ad of this.adapters) tf.tidy(() => ad.weight.assign(tf.add(ad.weight, this.delta(ad))));
    this.merged = true;
  }

  unmerge(): void {
    if (!this.merged) return;
    for (const ad of this.adapters) tf.tidy(() => ad.weight.assign(tf.sub(ad.weight, this.delta(ad))));
    this.merged = false;
  }

  /** The base model's longest sequence (for generation). */
  get maxPositions(): number {
    return (this.base as unknown as { maxPositions: number }).maxPositions;
  }

  get isMerged(): boolean {
    return this.merged;
  }

  /** Runs fn on the base model alone (e.g. the reference model of DPO/PPO), adapters off. */
  withAdapterDisabled<T>(fn: () => T): T {
    if (this.merged) throw new ConfigError('the adapters are merged into the weights; unmerge() before disabling them');
    this.enabled = false;
    try {
      return fn();
    } finally {
      this.enabled = true;
    }
  }

  /** Merges, removes the adapters and returns the plain base model (this LoraModel is done). */
  mergeAndUnload(): PretrainedModel {
    this.merge();
    this.release();
    return this.base;
  }

  private release(): void {
    for (const ad of this.adapters) {
      setLinearAdapter(ad.weight, undefined);
      setEmbeddingAdapter(ad.weight, undefined);
      ad.a.dispose();
      ad.b.dispose();
    }
    this.adapters.length = 0;
    this.params.clear();
  }

  /**
   * The base model as adapter_config.json names it (base_model_name_or_path): the folder or
   * Hub id the run loaded, so AutoPeftModelFor*.from_pretrained(adapterDir) finds it.
   */
  baseModelNameOrPath = '';

  /**
   * Writes PEFT's adapter files: adapter_config.json and adapter_model.safetensors (keys
   * base_model.model.<module>.lora_A.weight / lora_B.weight, trained biases, modulesToSave),
   * creating `dir` as PEFT's save_pretrained does. task_type comes from the base model's class.
   */
  async saveAdapter(dir: string, o: { baseModel?: string; taskType?: string | null } = {}): Promise<void> {
    const architecture = (this.base.hfConfig().architectures as string[] | undefined)?.[0];
    const cfg = toPeftConfig(this.config, {
      baseModel: o.baseModel ?? this.baseModelNameOrPath,
      taskType: o.taskType !== undefined ? o.taskType : peftTaskType(architecture),
      fanInFanOut: this.adapters.some((ad) => ad.layout === 'conv1d'),
    });
    const tensors = new Map<string, TensorToWrite>();
    for (const [name, p] of this.params)
      tensors.set(name, { dtype: 'F32', shape: p.shape, data: (await p.data()) as Float32Array });
    mkdirSync(dir, { recursive: true });
    writeFileDurable(join(dir, 'adapter_config.json'), stringifyJson(cfg, PEFT_FLOAT_KEYS));
    writeFileDurable(join(dir, 'adapter_model.safetensors'), serializeSafetensors(tensors, { format: 'pt' }));
  }

  /** For the trainers' checkpoints: a LoRA run saves its adapter, not the base model. */
  savePretrained(dir: string): Promise<void> {
    return this.saveAdapter(dir);
  }

  get numTrainableParameters(): number {
    let n = 0;
    for (const p of this.params.values()) n += p.size;
    return n;
  }

  /** Frees the adapters and the base model. */
  dispose(): void {
    this.release();
    this.base.dispose();
  }
}
