// GPT2LMHeadModel: config + parameters + the forward pass, and the Hugging Face
// checkpoint format (config.json + model.safetensors, tied lm_head left out).
import type * as tf from '@tensorflow/tfjs-core';
import { PretrainedModel, readHfConfig, readWeights, weightsFromTensors, type LoadOptions } from '../pretrained.js';
import type { LayerFactory } from '../layers.js';
import type { LmHead } from '../lm-head.js';
import { checkGpt2Config, gpt2ConfigFromHf, gpt2ConfigToHf, type Gpt2Config } from './config.js';
import {
  gpt2Blocks,
  gpt2Forward,
  gpt2Head,
  gpt2Hidden,
  gpt2Layers,
  gpt2ParamShapes,
  initGpt2Params,
  type Params,
} from './model.js';
import type { ForwardArgs, ModelOutput } from '../types.js';

export class Gpt2LMHeadModel extends PretrainedModel {
  readonly modelType = 'gpt2';

  private constructor(
    readonly config: Gpt2Config,
    params: Params,
    prebuilt?: Map<string, LayerFactory>,
  ) {
    super(params, gpt2Layers(config), prebuilt);
  }

  /** A randomly initialised model (seeded). */
  static init(config: Gpt2Config, seed: number): Gpt2LMHeadModel {
    checkGpt2Config(config);
    return new Gpt2LMHeadModel(config, initGpt2Params(config, seed));
  }

  /** Loads a Hugging Face GPT-2 folder (config.json + safetensors). */
  static fromPretrained(dir: string, o: LoadOptions = {}): Gpt2LMHeadModel {
    const { hf, file } = readHfConfig(dir);
    const config = gpt2ConfigFromHf(hf, file);
    checkGpt2Config(config, file);
    const { tensors, file: weights } = readWeights(dir);
    // Checkpoints of the bare GPT2Model (like the original "gpt2" repo) have no "transformer."
    // prefix; some carry the tied lm_head and the attention-mask buffers.
    const ignore = [/^lm_head\.weight$/, /attn\.(masked_)?bias$/];
    const { params, prebuilt } = weightsFromTensors(
      gpt2ParamShapes(config),
      gpt2Layers(config),
      tensors,
      weights,
      (n) => [n.replace(/^transformer\./, '')],
      ignore,
      o.weights,
    );
    return new Gpt2LMHeadModel(config, params, prebuilt);
  }

  /** ids [B, T] -> logits [B, T, V] (and the KV cache, hidden states, attentions on request). */
  forward(a: ForwardArgs): ModelOutput & { logits: tf.Tensor3D } {
    return gpt2Forward(this.config, this, {
      training: this.training,
      gradientCheckpointing: this.gradientCheckpointing,
      ...a,
    }) as ModelOutput & {
      logits: tf.Tensor3D;
    };
  }

  /** The final hidden states [B, T, C] (after ln_f), without the LM head (see lmHead). */
  hidden(a: ForwardArgs): tf.Tensor3D {
    return gpt2Hidden(this.config, this, {
      training: this.training,
      gradientCheckpointing: this.gradientCheckpointing,
      ...a,
    }).hidden;
  }

  /** The LM head (hidden rows to logits), for a loss computed a chunk of rows at a time. */
  lmHead(): LmHead {
    return gpt2Head(this.config, this);
  }

  /** The LM head's weight [V, C]: the token embedding, tied. */
  get lmHeadWeight(): tf.Variable<tf.Rank.R2> {
    return this.params.get('transformer.wte.weight')! as tf.Variable<tf.Rank.R2>;
  }

  hfConfig(): Record<string, unknown> {
    return gpt2ConfigToHf(this.config);
  }

  /** Takes a static cache, and its decode step is the same program at every token. */
  override get staticCache(): { replayable: boolean } {
    return { replayable: true };
  }

  get maxPositions(): number {
    return this.config.nPositions;
  }

  get blockNames(): string[] {
    return gpt2Blocks(this.config);
  }
}
