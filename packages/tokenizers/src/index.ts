export { ByteLevelBpe, type SpecialToken } from './bpe.js';
export { trainByteLevelBpe, type TrainBpeOptions } from './train-bpe.js';
export { loadTokenizerJson, loadGpt2Files, saveTokenizer, type TokenizerInfo } from './files.js';
export { BYTE_TO_CHAR, toByteLevel, fromByteLevel, pretokenize } from './byte-level.js';
