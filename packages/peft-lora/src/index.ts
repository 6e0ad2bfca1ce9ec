// @anneal/peft-lora: LoRA adapters for any Anneal model, in PEFT's file format.
export {
  LoraConfigSchema,
  PEFT_0_10_KEYS,
  PEFT_FLOAT_KEYS,
  fromPeftConfig,
  loraScaling,
  peftTaskType,
  toPeftConfig,
  type LoraConfig,
} from './config.js';
export { findTargets, moduleMatches, type LoraTarget } from './targets.js';
export { LoraModel, PEFT_PREFIX } from './lora-model.js';
export { LoraEmbedding, LoraLinear, type LoraLayer, type LoraState } from './lora-layer.js';
export { isAdapterDir, loadAdapter } from './format.js';
