// DistilBERT (Sanh et al., 2019), as transformers' DistilBertForMaskedLM and
// DistilBertForSequenceClassification: BERT's post-LN encoder without segment embeddings
// (so it runs on bertEncoder through a renaming of its parameters), an MLM head like
// BERT's, and a ReLU pre-classifier over [CLS].
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, deriveSeed } from '@anneal/core';
import type { BertConfig } from '../bert/config.js';
import { activation, bertEncoder } from '../bert/model.js';
import { applyLayer, type Layer, type LayerFactory, type LayerSpec, type Modules } from '../layers.js';
import { layerNorm } from '../ops.js';
import {
  PretrainedModel,
  readHfConfig,
  readWeights,
  requireFloatTrunk,
  weightsFromTensors,
  type LoadOptions,
  type Params,
} from '../pretrained.js';
import { hiddenRowsAt, type ForwardArgs, type ModelOutput } from '../types.js';

export interface DistilBertConfig {
  vocabSize: number;
  maxPositionEmbeddings: number;
  nLayers: number;
  nHeads: number;
  dim: number;
  hiddenDim: number;
  dropout: number;
  attentionDropout: number;
  activation: 'gelu' | 'relu';
  initializerRange: number;
  seqClassifDropout: number;
  padTokenId: number;
}

export const DISTILBERT_DEFAULTS: DistilBertConfig = {
  vocabSize: 30522,
  maxPositionEmbeddings: 512,
  nLayers: 6,
  nHeads: 12,
  dim: 768,
  hiddenDim: 3072,
  dropout: 0.1,
  attentionDropout: 0.1,
  activation: 'gelu',
  initializerRange: 0.02,
  seqClassifDropout: 0.2,
  padTokenId: 0,
};

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export function distilBertConfigFromHf(hf: Record<string, unknown>, file?: string): DistilBertConfig {
  if (hf.model_type !== 'distilbert')
    throw new ConfigError(`model_type ${JSON.stringify(hf.model_type)} is not "distilbert"`, {
      file,
      field: 'model_type',
    });
  if (hf.sinusoidal_pos_embds === true)
    throw new ConfigError('sinusoidal_pos_embds=true is not supported', { file, field: 'sinusoidal_pos_embds' });
  const c = { ...DISTILBERT_DEFAULTS } as Record<string, unknown>;
  for (const k of Object.keys(DISTILBERT_DEFAULTS)) if (hf[snake(k)] !== undefined) c[k] = hf[snake(k)];
  if (c.activation !== 'gelu' && c.activation !== 'relu')
    throw new ConfigError(`activation ${JSON.stringify(c.activation)} is not supported`, { file, field: 'activation' });
  return c as unknown as DistilBertConfig;
}

/** The BERT view of the encoder (LayerNorm eps 1e-12 as DistilBERT hard-codes). */
export function distilBertAsBert(c: DistilBertConfig): BertConfig {
  return {
    vocabSize: c.vocabSize,
    hiddenSize: c.dim,
    numHiddenLayers: c.nLayers,
    numAttentionHeads: c.nHeads,
    intermediateSize: c.hiddenDim,
    hiddenAct: c.activation,
    hiddenDropoutProb: c.dropout,
    attentionProbsDropoutProb: c.attentionDropout,
    maxPositionEmbeddings: c.maxPositionEmbeddings,
    typeVocabSize: 1,
    initializerRange: c.initializerRange,
    layerNormEps: 1e-12,
    padTokenId: c.padTokenId,
    classifierDropout: null,
  };
}

/** DistilBERT's parameter names and the BERT names they play in bertEncoder (and their shapes). */
export function distilBertEncoderNames(c: DistilBertConfig): Array<[string, string, number[]]> {
  const [C, I] = [c.dim, c.hiddenDim];
  const n: Array<[string, string, number[]]> = [
    ['distilbert.embeddings.word_embeddings.weight', 'bert.embeddings.word_embeddings.weight', [c.vocabSize, C]],
    [
      'distilbert.embeddings.position_embeddings.weight',
      'bert.embeddings.position_embeddings.weight',
      [c.maxPositionEmbeddings, C],
    ],
    ['distilbert.embeddings.LayerNorm.weight', 'bert.embeddings.LayerNorm.weight', [C]],
    ['distilbert.embeddings.LayerNorm.bias', 'bert.embeddings.LayerNorm.bias', [C]],
  ];
  for (let i = 0; i < c.nLayers; i++) {
    const [d, b] = [`distilbert.transformer.layer.${i}`, `bert.encoder.layer.${i}`];
    for (const [from, to] of [
      ['q_lin', 'attention.self.query'],
      ['k_lin', 'attention.self.key'],
      ['v_lin', 'attention.self.value'],
      ['out_lin', 'attention.output.dense'],
    ])
      n.push(
        [`${d}.attention.${from}.weight`, `${b}.${to}.weight`, [C, C]],
        [`${d}.attention.${from}.bias`, `${b}.${to}.bias`, [C]],
      );
    n.push(
      [`${d}.sa_layer_norm.weight`, `${b}.attention.output.LayerNorm.weight`, [C]],
      [`${d}.sa_layer_norm.bias`, `${b}.attention.output.LayerNorm.bias`, [C]],
    );
    n.push(
      [`${d}.ffn.lin1.weight`, `${b}.intermediate.dense.weight`, [I, C]],
      [`${d}.ffn.lin1.bias`, `${b}.intermediate.dense.bias`, [I]],
      [`${d}.ffn.lin2.weight`, `${b}.output.dense.weight`, [C, I]],
      [`${d}.ffn.lin2.bias`, `${b}.output.dense.bias`, [C]],
    );
    n.push(
      [`${d}.output_layer_norm.weight`, `${b}.output.LayerNorm.weight`, [C]],
      [`${d}.output_layer_norm.bias`, `${b}.output.LayerNorm.bias`, [C]],
    );
  }
  return n;
}

/** DistilBERT's layers: word (tied to the MLM decoder) and position tables, six projections per block, the head's. */
function distilBertLayers(c: DistilBertConfig, head: 'mlm' | 'classifier'): LayerSpec[] {
  const specs: LayerSpec[] = [
    { kind: 'embedding', name: 'distilbert.embeddings.word_embeddings', tiedToHead: head === 'mlm' },
    { kind: 'embedding', name: 'distilbert.embeddings.position_embeddings', tiedToHead: false },
  ];
  const projection = (name: string, role: 'hidden' | 'head' | 'pooler' = 'hidden'): LayerSpec => ({
    kind: 'projection',
    name,
    layout: 'linear',
    role,
  });
  for (let i = 0; i < c.nLayers; i++) {
    const d = `distilbert.transformer.layer.${i}`;
    for (const m of [
      'attention.q_lin',
      'attention.k_lin',
      'attention.v_lin',
      'attention.out_lin',
      'ffn.lin1',
      'ffn.lin2',
    ])
      specs.push(projection(`${d}.${m}`));
  }
  if (head === 'mlm') specs.push(projection('vocab_transform'));
  else specs.push(projection('pre_classifier', 'pooler'), projection('classifier', 'head'));
  return specs;
}

function headShapes(c: DistilBertConfig, head: 'mlm' | 'classifier', numLabels: number): Array<[string, number[]]> {
  const C = c.dim;
  return head === 'mlm'
    ? [
        ['vocab_transform.weight', [C, C]],
        ['vocab_transform.bias', [C]],
        ['vocab_layer_norm.weight', [C]],
        ['vocab_layer_norm.bias', [C]],
        ['vocab_projector.bias', [c.vocabSize]],
      ]
    : [
        ['pre_classifier.weight', [C, C]],
        ['pre_classifier.bias', [C]],
        ['classifier.weight', [numLabels, C]],
        ['classifier.bias', [numLabels]],
      ];
}

export class DistilBertModelWithHead extends PretrainedModel {
  readonly modelType = 'distilbert';
  /** BERT's name of each encoder parameter. */
  private readonly bertNames: Array<[string, string]>;

  private constructor(
    readonly config: DistilBertConfig,
    readonly head: 'mlm' | 'classifier',
    readonly labels: string[],
    params: Params,
    prebuilt?: Map<string, LayerFactory>,
  ) {
    super(params, distilBertLayers(config, head), prebuilt);
    this.bertNames = distilBertEncoderNames(config).map(([d, b]) => [d, b]);
  }

  /** The encoder's parameters and layers under BERT's names, for bertEncoder (built per call: layers may be wrapped). */
  private bertView(): Modules {
    const params: Params = new Map();
    const layers = new Map<string, Layer>();
    for (const [d, b] of this.bertNames) {
      const p = this.params.get(d);
      if (p) params.set(b, p);
      const layer = d.endsWith('.weight') && this.layers.get(d.slice(0, -'.weight'.length));
      if (layer) layers.set(b.slice(0, -'.weight'.length), layer);
    }
    return { params, layers };
  }

  static init(
    config: DistilBertConfig,
    head: 'mlm' | 'classifier',
    seed: number,
    labels: string[] = ['LABEL_0', 'LABEL_1'],
  ): DistilBertModelWithHead {
    const params: Params = new Map();
    [
      ...distilBertEncoderNames(config).map(([d, , s]) => [d, s] as [string, number[]]),
      ...headShapes(config, head, labels.length),
    ].forEach(([name, shape], i) => {
      const init = /(layer_norm|LayerNorm)\.weight$/.test(name)
        ? tf.ones(shape)
        : name.endsWith('bias')
          ? tf.zeros(shape)
          : tf.randomNormal(shape, 0, config.initializerRange, 'float32', deriveSeed(seed, i));
      params.set(name, tf.variable(init, true));
      init.dispose();
    });
    return new DistilBertModelWithHead(config, head, labels, params);
  }

  /** The same encoder with a fresh classification head (e.g. on an MLM checkpoint): encoder weights copied. */
  withClassifier(labels: string[], seed: number): DistilBertModelWithHead {
    requireFloatTrunk(this);
    const m = DistilBertModelWithHead.init(this.config, 'classifier', seed, labels);
    for (const [name] of distilBertEncoderNames(this.config)) m.params.get(name)!.assign(this.params.get(name)!);
    return m;
  }

  static fromPretrained(dir: string, o: LoadOptions = {}): DistilBertModelWithHead {
    const { hf, file } = readHfConfig(dir);
    const config = distilBertConfigFromHf(hf, file);
    const head =
      Array.isArray(hf.architectures) && hf.architectures[0] === 'DistilBertForSequenceClassification'
        ? 'classifier'
        : 'mlm';
    const id2label = (hf.id2label ?? { 0: 'LABEL_0', 1: 'LABEL_1' }) as Record<string, string>;
    const labels = Object.keys(id2label)
      .sort((a, b) => Number(a) - Number(b))
      .map((k) => id2label[k]);
    const { tensors, file: weights } = readWeights(dir);
    const shapes: Array<[string, number[]]> = [
      ...distilBertEncoderNames(config).map(([d, , s]) => [d, s] as [string, number[]]),
      ...headShapes(config, head, labels.length),
    ];
    const { params, prebuilt } = weightsFromTensors(
      shapes,
      distilBertLayers(config, head),
      tensors,
      weights,
      () => [],
      [/^vocab_projector\.weight$/, /position_ids$/],
      o.weights,
    );
    return new DistilBertModelWithHead(config, head, labels, params, prebuilt);
  }

  forward(a: ForwardArgs): ModelOutput {
    const args = {
      training: this.training,
      gradientCheckpointing: this.gradientCheckpointing,
      ...a,
      tokenTypeIds: undefined,
    };
    const { hidden, hiddenStates, attentions } = bertEncoder(distilBertAsBert(this.config), this.bertView(), args);
    const p = (n: string) => this.params.get(n)!;
    const [B, T, C] = hidden.shape;
    let logits: tf.Tensor;
    if (this.head === 'mlm') {
      // with logitsAt, the head on those rows only: [n, V]
      const rows = a.logitsAt ? hiddenRowsAt(hidden, a.logitsAt) : hidden;
      const h = layerNorm(
        activation(applyLayer(this, 'vocab_transform', rows), this.config.activation),
        p('vocab_layer_norm.weight'),
        p('vocab_layer_norm.bias'),
        1e-12,
      );
      const n = a.logitsAt ? a.logitsAt.shape[0] : B * T;
      logits = tf.add(
        tf.matMul(tf.reshape(h, [n, C]), p('distilbert.embeddings.word_embeddings.weight'), false, true),
        p('vocab_projector.bias'),
      ); // [n, V]
      if (!a.logitsAt) logits = tf.reshape(logits, [B, T, this.config.vocabSize]);
    } else {
      const cls = tf.relu(
        applyLayer(this, 'pre_classifier', tf.reshape(tf.slice(hidden, [0, 0, 0], [B, 1, C]), [B, C])),
      );
      const rate = this.config.seqClassifDropout;
      const dropped =
        args.training && rate > 0 ? tf.dropout(cls, rate, undefined, deriveSeed(a.dropoutSeed ?? 0, 1 << 16)) : cls;
      logits = applyLayer(this, 'classifier', dropped);
    }
    return { logits, ...(a.outputHiddenStates && { hiddenStates }), ...(a.outputAttentions && { attentions }) };
  }

  hfConfig(): Record<string, unknown> {
    const out: Record<string, unknown> = {
      architectures: [this.head === 'mlm' ? 'DistilBertForMaskedLM' : 'DistilBertForSequenceClassification'],
      model_type: 'distilbert',
      sinusoidal_pos_embds: false,
      tie_weights_: true,
    };
    for (const [k, v] of Object.entries(this.config)) out[snake(k)] = v;
    if (this.head === 'classifier')
      Object.assign(out, {
        id2label: Object.fromEntries(this.labels.map((l, i) => [String(i), l])),
        label2id: Object.fromEntries(this.labels.map((l, i) => [l, i])),
      });
    return { ...out, torch_dtype: 'float32', transformers_version: '4.40.0' };
  }

  protected override generationConfig(): Record<string, unknown> {
    return { pad_token_id: this.config.padTokenId, transformers_version: '4.40.0' };
  }

  get maxPositions(): number {
    return this.config.maxPositionEmbeddings;
  }

  get blockNames(): string[] {
    return Array.from({ length: this.config.nLayers }, (_, i) => `distilbert.transformer.layer.${i}`);
  }
}
