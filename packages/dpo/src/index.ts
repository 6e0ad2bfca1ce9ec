// @anneal/dpo: Direct Preference Optimization with TRL's losses, defaults and metric names, and the
// reference-free preference recipes beside it: ORPO and CPO (SimPO, AlphaPO).
export { dpoLoss, type DpoLossType, type DpoLogps, type DpoLossOptions, type DpoLossResult } from './loss.js';
export {
  cpoLoss,
  log1mexp,
  orpoLoss,
  type CpoLossOptions,
  type CpoLossType,
  type OrpoResult,
} from './reference-free.js';
export { batchLogps, batchLogpsOfTargets, logpsTargets, type BatchLogps } from '@anneal/training';
export { dpoMetrics, type DpoBatchStats } from './metrics.js';
export {
  concatenatedForward,
  pairLogps,
  cachedReferenceLogps,
  referenceKey,
  type Pair,
  type PairLogps,
} from './reference.js';
export { DpoConfigSchema, DpoOptionsSchema, type DpoConfig, type DpoOptions } from './config.js';
export { runDpo, type DpoResult } from './recipe.js';
export {
  CpoConfigSchema,
  CpoOptionsSchema,
  OrpoConfigSchema,
  OrpoOptionsSchema,
  type CpoConfig,
  type OrpoConfig,
} from './reference-free-config.js';
export { runCpo, runOrpo } from './reference-free-recipe.js';
