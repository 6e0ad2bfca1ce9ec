// @anneal/dpo: Direct Preference Optimization with TRL's losses, defaults and metric names.
export { dpoLoss, type DpoLossType, type DpoLogps, type DpoLossOptions, type DpoLossResult } from './loss.js';
export {
  cpoLoss,
  log1mexp,
  orpoLoss,
  type CpoLossOptions,
  type CpoLossType,
  type OrpoResult,
} from './reference-free.js';
export { batchLogps, batchLogpsOfTargets, logpsTargets, type BatchLogps } from './logps.js';
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
