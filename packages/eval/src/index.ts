export { levenshtein, wer, cer } from './edit-distance.js';
export {
  exactMatch,
  distinctN,
  charEntropy,
  accuracy,
  precision,
  recall,
  f1,
  winRate,
  type Average,
} from './simple.js';
export { bleu, sentenceBleu, sacreBleu, tokenize13a, type BleuOptions } from './bleu.js';
export { rouge, rougePair, rougeTokens, type RougeScore, type RougeType } from './rouge.js';
export { perplexity, selfConsistency, type TextTokenizer } from './lm.js';
export { meteor, singleMeteor, type MeteorOptions } from './meteor.js';
export { WordNet, loadWordNet, wordnetDir } from './wordnet.js';
export { porterStem } from './rouge.js';
export {
  EvalConfigSchema,
  runEval,
  evalOutputDir,
  writeEvalResults,
  type EvalConfig,
  type EvalTokenizer,
  type EvalProgress,
} from './run-eval.js';
