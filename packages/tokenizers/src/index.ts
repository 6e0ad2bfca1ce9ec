export {
  Tokenizer,
  type BatchEncoding,
  type BatchOptions,
  type EncodeOptions,
  type TokenizerParts,
} from './tokenizer.js';
export {
  loadTokenizer,
  loadTokenizerSync,
  loadGpt2Files,
  loadBertVocab,
  loadT5Spm,
  fromTokenizerJson,
  byteLevelBpeTokenizer,
} from './load.js';
export { tokenizerConfigJson, tokenizerFingerprint, tokenizerJson } from './save.js';
export { t5TokenizerJsonFromSpm, readSpmModel } from './spm-model.js';
export { PrecompiledCharsmap } from './precompiled.js';
export { readTokenizerConfig, type TokenizerConfig } from './config.js';
export {
  trainByteLevelBpe,
  trainWordPiece,
  trainBpeCore,
  type TrainOptions,
  type TrainTokenizerOptions,
  type TextSource,
} from './train-bpe.js';
export { Bpe, WordPiece, Unigram, type Model, type Token } from './models.js';
export type { AddedToken } from './added-tokens.js';
export type { Encoding } from './post-processors.js';
export { BYTE_TO_CHAR, toByteLevel, fromByteLevel, pretokenize } from './byte-level.js';
export { renderChatTemplate, encodeChat, type ChatMessage, type ChatTemplateOptions } from './chat.js';
export {
  TrainTokenizerConfigSchema,
  trainTokenizerFromConfig,
  readTextChunks,
  type TrainTokenizerConfig,
} from './train-config.js';
