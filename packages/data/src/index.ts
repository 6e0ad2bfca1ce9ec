export { readTextFile, TokenBlocks, tokenizeAndSplit, unigramEntropy, type TextEncoder, type TextSplits } from './text.js';
export { ShuffledSampler, type SamplerState } from './sampler.js';
