// A causal LM trunk with a linear `score` head instead of the LM head, as transformers'
// GPT2ForSequenceClassification and LlamaForSequenceClassification (also Qwen2/Mistral):
// one score per sequence, taken at its last real token, for classification and reward
// models; or one per token (tokenScores), the value head of PPO.
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, deriveSeed } from '@anneal/core';
import { checkGpt2Config, gpt2ConfigFromHf, gpt2ConfigToHf, type Gpt2Config } from './gpt2/config.js';
import { gpt2Blocks, gpt2Hidden, gpt2Layers, gpt2ParamShapes, initGpt2Params } from './gpt2/model.js';
import {
  architectureOf,
  checkLlamaConfig,
  llamaConfigFromHf,
  llamaConfigToHf,
  type LlamaConfig,
} from './llama/config.js';
import { initLlamaParams, llamaBlocks, llamaHidden, llamaLayers, llamaParamShapes } from './llama/model.js';
import { applyLayer, type LayerFactory, type LayerSpec, type Modules } from './layers.js';
import {
  PretrainedModel,
  readHfConfig,
  readWeights,
  weightsFromTensors,
  type LoadOptions,
  type Params,
} from './pretrained.js';
import type { ForwardArgs, ModelOutput } from './types.js';

export type DecoderConfig = { arch: 'gpt2'; config: Gpt2Config } | { arch: 'llama'; config: LlamaConfig };

export interface ClassifierOptions {
  numLabels: number;
  /** Locates each sequence's last real token (transformers: the first pad id, minus one). */
  padTokenId: number | null;
  /** id2label of config.json (default LABEL_0, LABEL_1, ...). */
  labels?: string[];
  problemType?: 'regression' | 'single_label_classification' | 'multi_label_classification' | null;
}

/** The trunk's layers (no LM head) and the score head. */
function classifierLayers(decoder: DecoderConfig): LayerSpec[] {
  const trunk = decoder.arch === 'gpt2' ? gpt2Layers(decoder.config, false) : llamaLayers(decoder.config, false);
  return [...trunk, { kind: 'projection', name: 'score', layout: 'linear', role: 'head' }];
}

export class DecoderForSequenceClassification extends PretrainedModel {
  readonly modelType: string;
  readonly o: Required<ClassifierOptions>;

  private constructor(
    readonly decoder: DecoderConfig,
    o: ClassifierOptions,
    params: Params,
    prebuilt?: Map<string, LayerFactory>,
  ) {
    super(params, classifierLayers(decoder), prebuilt);
    this.modelType = decoder.arch === 'gpt2' ? 'gpt2' : decoder.config.modelType;
    this.o = { labels: Array.from({ length: o.numLabels }, (_, i) => `LABEL_${i}`), problemType: null, ...o };
  }

  /**
   * A trunk (random, or a causal LM's: its parameters and layers, shared, quantized ones
   * included) with a fresh N(0, 0.02) score head.
   */
  static init(
    decoder: DecoderConfig,
    o: ClassifierOptions,
    seed: number,
    trunk?: Modules,
  ): DecoderForSequenceClassification {
    if (decoder.arch === 'gpt2') checkGpt2Config(decoder.config);
    else checkLlamaConfig(decoder.config);
    const params: Params = trunk
      ? new Map([...trunk.params].filter(([n]) => n !== 'lm_head.weight'))
      : decoder.arch === 'gpt2'
        ? initGpt2Params(decoder.config, seed)
        : initLlamaParams(decoder.config, seed, false);
    const C = decoder.arch === 'gpt2' ? decoder.config.nEmbd : decoder.config.hiddenSize;
    const std = decoder.arch === 'gpt2' ? decoder.config.initializerRange : decoder.config.initializerRange;
    params.set(
      'score.weight',
      tf.tidy(() => tf.variable(tf.randomNormal([o.numLabels, C], 0, std, 'float32', deriveSeed(seed, 1 << 20)), true)),
    );
    const shared = new Map<string, LayerFactory>();
    for (const [name, layer] of trunk?.layers ?? []) if (name !== 'lm_head') shared.set(name, () => layer);
    return new DecoderForSequenceClassification(decoder, o, params, shared);
  }

  /** Loads GPT2ForSequenceClassification / LlamaForSequenceClassification (and Qwen2/Qwen3, Mistral, SmolLM3, Phi-3, Gemma 3) folders. */
  static fromPretrained(dir: string, o: LoadOptions = {}): DecoderForSequenceClassification {
    const { hf, file } = readHfConfig(dir);
    const decoder: DecoderConfig =
      hf.model_type === 'gpt2'
        ? { arch: 'gpt2', config: gpt2ConfigFromHf(hf, file) }
        : { arch: 'llama', config: llamaConfigFromHf(hf, file) };
    const id2label = (hf.id2label ?? { 0: 'LABEL_0', 1: 'LABEL_1' }) as Record<string, string>;
    const labels = Object.keys(id2label)
      .sort((a, b) => Number(a) - Number(b))
      .map((k) => id2label[k]);
    const numLabels = typeof hf.num_labels === 'number' ? hf.num_labels : labels.length;
    const { tensors, file: weights } = readWeights(dir);
    const shapes = decoder.arch === 'gpt2' ? gpt2ParamShapes(decoder.config) : llamaParamShapes(decoder.config, false);
    const C = decoder.arch === 'gpt2' ? decoder.config.nEmbd : decoder.config.hiddenSize;
    const { params, prebuilt } = weightsFromTensors(
      [...shapes, ['score.weight', [numLabels, C]]],
      classifierLayers(decoder),
      tensors,
      weights,
      () => [],
      [/rotary_emb\.inv_freq$/, /attn\.(masked_)?bias$/],
      o.weights,
    );
    return new DecoderForSequenceClassification(
      decoder,
      {
        numLabels,
        padTokenId: (hf.pad_token_id as number | null) ?? null,
        labels,
        problemType: (hf.problem_type as ClassifierOptions['problemType']) ?? null,
      },
      params,
      prebuilt,
    );
  }

  private trunk(a: ForwardArgs): tf.Tensor3D {
    const args = { training: this.training, gradientCheckpointing: this.gradientCheckpointing, ...a, useCache: false };
    return this.decoder.arch === 'gpt2'
      ? gpt2Hidden(this.decoder.config, this, args).hidden
      : llamaHidden(this.decoder.config, this, args).hidden;
  }

  /** Scores of every position: [B, T, numLabels] (a value head when numLabels is 1). */
  tokenScores(a: ForwardArgs): tf.Tensor3D {
    return applyLayer(this, 'score', this.trunk(a)) as tf.Tensor3D; // [B, T, C] -> [B, T, numLabels]
  }

  /** Which position each row is pooled at: the token before the first pad id (mod T), as transformers. */
  lastTokenIndex(inputIds: number[][]): number[] {
    const T = inputIds[0].length;
    return inputIds.map((row) => {
      if (this.o.padTokenId === null) {
        if (inputIds.length > 1)
          throw new ConfigError("a batch of several sequences needs pad_token_id to find each one's last token", {
            field: 'pad_token_id',
          });
        return T - 1;
      }
      const first = row.indexOf(this.o.padTokenId);
      return ((((first < 0 ? 0 : first) - 1) % T) + T) % T;
    });
  }

  /** logits [B, numLabels] at each sequence's last real token. */
  forward(a: ForwardArgs): ModelOutput & { logits: tf.Tensor2D } {
    const scores = this.tokenScores(a); // [B, T, L]
    const [B, T, L] = scores.shape;
    const last = this.lastTokenIndex(a.inputIds.arraySync() as number[][]);
    const flat = tf.reshape(scores, [B * T, L]);
    const logits = tf.gather(
      flat,
      tf.tensor1d(
        last.map((t, b) => b * T + t),
        'int32',
      ),
    ) as tf.Tensor2D; // [B, L]
    return { logits };
  }

  hfConfig(): Record<string, unknown> {
    const base =
      this.decoder.arch === 'gpt2' ? gpt2ConfigToHf(this.decoder.config) : llamaConfigToHf(this.decoder.config);
    const arch =
      this.decoder.arch === 'gpt2'
        ? 'GPT2ForSequenceClassification'
        : architectureOf(this.decoder.config, 'ForSequenceClassification');
    return {
      ...base,
      architectures: [arch],
      id2label: Object.fromEntries(this.o.labels.map((l, i) => [String(i), l])),
      label2id: Object.fromEntries(this.o.labels.map((l, i) => [l, i])),
      pad_token_id: this.o.padTokenId,
      ...(this.o.problemType && { problem_type: this.o.problemType }),
    };
  }

  get maxPositions(): number {
    return this.decoder.arch === 'gpt2' ? this.decoder.config.nPositions : this.decoder.config.maxPositionEmbeddings;
  }

  get blockNames(): string[] {
    return this.decoder.arch === 'gpt2' ? gpt2Blocks(this.decoder.config) : llamaBlocks(this.decoder.config);
  }
}
