// A model with LoRA adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language
// Models"), as PEFT's LoraModel: each target layer of the base model is replaced in
// base.layers by a LoraLinear / LoraEmbedding that wraps it (lora-layer.ts), so the model's
// code is untouched and base.layers shows which layers are adapted. Only the adapters (and
// modulesToSave, and biases per `bias`) train; the base weights are frozen.
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
import type { CausalLm, ForwardArgs, LmHead, ModelOutput, PretrainedModel } from '@anneal/modeling';
import { PEFT_FLOAT_KEYS, loraScaling, peftTaskType, toPeftConfig, type LoraConfig } from './config.js';
import { LoraEmbedding, LoraLinear, type LoraLayer, type LoraState } from './lora-layer.js';
import { findTargets, moduleMatches, type LoraTarget } from './targets.js';

/** PEFT's state-dict prefix for everything in an adapter file. */
export const PEFT_PREFIX = 'base_model.model.';

export class LoraModel {
  /** Trainable parameters under PEFT's key names (lora_A/lora_B, then trained biases and modulesToSave). */
  readonly params = new Map<string, tf.Variable>();
  readonly scaling: number;
  /** The adapter layers, in the order of the model's layers; each is also in base.layers in place of its base layer. */
  readonly adapters: LoraLayer[] = [];
  private readonly state: LoraState = { enabled: true, merged: false, training: false, seed: 0 };
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
      const layer = t.layer.kind === 'embedding' ? this.embeddingAdapter(t, i, seed) : this.linearAdapter(t, i, seed);
      this.adapters.push(layer);
      for (const [name, v] of layer.adapterVariables()) this.params.set(`${PEFT_PREFIX}${name}`, v);
      base.replaceLayer(layer);
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
    // The base is frozen, as PEFT sets requires_grad=False: the model's variables say which train.
    const training = new Set(this.params.values());
    for (const p of base.params.values()) if (!training.has(p)) p.trainable = false;
  }

  /** PEFT's Linear init: A kaiming-uniform (bound 1/sqrt(in)) or gaussian N(0, 1/r), B zero (N(0, 0.02) when init is off). */
  private linearAdapter(t: LoraTarget, i: number, seed: number): LoraLinear {
    if (t.layer.kind !== 'projection') throw new Error('unreachable');
    const { r, initLoraWeights: init } = this.config;
    const a = tf.tidy(() =>
      init === 'gaussian'
        ? tf.randomNormal([r, t.inDim], 0, 1 / r, 'float32', deriveSeed(seed, i))
        : tf.randomUniform(
            [r, t.inDim],
            -1 / Math.sqrt(t.inDim),
            1 / Math.sqrt(t.inDim),
            'float32',
            deriveSeed(seed, i),
          ),
    ); // kaiming_uniform_(a=sqrt(5)): bound 1/sqrt(in)
    const b = tf.tidy(() =>
      init === false
        ? tf.randomNormal([t.outDim, r], 0, 0.02, 'float32', deriveSeed(seed, i, 1))
        : tf.zeros([t.outDim, r]),
    );
    const layer = new LoraLinear(
      t.layer,
      tf.variable(a, true),
      tf.variable(b, true),
      this.scaling,
      this.config.loraDropout,
      i,
      this.state,
    );
    tf.dispose([a, b]);
    return layer;
  }

  /**
   * PEFT's embedding adapter: A [r, rows] zero, B [dim, r] N(0, 1) (the other way round from
   * Linear), no dropout; saved as lora_embedding_A / lora_embedding_B (no ".weight").
   */
  private embeddingAdapter(t: LoraTarget, i: number, seed: number): LoraEmbedding {
    if (t.layer.kind !== 'embedding') throw new Error('unreachable');
    const r = this.config.r;
    const random = this.config.initLoraWeights === false;
    const a = tf.tidy(() =>
      random ? tf.randomNormal([r, t.inDim], 0, 1, 'float32', deriveSeed(seed, i)) : tf.zeros([r, t.inDim]),
    );
    const b = tf.tidy(() => tf.randomNormal([t.outDim, r], 0, 1, 'float32', deriveSeed(seed, i, 1)));
    const layer = new LoraEmbedding(t.layer, tf.variable(a, true), tf.variable(b, true), this.scaling, this.state);
    tf.dispose([a, b]);
    return layer;
  }

  /** The base model's forward with the adapters active (unless disabled or merged). */
  forward(a: ForwardArgs): ModelOutput {
    this.begin(a);
    const out = this.base.forward(a);
    this.checkUsed();
    return out;
  }

  /** The base causal LM's final hidden states [B, T, C] with the adapters active (see lmHead). */
  hidden(a: ForwardArgs): tf.Tensor3D {
    this.begin(a);
    const h = this.causalLm().hidden(a);
    this.checkUsed((ad) => !(ad instanceof LoraLinear && ad.role === 'head')); // an adapter on lm_head runs in the head
    return h;
  }

  /** The base causal LM's head, through its adapter when lm_head has one. */
  lmHead(): LmHead {
    const head = this.causalLm().lmHead();
    return {
      ...head,
      logits: (h, firstRow = 0) => {
        // a chunk of rows draws its own dropout masks (the same again when the backward pass recomputes it)
        const seed = this.state.seed;
        if (firstRow) this.state.seed = deriveSeed(seed, 104729, firstRow);
        let z: tf.Tensor2D;
        try {
          z = head.logits(h);
        } finally {
          this.state.seed = seed;
        }
        this.checkUsed(); // the stack and the head both ran: every target has been applied
        return z;
      },
    };
  }

  /** Dropout mode and seed of this pass, for the adapters' dropout. */
  private begin(a: ForwardArgs): void {
    this.state.training = a.training ?? false;
    this.state.seed = a.dropoutSeed ?? 0;
  }

  private causalLm(): CausalLm {
    const lm = this.base as unknown as Partial<CausalLm>;
    if (typeof lm.hidden !== 'function' || typeof lm.lmHead !== 'function')
      throw new Error(`${this.base.modelType} is not a causal LM: it has no hidden states and LM head to train on`);
    return lm as CausalLm;
  }

  /** After the first full pass (or of `which` adapters, after a part of one): every target must be a layer the model applied. */
  private checkUsed(which?: (ad: LoraLayer) => boolean): void {
    if (this.checked || !this.state.enabled || this.state.merged) return;
    const unused = this.adapters.filter((ad) => !ad.used && (which?.(ad) ?? true)).map((ad) => ad.name);
    if (unused.length)
      throw new ConfigError(`LoRA targets ${unused.join(', ')} are not layers this model's forward applies`, {
        field: 'peft.targetModules',
        hint: 'target attention/MLP projections; train heads with modulesToSave',
      });
    if (!which) this.checked = true;
  }

  /** Adds each ΔW into its base weight (faster inference); unmerge() takes it out again. */
  merge(): void {
    if (this.state.merged) return;
    for (const ad of this.adapters) ad.checkMergeable(); // all or none
    for (const ad of this.adapters) ad.mergeInto(1);
    this.state.merged = true;
  }

  unmerge(): void {
    if (!this.state.merged) return;
    for (const ad of this.adapters) ad.mergeInto(-1);
    this.state.merged = false;
  }

  /** The base model's longest sequence (for generation). */
  get maxPositions(): number {
    return this.base.maxPositions;
  }

  /** The base model's static-cache support (adapters add no length-dependent step). */
  get staticCache(): { replayable: boolean } | undefined {
    return this.base.staticCache;
  }

  get isMerged(): boolean {
    return this.state.merged;
  }

  /** Runs fn on the base model alone (e.g. the reference model of DPO/PPO), adapters off. */
  withAdapterDisabled<T>(fn: () => T): T {
    if (this.state.merged)
      throw new ConfigError('the adapters are merged into the weights; unmerge() before disabling them');
    this.state.enabled = false;
    try {
      return fn();
    } finally {
      this.state.enabled = true;
    }
  }

  /** Merges, removes the adapters and returns the plain base model (this LoraModel is done). */
  mergeAndUnload(): PretrainedModel {
    this.merge();
    this.release();
    return this.base;
  }

  /** Puts each base layer back in place of its adapter and frees the adapters. */
  private release(): void {
    for (const p of this.base.params.values()) p.trainable = true;
    for (const ad of this.adapters) {
      this.base.replaceLayer(ad.baseLayer);
      tf.dispose([ad.loraA, ad.loraB]);
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
      fanInFanOut: this.adapters.some((ad) => ad.kind === 'projection' && ad.layout === 'conv1d'),
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
