export {
  readTextFile,
  TokenBlocks,
  tokenizeAndSplit,
  unigramEntropy,
  type TextEncoder,
  type TextSplits,
} from './text.js';
export { ShuffledSampler, type SamplerState } from './sampler.js';
export {
  readRows,
  sourceFiles,
  formatOf,
  type Row,
  type RowAt,
  type SourceRow,
  type SourceSpec,
  type SourceFormat,
} from './sources.js';
export {
  toExample,
  splitSharedPrompt,
  BadRow,
  BadRowLog,
  type Example,
  type TaskFormat,
  type ColumnMap,
  type OnBadRow,
  type ChatMessage,
} from './formats.js';
export {
  tokenizeExample,
  truncate,
  TooLong,
  type DataTokenizer,
  type TokenizeOptions,
  type Tokenized,
  type TokenizedSequence,
} from './tokenize.js';
export { packGreedy, packBestFit, packedRow, type PackedRows } from './pack.js';
export {
  collateCausal,
  collateMlm,
  collateClassification,
  collatePreference,
  collateCompletions,
  IGNORE,
  type Batch,
  type PadOptions,
  type MlmOptions,
} from './collate.js';
export { hubDatasetFiles, isSplitFile, type HubDatasetOptions } from './hub.js';
export {
  DataConfigSchema,
  prepareDataset,
  type DataConfig,
  type DatasetStats,
  type PreparedDataset,
} from './dataset.js';
export { inspectDataset, formatReport, type DatasetReport } from './inspect.js';
export { randomSpansNoiseMask, roundHalfEven, spanCorrupt, spanCorruptionLengths } from './span-corruption.js';
