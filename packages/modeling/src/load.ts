// loadPretrained: a model folder (or a Hub repo id, through the Hugging Face cache) to the
// architecture its config.json names.
import { ConfigError } from '@anneal/core';
import { BertModelWithHead } from './bert/index.js';
import { DecoderForSequenceClassification } from './classify.js';
import { DistilBertModelWithHead } from './distilbert/index.js';
import { Gpt2LMHeadModel } from './gpt2/index.js';
import { localModelDir, type HubOptions } from './hub.js';
import { checkGpt2Config, gpt2ConfigFromHf } from './gpt2/config.js';
import { LLAMA_FAMILY, checkLlamaConfig, llamaConfigFromHf } from './llama/config.js';
import { LlamaForCausalLM } from './llama/index.js';
import { T5EncoderModel } from './t5/encoder.js';
import { T5ForConditionalGeneration } from './t5/index.js';
import { readHfConfig, type LoadOptions, type PretrainedModel } from './pretrained.js';

/** Loads the model of a local folder, by its config.json's architectures and model_type. */
export function loadPretrainedSync(dir: string, o: LoadOptions = {}): PretrainedModel {
  const { hf, file } = readHfConfig(dir);
  if (hf.quantization_config && !o.weights) {
    const q = hf.quantization_config as Record<string, unknown>;
    throw new ConfigError(
      `this checkpoint is quantized (${String(q.quant_method)} ${q.load_in_8bit ? 'int8' : String(q.bnb_4bit_quant_type)}): its weights are not float32`,
      {
        file,
        field: 'quantization_config',
        hint: 'load it with loadQuantized from @anneal/quantization; in a trainer config, train it with a peft: block (QLoRA)',
      },
    );
  }
  const arch = Array.isArray(hf.architectures) ? String(hf.architectures[0]) : '';
  const decoder = ['gpt2', ...LLAMA_FAMILY].includes(String(hf.model_type));
  if (/ForSequenceClassification$/.test(arch) && decoder)
    return DecoderForSequenceClassification.fromPretrained(dir, o);
  switch (hf.model_type) {
    case 'gpt2':
      return Gpt2LMHeadModel.fromPretrained(dir, o);
    case 'bert':
      return BertModelWithHead.fromPretrained(dir, o);
    case 'distilbert':
      return DistilBertModelWithHead.fromPretrained(dir, o);
    case 't5':
      return arch === 'T5EncoderModel'
        ? T5EncoderModel.fromPretrained(dir, o)
        : T5ForConditionalGeneration.fromPretrained(dir, o);
    case 'gemma3': // the multimodal config: its text_config is the language model's
      if (!hf.text_config) throw new ConfigError('a gemma3 config without text_config', { file, field: 'text_config' });
      return LlamaForCausalLM.fromPretrained(dir, o);
    default:
      if ((LLAMA_FAMILY as readonly string[]).includes(String(hf.model_type)))
        return LlamaForCausalLM.fromPretrained(dir, o);
      throw new ConfigError(`model_type ${JSON.stringify(hf.model_type)} is not supported`, {
        file,
        field: 'model_type',
        hint: `supported: gpt2, ${LLAMA_FAMILY.join(', ')}, bert, distilbert, t5`,
      });
  }
}

/**
 * A randomly initialised causal LM (seeded) from config.json fields as transformers names them
 * (`model_type` picks the family; every other field has its class default).
 */
export function initFromHfConfig(hf: Record<string, unknown>, seed: number, file?: string): PretrainedModel {
  if (hf.model_type === 'gpt2') {
    const config = gpt2ConfigFromHf(hf, file);
    checkGpt2Config(config, file);
    return Gpt2LMHeadModel.init(config, seed);
  }
  if (!(LLAMA_FAMILY as readonly string[]).includes(String(hf.model_type)))
    throw new ConfigError(`model_type ${JSON.stringify(hf.model_type)} cannot be initialised from a config`, {
      file,
      field: 'model.init.model_type',
      hint: `one of: gpt2, ${LLAMA_FAMILY.join(', ')}`,
    });
  const config = llamaConfigFromHf(hf, file);
  checkLlamaConfig(config, file);
  return LlamaForCausalLM.init(config, seed);
}

/**
 * Loads a model from a folder, or from a Hub repo id ("org/name") downloaded into (or, with
 * HF_HUB_OFFLINE=1, found in) the standard Hugging Face cache.
 */
export async function loadPretrained(
  dirOrRepoId: string,
  o: HubOptions & LoadOptions & { dtype?: 'float32' | 'float16' | 'bfloat16' } = {},
): Promise<PretrainedModel> {
  // Weights stored as F16/BF16 are widened on load; the models compute in float32 (bf16
  // matmuls come from the torch backend's autocast, not from the stored dtype).
  if (o.dtype && o.dtype !== 'float32')
    throw new ConfigError(`dtype ${o.dtype} is not supported for loading: models run in float32`, {
      field: 'dtype',
      hint: 'omit dtype (F16/BF16 checkpoints are converted on load), and use autocast: bf16 on the torch backend for bf16 compute',
    });
  return loadPretrainedSync(await localModelDir(dirOrRepoId, o), o);
}

/**
 * A sequence-classification model with `labels` from any supported checkpoint: loaded as
 * is when it already is one with these labels, else its encoder or decoder trunk with a
 * fresh classification head (BERT/DistilBERT MLM -> *ForSequenceClassification, GPT-2/Llama LM ->
 * *ForSequenceClassification, padTokenId locating each sequence's last token).
 */
export function classifierFrom(
  model: PretrainedModel,
  labels: string[],
  padTokenId: number,
  seed: number,
): PretrainedModel {
  const arch = String((model.hfConfig().architectures as string[] | undefined)?.[0]);
  if (/ForSequenceClassification$/.test(arch)) {
    const id2label = Object.values((model.hfConfig().id2label ?? {}) as Record<string, string>);
    if (id2label.join('\u0000') === labels.join('\u0000')) return model;
  }
  if (model instanceof BertModelWithHead) return model.withHead('classifier', labels, seed);
  if (model instanceof DistilBertModelWithHead) return model.withClassifier(labels, seed);
  if (model instanceof Gpt2LMHeadModel)
    return DecoderForSequenceClassification.init(
      { arch: 'gpt2', config: model.config },
      { numLabels: labels.length, padTokenId, labels },
      seed,
      model,
    );
  if (model instanceof LlamaForCausalLM)
    return DecoderForSequenceClassification.init(
      { arch: 'llama', config: model.config },
      { numLabels: labels.length, padTokenId, labels },
      seed,
      model,
    );
  throw new ConfigError(`cannot put a classification head on ${arch}`, {
    hint: 'use a BERT, DistilBERT, GPT-2 or Llama-family (Qwen2/Qwen3, Mistral, SmolLM3, Phi-3, Gemma 3) checkpoint',
  });
}
