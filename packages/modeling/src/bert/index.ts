// BertForMaskedLM and BertForSequenceClassification with the Hugging Face checkpoint format.
import * as tf from '@tensorflow/tfjs-core';
import type { LayerFactory } from '../layers.js';
import {
  PretrainedModel,
  readHfConfig,
  readWeights,
  requireFloatTrunk,
  weightsFromTensors,
  type LoadOptions,
} from '../pretrained.js';
import { hiddenRowsAt, type ForwardArgs, type ModelOutput } from '../types.js';
import { bertConfigFromHf, bertConfigToHf, type BertConfig } from './config.js';
import {
  bertBlocks,
  bertClassifierLogits,
  bertEncoder,
  bertLayers,
  bertMlmLogits,
  bertParamShapes,
  initBertParams,
  type BertHead,
  type Params,
} from './model.js';

export class BertModelWithHead extends PretrainedModel {
  readonly modelType = 'bert';

  private constructor(
    readonly config: BertConfig,
    readonly head: BertHead,
    readonly labels: string[],
    params: Params,
    prebuilt?: Map<string, LayerFactory>,
  ) {
    super(params, bertLayers(config, head), prebuilt);
  }

  static init(
    config: BertConfig,
    head: BertHead,
    seed: number,
    labels: string[] = ['LABEL_0', 'LABEL_1'],
  ): BertModelWithHead {
    return new BertModelWithHead(config, head, labels, initBertParams(config, head, labels.length, seed));
  }

  /** The same encoder with another head (e.g. a classifier on an MLM-pretrained BERT): encoder weights copied, the new head initialised. */
  withHead(head: BertHead, labels: string[], seed: number): BertModelWithHead {
    requireFloatTrunk(this);
    const params = initBertParams(this.config, head, labels.length, seed);
    for (const [name, p] of params) {
      const mine = this.params.get(name);
      if (mine && name.startsWith('bert.') && !name.startsWith('bert.pooler.')) p.assign(mine);
    }
    return new BertModelWithHead(this.config, head, labels, params);
  }

  /** Loads a BertForMaskedLM or BertForSequenceClassification folder. */
  static fromPretrained(dir: string, o: LoadOptions = {}): BertModelWithHead {
    const { hf, file } = readHfConfig(dir);
    const config = bertConfigFromHf(hf, file);
    const arch = Array.isArray(hf.architectures) ? String(hf.architectures[0]) : 'BertForMaskedLM';
    const head: BertHead = arch === 'BertForSequenceClassification' ? 'classifier' : 'mlm';
    const id2label = (hf.id2label ?? { 0: 'LABEL_0', 1: 'LABEL_1' }) as Record<string, string>;
    const labels = Object.keys(id2label)
      .sort((a, b) => Number(a) - Number(b))
      .map((k) => id2label[k]);
    const { tensors, file: weights } = readWeights(dir);
    // The MLM decoder is tied to the word embeddings (and its bias to cls.predictions.bias);
    // position_ids is a buffer some checkpoints carry.
    const ignore = [
      /^cls\.predictions\.decoder\.(weight|bias)$/,
      /embeddings\.position_ids$/,
      ...(head === 'mlm' ? [/^bert\.pooler\./, /^cls\.seq_relationship\./] : []),
    ];
    const { params, prebuilt } = weightsFromTensors(
      bertParamShapes(config, head, labels.length),
      bertLayers(config, head),
      tensors,
      weights,
      () => [],
      ignore,
      o.weights,
    );
    return new BertModelWithHead(config, head, labels, params, prebuilt);
  }

  /** MLM: logits [B, T, V]; classifier: logits [B, numLabels]. */
  forward(a: ForwardArgs): ModelOutput {
    const args = { training: this.training, gradientCheckpointing: this.gradientCheckpointing, ...a };
    const { hidden, hiddenStates, attentions } = bertEncoder(this.config, this, args);
    const logits: tf.Tensor =
      this.head !== 'mlm'
        ? bertClassifierLogits(this.config, this, hidden, args)
        : a.logitsAt
          ? tf.reshape(bertMlmLogits(this.config, this, hiddenRowsAt(hidden, a.logitsAt)), [-1, this.config.vocabSize]) // [n, V]
          : bertMlmLogits(this.config, this, hidden);
    return { logits, ...(a.outputHiddenStates && { hiddenStates }), ...(a.outputAttentions && { attentions }) };
  }

  hfConfig(): Record<string, unknown> {
    const arch = this.head === 'mlm' ? 'BertForMaskedLM' : 'BertForSequenceClassification';
    const base = bertConfigToHf(this.config, arch);
    if (this.head === 'mlm') return base;
    return {
      ...base,
      id2label: Object.fromEntries(this.labels.map((l, i) => [String(i), l])),
      label2id: Object.fromEntries(this.labels.map((l, i) => [l, i])),
    };
  }

  protected override generationConfig(): Record<string, unknown> {
    return { pad_token_id: this.config.padTokenId, transformers_version: '4.40.0' };
  }

  get maxPositions(): number {
    return this.config.maxPositionEmbeddings;
  }

  get blockNames(): string[] {
    return bertBlocks(this.config);
  }
}
