export { Gpt2LMHeadModel } from './gpt2/index.js';
export {
  GPT2_DEFAULTS,
  Gpt2ConfigPartialSchema,
  Gpt2ConfigSchema,
  gpt2ConfigFromHf,
  gpt2ConfigToHf,
  checkGpt2Config,
  type Gpt2Config,
} from './gpt2/config.js';
export { gpt2Forward, gpt2Head, gpt2Layers, gpt2ParamShapes, type Params } from './gpt2/model.js';
export {
  attentionBias,
  defaultPositions,
  type ForwardArgs,
  type KvCache,
  type LayerKv,
  type ModelOutput,
} from './types.js';
export {
  causalLmLoss,
  causalLmLossSum,
  causalLmTargets,
  crossEntropySumOfTargets,
  linearCrossEntropySum,
  crossEntropySum,
  tokenLogprobs,
  pickTargets,
  IGNORE_INDEX,
  type LmLoss,
} from './loss.js';
export {
  generate,
  processLogits,
  softmax,
  type CausalLm,
  type GenerateOptions,
  type GenerateStats,
} from './generate.js';
export { StaticKvCache, staticCacheBias } from './kv-cache.js';
export { lmHeadOf, softcap, type LmHead } from './lm-head.js';
export { chunkRowsFor, headCrossEntropySum, headTargetLogprobs, type HeadPass } from './head-chunks.js';
export {
  addProduct,
  applyRotary,
  attention,
  attentionProbs,
  gatedActivation,
  layerNorm,
  rmsNorm,
  gelu,
  logSigmoid,
  type AttentionDropout,
} from './ops.js';
export {
  PretrainedModel,
  TRANSFORMERS_FLOAT_KEYS,
  readHfConfig,
  readWeights,
  requireFloatTrunk,
  weightsFromTensors,
  type LoadedWeights,
  type LoadOptions,
  type WeightLoader,
} from './pretrained.js';
export { LlamaForCausalLM } from './llama/index.js';
export {
  LLAMA_DEFAULTS,
  QWEN2_DEFAULTS,
  LlamaConfigSchema,
  llamaConfigFromHf,
  llamaConfigToHf,
  checkLlamaConfig,
  headDimOf,
  layerKinds,
  ropeLayers,
  type LlamaConfig,
} from './llama/config.js';
export {
  llamaForward,
  llamaHead,
  llamaHidden,
  llamaLayers,
  llamaParamShapes,
  ropeAttentionFactor,
  ropeInvFreq,
  rotaryDim,
} from './llama/model.js';
export { loadPretrained, loadPretrainedSync, classifierFrom, initFromHfConfig } from './load.js';
export { resolveRepo, cachedSnapshot, localModelDir, type HubOptions } from './hub.js';
export { DecoderForSequenceClassification, type ClassifierOptions, type DecoderConfig } from './classify.js';
export { BertModelWithHead } from './bert/index.js';
export { BERT_DEFAULTS, BertConfigSchema, bertConfigFromHf, bertConfigToHf, type BertConfig } from './bert/config.js';
export { bertEncoder, bertLayers, bertParamShapes, type BertHead } from './bert/model.js';
export {
  DistilBertModelWithHead,
  distilBertAsBert,
  distilBertEncoderNames,
  DISTILBERT_DEFAULTS,
  distilBertConfigFromHf,
  type DistilBertConfig,
} from './distilbert/index.js';
export { T5ForConditionalGeneration, type Seq2SeqArgs } from './t5/index.js';
export { T5EncoderModel } from './t5/encoder.js';
export { seq2seqGenerate, type Seq2SeqGenerateOptions } from './t5/generate.js';
export { T5_DEFAULTS, T5ConfigSchema, t5ConfigFromHf, t5ConfigToHf, type T5Config } from './t5/config.js';
export { relativePositionBucket, shiftRight, t5ParamShapes } from './t5/model.js';
export { readHfFixture, maxLogitDiff, tinyGpt2, tinyLlama, type HfFixture } from './fixtures.js';
export {
  Embedding,
  Linear,
  applyLayer,
  blockVariables,
  buildLayers,
  layerChain,
  layersUnder,
  type EmbeddingLayer,
  type Layer,
  type LayerFactory,
  type LayerSpec,
  type Layout,
  type Modules,
  type ProjectionLayer,
  type ProjectionRole,
} from './layers.js';
export { scoreTexts, type ScoreOptions, type ScoreTokenizer, type ScoredText } from './score.js';
