// T5ForConditionalGeneration with the Hugging Face checkpoint format.
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '@anneal/core';
import { applyLayer, type LayerFactory } from '../layers.js';
import { PretrainedModel, readHfConfig, readWeights, weightsFromTensors, type LoadOptions } from '../pretrained.js';
import type { ForwardArgs, ModelOutput } from '../types.js';
import { t5ConfigFromHf, t5ConfigToHf, type T5Config } from './config.js';
import {
  initT5Params,
  shiftRight,
  t5Blocks,
  t5Layers,
  t5Logits,
  t5ParamShapes,
  t5Stack,
  type DecoderCache,
  type Params,
} from './model.js';

/** What an encoder–decoder forward takes besides the encoder's inputs (ForwardArgs.inputIds, attentionMask). */
export interface Seq2SeqArgs {
  /** [B, Td] decoder inputs (labels shifted right: shiftRight). */
  decoderInputIds: tf.Tensor2D;
  decoderAttentionMask?: tf.Tensor2D;
  /** The encoder's output from an earlier call (generation runs the encoder once). */
  encoderHidden?: tf.Tensor3D;
}

export class T5ForConditionalGeneration extends PretrainedModel {
  readonly modelType = 't5';

  private constructor(
    readonly config: T5Config,
    params: Params,
    prebuilt?: Map<string, LayerFactory>,
  ) {
    super(params, t5Layers(config), prebuilt);
  }

  static init(config: T5Config, seed: number): T5ForConditionalGeneration {
    return new T5ForConditionalGeneration(config, initT5Params(config, seed));
  }

  static fromPretrained(dir: string, o: LoadOptions = {}): T5ForConditionalGeneration {
    const { hf, file } = readHfConfig(dir);
    // transformers leaves keys equal to the class default out of config.json: a missing tie_word_embeddings is true
    const config = t5ConfigFromHf({ tie_word_embeddings: true, ...hf }, file);
    const { tensors, file: weights } = readWeights(dir);
    // the stacks' embed_tokens are the shared table; a tied lm_head is too
    const ignore = [
      /^(encoder|decoder)\.embed_tokens\.weight$/,
      ...(config.tieWordEmbeddings ? [/^lm_head\.weight$/] : []),
    ];
    const { params, prebuilt } = weightsFromTensors(
      t5ParamShapes(config),
      t5Layers(config),
      tensors,
      weights,
      (name) => (name === 'shared.weight' ? ['encoder.embed_tokens.weight', 'decoder.embed_tokens.weight'] : []),
      ignore,
      o.weights,
    );
    return new T5ForConditionalGeneration(config, params, prebuilt);
  }

  private args(a: ForwardArgs) {
    return {
      training: a.training ?? this.training,
      dropoutSeed: a.dropoutSeed ?? 0,
      gradientCheckpointing: a.gradientCheckpointing ?? this.gradientCheckpointing,
    };
  }

  /** The encoder's output [B, T, C] for inputIds [B, T]. */
  encode(a: ForwardArgs): tf.Tensor3D {
    const x = applyLayer(this, 'shared', a.inputIds) as tf.Tensor3D; // [B, T, C]
    return t5Stack(this.config, this, 'encoder', x, a.attentionMask, this.args(a));
  }

  /**
   * Decoder outputs [B, Td, C] for decoder inputs and the encoder's output. With a cache (generation),
   * decoderInputIds are the new positions only, decoderAttentionMask covers past and new ones, and
   * cache.present receives the keys and values for the next step.
   */
  decodeHidden(a: ForwardArgs & Seq2SeqArgs, encoderHidden: tf.Tensor3D, cache?: DecoderCache): tf.Tensor3D {
    const y = applyLayer(this, 'shared', a.decoderInputIds) as tf.Tensor3D; // [B, Td, C]
    return t5Stack(
      this.config,
      this,
      'decoder',
      y,
      a.decoderAttentionMask,
      this.args(a),
      { hidden: encoderHidden, mask: a.attentionMask },
      cache,
    );
  }

  /** LM logits [B, Td, V] of decoder outputs. */
  logitsOf(hidden: tf.Tensor3D): tf.Tensor3D {
    return t5Logits(this.config, this, hidden);
  }

  /** Logits [B, Td, V]: position t of the decoder predicts labels[t] (no shift). */
  forward(a: ForwardArgs & Partial<Seq2SeqArgs>): ModelOutput & { encoderLastHiddenState: tf.Tensor3D } {
    if (!a.decoderInputIds)
      throw new ConfigError('T5 needs decoderInputIds (the labels shifted right) besides inputIds', {
        field: 'decoderInputIds',
        hint: 'shiftRight(labels, model.config) makes them, as transformers does from labels',
      });
    const encoderHidden = a.encoderHidden ?? this.encode(a);
    const hidden = this.decodeHidden(a as ForwardArgs & Seq2SeqArgs, encoderHidden);
    return { logits: t5Logits(this.config, this, hidden), encoderLastHiddenState: encoderHidden };
  }

  /** The decoder inputs transformers derives from labels (−100 allowed). */
  shiftRight(labels: number[][]): number[][] {
    return shiftRight(labels, this.config);
  }

  hfConfig(): Record<string, unknown> {
    return t5ConfigToHf(this.config);
  }

  protected override generationConfig(): Record<string, unknown> {
    return {
      decoder_start_token_id: this.config.decoderStartTokenId,
      eos_token_id: this.config.eosTokenId,
      pad_token_id: this.config.padTokenId,
      transformers_version: '4.57.6',
    };
  }

  /** Relative positions: no limit of its own. */
  get maxPositions(): number {
    return Number.POSITIVE_INFINITY;
  }

  get blockNames(): string[] {
    return t5Blocks(this.config);
  }
}
