// @anneal/grpo: Group Relative Policy Optimization with TRL's names — its loss (every
// lossType, clipping, KL, sequence-level weights), group advantages, config and recipe.
export { grpoLoss, type GrpoLossInputs, type GrpoLossOptions, type GrpoLossResult, type GrpoLossType } from './loss.js';
export { groupAdvantages, type ScaleRewards } from './advantages.js';
export { GrpoConfigSchema, GrpoOptionsSchema, type GrpoConfig, type GrpoOptions } from './config.js';
export { GRPO, runGrpo } from './recipe.js';
