// @anneal/kto: Kahneman-Tversky Optimization with TRL's names — its loss, config and recipe
// (unpaired desirable/undesirable completions against a KL reference point).
export { ktoLoss, type KtoLogps, type KtoLossOptions, type KtoLossResult, type KtoLossType } from './loss.js';
export { KtoConfigSchema, KtoOptionsSchema, type KtoConfig, type KtoOptions } from './config.js';
export { runKto, unpaired } from './recipe.js';
