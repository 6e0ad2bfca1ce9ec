// T5EncoderModel: T5's shared embedding and encoder stack alone (as transformers' class of that
// name: text encoders for embeddings, retrieval or a classifier on top). Loads from its own
// checkpoints or from a whole T5ForConditionalGeneration's, whose decoder and lm_head it leaves.
import * as tf from '@tensorflow/tfjs-core';
import { applyLayer, type LayerFactory } from '../layers.js';
import { PretrainedModel, readHfConfig, readWeights, weightsFromTensors, type LoadOptions } from '../pretrained.js';
import type { ForwardArgs, ModelOutput } from '../types.js';
import { t5ConfigFromHf, t5ConfigToHf, type T5Config } from './config.js';
import { initT5Params, t5Blocks, t5Layers, t5ParamShapes, t5Stack, type Params } from './model.js';

const ofEncoder = (name: string) => name === 'shared' || name.startsWith('shared.') || name.startsWith('encoder.');

export class T5EncoderModel extends PretrainedModel {
  readonly modelType = 't5';

  private constructor(
    readonly config: T5Config,
    params: Params,
    prebuilt?: Map<string, LayerFactory>,
  ) {
    // the shared table is only an embedding here (no LM head to tie it to)
    super(params, encoderLayers(config), prebuilt);
  }

  static init(config: T5Config, seed: number): T5EncoderModel {
    // the whole model's initialisation, decoder dropped: the encoder's weights are drawn as T5's are
    const all = initT5Params(config, seed);
    for (const [name, p] of all)
      if (!ofEncoder(name)) {
        p.dispose();
        all.delete(name);
      }
    return new T5EncoderModel(config, all);
  }

  static fromPretrained(dir: string, o: LoadOptions = {}): T5EncoderModel {
    const { hf, file } = readHfConfig(dir);
    const config = t5ConfigFromHf({ tie_word_embeddings: true, ...hf }, file);
    const { tensors, file: weights } = readWeights(dir);
    const { params, prebuilt } = weightsFromTensors(
      t5ParamShapes(config).filter(([name]) => ofEncoder(name)),
      encoderLayers(config),
      tensors,
      weights,
      (name) => (name === 'shared.weight' ? ['encoder.embed_tokens.weight'] : []),
      [/^encoder\.embed_tokens\.weight$/, /^decoder\./, /^lm_head\.weight$/],
      o.weights,
    );
    return new T5EncoderModel(config, params, prebuilt);
  }

  /**
   * The encoder's last hidden state [B, T, C] (transformers' last_hidden_state). An encoder has
   * no head: `logits` is the same tensor, as ModelOutput requires one.
   */
  forward(a: ForwardArgs): ModelOutput & { lastHiddenState: tf.Tensor3D } {
    const x = applyLayer(this, 'shared', a.inputIds) as tf.Tensor3D; // [B, T, C]
    const hidden = t5Stack(this.config, this, 'encoder', x, a.attentionMask, {
      training: a.training ?? this.training,
      dropoutSeed: a.dropoutSeed ?? 0,
      gradientCheckpointing: a.gradientCheckpointing ?? this.gradientCheckpointing,
    });
    return { logits: hidden, lastHiddenState: hidden };
  }

  hfConfig(): Record<string, unknown> {
    return { ...t5ConfigToHf(this.config), architectures: ['T5EncoderModel'] };
  }

  protected override generationConfig(): Record<string, unknown> {
    return { pad_token_id: this.config.padTokenId, transformers_version: '4.57.6' };
  }

  get maxPositions(): number {
    return Number.POSITIVE_INFINITY;
  }

  get blockNames(): string[] {
    return t5Blocks(this.config).filter(ofEncoder);
  }
}

function encoderLayers(c: T5Config) {
  return t5Layers(c)
    .filter((s) => ofEncoder(s.name))
    .map((s) => (s.kind === 'embedding' ? { ...s, tiedToHead: false } : s));
}
