// The layers a model is made of, as objects the model owns and lists (model.layers, keyed by
// the module name of the Hugging Face state dict): projections (nn.Linear, weight [out, in];
// GPT-2's Conv1D, weight [in, out]) and embedding tables. Each architecture declares its
// layers once (a LayerSpec list: which are projections, heads, embeddings); the model math
// calls them by name. A wrapper (a LoRA adapter from @anneal/peft-lora, a quantized weight
// from @anneal/quantization) replaces a layer in model.layers and keeps the one it wraps as
// baseLayer, as PEFT's LoraLayer keeps base_layer: the model object shows which layers are
// adapted or quantized, and each layer lists the variables its forward reads.
import * as tf from '@tensorflow/tfjs-core';

export type Params = Map<string, tf.Variable>;

/** How a projection stores its weight: 'linear' [out, in] (nn.Linear), 'conv1d' [in, out] (GPT-2's Conv1D). */
export type Layout = 'linear' | 'conv1d';

/**
 * What a projection is for: 'hidden' inside the network; 'head' the output layer (lm_head,
 * score, classifier), left out of LoRA's all-linear and of quantization as PEFT and
 * bitsandbytes do; 'pooler' a head's inner projection (BERT's pooler, DistilBERT's
 * pre_classifier), which LoRA's all-linear adapts and quantization keeps in float32.
 */
export type ProjectionRole = 'hidden' | 'head' | 'pooler';

/** One entry of an architecture's layer list. */
export type LayerSpec =
  | { kind: 'projection'; name: string; layout: Layout; role: ProjectionRole }
  /**
   * tiedToHead: the table is also the output projection (GPT-2's wte, a tied Llama's
   * embed_tokens); paddingIdx: nn.Embedding's padding_idx, a row that gets no gradient.
   */
  | { kind: 'embedding'; name: string; tiedToHead: boolean; paddingIdx?: number };

interface LayerBase {
  /** Module name, e.g. transformer.h.0.attn.c_attn. */
  readonly name: string;
  /** The class it stands for (Linear, Conv1D, Embedding, lora.Linear, Linear4bit, ...). */
  readonly type: string;
  /** The layer this one wraps (PEFT's base_layer); undefined for a plain layer. */
  readonly baseLayer?: Layer;
  /** The variables this layer's forward reads, its base layer's included, by full name. */
  variables(): Array<[string, tf.Variable]>;
  /** Frees what the layer holds besides the model's params (e.g. quantized codes). */
  dispose?(): void;
}

export interface ProjectionLayer extends LayerBase {
  readonly kind: 'projection';
  readonly role: ProjectionRole;
  readonly layout: Layout;
  readonly inDim: number;
  readonly outDim: number;
  /** x [..., in] -> y [..., out]. */
  forward(x: tf.Tensor): tf.Tensor;
}

export interface EmbeddingLayer extends LayerBase {
  readonly kind: 'embedding';
  readonly tiedToHead: boolean;
  /** Table [rows, dim]. */
  readonly rows: number;
  readonly dim: number;
  /** ids [...] -> rows [..., dim]. */
  forward(ids: tf.Tensor): tf.Tensor;
}

export type Layer = ProjectionLayer | EmbeddingLayer;

/** y = x W^T + b (layout 'linear', W [out, in]) or x W + b ('conv1d', W [in, out]). */
export class Linear implements ProjectionLayer {
  readonly kind = 'projection';
  readonly type: string;
  readonly inDim: number;
  readonly outDim: number;

  constructor(
    readonly name: string,
    readonly weight: tf.Variable,
    readonly bias: tf.Variable | undefined,
    readonly layout: Layout,
    readonly role: ProjectionRole,
  ) {
    this.type = layout === 'conv1d' ? 'Conv1D' : 'Linear';
    const [a, b] = weight.shape;
    [this.inDim, this.outDim] = layout === 'conv1d' ? [a!, b!] : [b!, a!];
  }

  forward(x: tf.Tensor): tf.Tensor {
    const y = tf.matMul(tf.reshape(x, [-1, this.inDim]), this.weight, false, this.layout === 'linear'); // [N, out]
    return tf.reshape(this.bias ? tf.add(y, this.bias) : y, [...x.shape.slice(0, -1), this.outDim]);
  }

  variables(): Array<[string, tf.Variable]> {
    const v: Array<[string, tf.Variable]> = [[`${this.name}.weight`, this.weight]];
    if (this.bias) v.push([`${this.name}.bias`, this.bias]);
    return v;
  }
}

/** Rows of a table [rows, dim] for ids. */
export class Embedding implements EmbeddingLayer {
  readonly kind = 'embedding';
  readonly type = 'Embedding';
  readonly rows: number;
  readonly dim: number;

  constructor(
    readonly name: string,
    readonly weight: tf.Variable,
    readonly tiedToHead: boolean,
    /** nn.Embedding's padding_idx: the row of this id is looked up as usual but gets no gradient. */
    readonly paddingIdx?: number,
  ) {
    [this.rows, this.dim] = [weight.shape[0]!, weight.shape[1]!];
  }

  forward(ids: tf.Tensor): tf.Tensor {
    const rows = tf.gather(this.weight, ids); // [..., dim]
    if (this.paddingIdx === undefined) return rows;
    const keep = tf.expandDims(tf.cast(tf.notEqual(ids, this.paddingIdx), 'float32'), -1); // [..., 1]
    return tf.add(tf.mul(rows, keep), tf.mul(withoutGradient(rows), tf.sub(1, keep)));
  }

  variables(): Array<[string, tf.Variable]> {
    return [[`${this.name}.weight`, this.weight]];
  }
}

/** x, through which no gradient flows (torch's detach). */
const withoutGradient = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
  value: tf.clone(args[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as (x: tf.Tensor) => tf.Tensor;

/**
 * Builds layer objects for an architecture's spec list over its params. `prebuilt` supplies
 * layers made another way (a quantized weight read from the checkpoint, or the layers of a
 * trunk a new head is put on); it gets the layer's bias, if the params have one.
 */
export type LayerFactory = (spec: LayerSpec, bias: tf.Variable | undefined) => Layer;

export function buildLayers(
  specs: LayerSpec[],
  params: Params,
  prebuilt: Map<string, LayerFactory> = new Map(),
): Map<string, Layer> {
  const layers = new Map<string, Layer>();
  for (const s of specs) {
    const own = prebuilt.get(s.name);
    const bias = params.get(`${s.name}.bias`);
    if (own) layers.set(s.name, own(s, bias));
    else {
      const weight = params.get(`${s.name}.weight`);
      if (!weight) throw new Error(`layer ${s.name} has no weight among the model's parameters`);
      layers.set(
        s.name,
        s.kind === 'embedding'
          ? new Embedding(s.name, weight, s.tiedToHead, s.paddingIdx)
          : new Linear(s.name, weight, bias, s.layout, s.role),
      );
    }
  }
  return layers;
}

/** What the model math reads: plain parameters (norms, tied heads) by name, and the layers. */
export interface Modules {
  readonly params: Params;
  readonly layers: Map<string, Layer>;
}

/** Runs the layer `name` of m on x. */
export function applyLayer(m: Modules, name: string, x: tf.Tensor): tf.Tensor {
  const layer = m.layers.get(name);
  if (!layer) throw new Error(`the model has no layer ${name}`);
  return layer.forward(x);
}

/** The layer and the chain of layers it wraps, outermost first. */
export function layerChain(layer: Layer): Layer[] {
  const chain: Layer[] = [];
  for (let l: Layer | undefined = layer; l; l = l.baseLayer) chain.push(l);
  return chain;
}

/** The layers of m that share a module under `prefix` (e.g. transformer.h.3). */
export function layersUnder(m: Modules, prefix: string): Layer[] {
  // by the key the model calls the layer by (a renamed view, DistilBERT's as BERT, keys differ from layer.name)
  return [...m.layers].filter(([name]) => name.startsWith(`${prefix}.`)).map(([, l]) => l);
}

/**
 * Every variable the block under `prefix` reads: its parameters (norms and base weights)
 * and what its layers hold (adapters, wrappers), by full name.
 */
export function blockVariables(m: Modules, prefix: string): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const [name, v] of m.params) if (name.startsWith(`${prefix}.`)) out.set(name, v);
  for (const layer of layersUnder(m, prefix)) for (const [name, v] of layer.variables()) out.set(name, v);
  return out;
}

/** The trainable variables of the block under `prefix` (what a checkpointed block takes gradients for). */
export function trainableOf(m: Modules, prefix: string): tf.Variable[] {
  // each variable once, though a renamed view (DistilBERT's) may list it under two names
  return [...new Set(blockVariables(m, prefix).values())].filter((v) => v.trainable);
}
