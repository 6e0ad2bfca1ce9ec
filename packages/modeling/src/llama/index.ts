// LlamaForCausalLM (and Qwen2ForCausalLM / MistralForCausalLM): config, parameters, the
// forward pass and the Hugging Face checkpoint format.
import type * as tf from '@tensorflow/tfjs-core';
import { PretrainedModel, readHfConfig, readWeights, weightsFromTensors, type LoadOptions } from '../pretrained.js';
import type { LayerFactory } from '../layers.js';
import type { ForwardArgs, ModelOutput } from '../types.js';
import { checkLlamaConfig, llamaConfigFromHf, llamaConfigToHf, type LlamaConfig } from './config.js';
import type { LmHead } from '../lm-head.js';
import {
  initLlamaParams,
  llamaBlocks,
  llamaForward,
  llamaHead,
  llamaHidden,
  llamaLayers,
  llamaParamShapes,
  type Params,
} from './model.js';

export class LlamaForCausalLM extends PretrainedModel {
  get modelType(): string {
    return this.config.modelType;
  }

  private constructor(
    readonly config: LlamaConfig,
    params: Params,
    prebuilt?: Map<string, LayerFactory>,
  ) {
    super(params, llamaLayers(config), prebuilt);
  }

  static init(config: LlamaConfig, seed: number): LlamaForCausalLM {
    checkLlamaConfig(config);
    return new LlamaForCausalLM(config, initLlamaParams(config, seed));
  }

  /** Loads a Hugging Face Llama / Qwen2 / Mistral folder (config.json + safetensors). */
  static fromPretrained(dir: string, o: LoadOptions = {}): LlamaForCausalLM {
    const { hf, file } = readHfConfig(dir);
    const config = llamaConfigFromHf(hf, file);
    checkLlamaConfig(config, file);
    const { tensors, file: weights } = readWeights(dir);
    // A tied checkpoint may still carry lm_head.weight; old ones carry rotary buffers. A
    // multimodal Gemma 3 keeps the language model under model.language_model. (transformers
    // 4.5x) or language_model.model. (the original checkpoints), next to its vision tower.
    const multimodal = hf.model_type === 'gemma3';
    const ignore = [
      /rotary_emb\.inv_freq$/,
      ...(config.tieWordEmbeddings ? [/^(language_model\.)?lm_head\.weight$/] : []),
      ...(multimodal ? [/^(model\.)?(vision_tower|multi_modal_projector)\./] : []),
    ];
    const alias = (n: string) =>
      multimodal ? [n.replace(/^model\./, 'model.language_model.'), `language_model.${n}`] : [];
    const { params, prebuilt } = weightsFromTensors(
      llamaParamShapes(config),
      llamaLayers(config),
      tensors,
      weights,
      alias,
      ignore,
      o.weights,
    );
    return new LlamaForCausalLM(config, params, prebuilt);
  }

  forward(a: ForwardArgs): ModelOutput & { logits: tf.Tensor3D } {
    return llamaForward(this.config, this, {
      training: this.training,
      gradientCheckpointing: this.gradientCheckpointing,
      ...a,
    }) as ModelOutput & {
      logits: tf.Tensor3D;
    };
  }

  /** The final hidden states [B, T, C] (after the last norm), without the LM head (see lmHead). */
  hidden(a: ForwardArgs): tf.Tensor3D {
    return llamaHidden(this.config, this, {
      training: this.training,
      gradientCheckpointing: this.gradientCheckpointing,
      ...a,
    }).hidden;
  }

  /** The LM head (hidden rows to logits, soft-capped as forward caps them), for a chunked loss. */
  lmHead(): LmHead {
    return llamaHead(this.config, this);
  }

  hfConfig(): Record<string, unknown> {
    return llamaConfigToHf(this.config);
  }

  get maxPositions(): number {
    return this.config.maxPositionEmbeddings;
  }

  /** Takes a static cache; its decode step is one program at every token except under longrope (factors picked by length). */
  override get staticCache(): { replayable: boolean } {
    const rs = this.config.ropeScaling;
    return { replayable: (rs?.rope_type ?? rs?.type) !== 'longrope' };
  }

  get blockNames(): string[] {
    return llamaBlocks(this.config);
  }
}
