export { Gpt2LMHeadModel } from './gpt2/index.js';
export { GPT2_DEFAULTS, Gpt2ConfigPartialSchema, Gpt2ConfigSchema, gpt2ConfigFromHf, gpt2ConfigToHf, checkGpt2Config, type Gpt2Config } from './gpt2/config.js';
export { gpt2Forward, gpt2ParamShapes, type Params } from './gpt2/model.js';
export { attentionBias, defaultPositions, type ForwardArgs, type KvCache, type LayerKv, type ModelOutput } from './types.js';
export { causalLmLoss, causalLmLossSum, crossEntropySum, shiftedTargets, IGNORE_INDEX, type LmLoss } from './loss.js';
export { generate, processLogits, softmax, type CausalLm, type GenerateOptions } from './generate.js';
export { attention, attentionProbs, layerNorm, rmsNorm, gelu } from './ops.js';
