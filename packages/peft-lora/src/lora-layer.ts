// The LoRA layers (Hu et al. 2021), as PEFT's lora.Linear and lora.Embedding: each wraps
// the model's layer (kept as baseLayer, PEFT's base_layer) and takes its place in
// model.layers. A projection W gets y = W x + s B A dropout(x), A [r, in], B [out, r];
// an embedding table gets rows += s B A[:, ids] (A [r, rows], B [dim, r], no dropout).
// merge() adds ΔW = s B A into the base weight and unmerge() takes it out again.
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, deriveSeed } from '@anneal/core';
import { Embedding, Linear, addProduct, type EmbeddingLayer, type ProjectionLayer } from '@anneal/modeling';

/** What every adapter of one LoraModel reads at each call (set by the LoraModel). */
export interface LoraState {
  /** Off inside withAdapterDisabled. */
  enabled: boolean;
  /** ΔW is in the base weights: the adapters add nothing. */
  merged: boolean;
  /** Dropout on, and its base seed. */
  training: boolean;
  seed: number;
}

/** lora.Linear: a projection (nn.Linear, Conv1D or a quantized one) with a low-rank update. */
export class LoraLinear implements ProjectionLayer {
  readonly kind = 'projection';
  readonly type: string;
  /** The model's forward called this layer (a target the model never applies is a config error). */
  used = false;

  constructor(
    readonly baseLayer: ProjectionLayer,
    /** [r, in] */
    readonly loraA: tf.Variable,
    /** [out, r] */
    readonly loraB: tf.Variable,
    readonly scaling: number,
    readonly dropout: number,
    /** This adapter's place among the model's, for its dropout seed. */
    readonly index: number,
    private readonly state: LoraState,
  ) {
    this.type = `lora.${baseLayer.type}`;
  }

  get name(): string {
    return this.baseLayer.name;
  }
  get role() {
    return this.baseLayer.role;
  }
  get layout() {
    return this.baseLayer.layout;
  }
  get inDim(): number {
    return this.baseLayer.inDim;
  }
  get outDim(): number {
    return this.baseLayer.outDim;
  }

  forward(x: tf.Tensor): tf.Tensor {
    this.used = true;
    const y = this.baseLayer.forward(x); // [..., out]
    if (!this.state.enabled || this.state.merged) return y;
    const drop =
      this.state.training && this.dropout > 0
        ? tf.dropout(x, this.dropout, undefined, deriveSeed(this.state.seed, 7919, this.index))
        : x;
    const flat = tf.reshape(drop, [-1, this.inDim]); // [N, in]
    // s scales the [N, r] intermediate, not the [N, out] result: one wide tensor fewer kept for backward
    const u = tf.mul(tf.matMul(flat, this.loraA, false, true), this.scaling) as tf.Tensor2D; // [N, r]
    const out = tf.reshape(y, [-1, this.outDim]) as tf.Tensor2D;
    return tf.reshape(addProduct(out, u, this.loraB as tf.Tensor2D), y.shape); // y + u Bᵀ, the sum inside the product
  }

  variables(): Array<[string, tf.Variable]> {
    return [...this.baseLayer.variables(), ...this.adapterVariables()];
  }

  /** A and B under PEFT's names (without its base_model.model. prefix). */
  adapterVariables(): Array<[string, tf.Variable]> {
    return [
      [`${this.name}.lora_A.weight`, this.loraA],
      [`${this.name}.lora_B.weight`, this.loraB],
    ];
  }

  /** ΔW = s B A laid out like the base weight ([out, in]; [in, out] for Conv1D). */
  delta(): tf.Tensor {
    const d = tf.mul(tf.matMul(this.loraB, this.loraA), this.scaling); // [out, in]
    return this.layout === 'linear' ? d : tf.transpose(d);
  }

  /** Throws a named error when ΔW cannot go into the base weight (a quantized one). */
  checkMergeable(): Linear {
    const base = this.baseLayer;
    if (!(base instanceof Linear))
      throw new ConfigError(`cannot merge the adapter on ${this.name}: its base layer is ${base.type}, not float32`, {
        field: 'peft',
        hint: 'dequantize the base model first, or keep the adapter unmerged',
      });
    return base;
  }

  /** Adds (sign 1) or takes out (-1) ΔW from the base weight. */
  mergeInto(sign: 1 | -1): void {
    const base = this.checkMergeable();
    tf.tidy(() => base.weight.assign(sign > 0 ? tf.add(base.weight, this.delta()) : tf.sub(base.weight, this.delta())));
  }
}

/** lora.Embedding: a table with a low-rank update of its rows. */
export class LoraEmbedding implements EmbeddingLayer {
  readonly kind = 'embedding';
  readonly type = 'lora.Embedding';
  used = false;

  constructor(
    readonly baseLayer: EmbeddingLayer,
    /** [r, rows] */
    readonly loraA: tf.Variable,
    /** [dim, r] */
    readonly loraB: tf.Variable,
    readonly scaling: number,
    private readonly state: LoraState,
  ) {}

  get name(): string {
    return this.baseLayer.name;
  }
  get tiedToHead(): boolean {
    return this.baseLayer.tiedToHead;
  }
  get rows(): number {
    return this.baseLayer.rows;
  }
  get dim(): number {
    return this.baseLayer.dim;
  }

  forward(ids: tf.Tensor): tf.Tensor {
    this.used = true;
    const rows = this.baseLayer.forward(ids); // [..., dim]
    if (!this.state.enabled || this.state.merged) return rows;
    const r = this.loraA.shape[0]!;
    const after = tf.gather(tf.transpose(this.loraA), ids); // [..., r]
    const delta = tf.matMul(tf.reshape(after, [-1, r]), this.loraB, false, true); // [N, dim]
    return tf.add(rows, tf.reshape(tf.mul(delta, this.scaling), rows.shape));
  }

  variables(): Array<[string, tf.Variable]> {
    return [...this.baseLayer.variables(), ...this.adapterVariables()];
  }

  /** A and B under PEFT's embedding names (no ".weight"). */
  adapterVariables(): Array<[string, tf.Variable]> {
    return [
      [`${this.name}.lora_embedding_A`, this.loraA],
      [`${this.name}.lora_embedding_B`, this.loraB],
    ];
  }

  /** ΔW = s (B A)ᵀ laid out like the table [rows, dim]. */
  delta(): tf.Tensor {
    return tf.transpose(tf.mul(tf.matMul(this.loraB, this.loraA), this.scaling));
  }

  checkMergeable(): Embedding {
    const base = this.baseLayer;
    if (!(base instanceof Embedding))
      throw new ConfigError(`cannot merge the adapter on ${this.name}: its base layer is ${base.type}`, {
        field: 'peft',
      });
    if (base.tiedToHead)
      // The table is also the output projection: merging into it would change the head as well (PEFT warns of the same).
      throw new ConfigError(
        `cannot merge the adapter on ${this.name}: the table is tied to the output head, so merging would change the head too`,
        { field: 'peft.targetModules', hint: 'keep this adapter unmerged, or adapt an untied table' },
      );
    return base;
  }

  mergeInto(sign: 1 | -1): void {
    const base = this.checkMergeable();
    tf.tidy(() => base.weight.assign(sign > 0 ? tf.add(base.weight, this.delta()) : tf.sub(base.weight, this.delta())));
  }
}

export type LoraLayer = LoraLinear | LoraEmbedding;
