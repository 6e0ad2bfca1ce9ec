// @anneal/grpo: Group Relative Policy Optimization with TRL's names — so far its loss (every
// lossType, clipping, KL, sequence-level weights) and group advantages; the recipe (rollouts
// from reward functions and models, the training loop) is not built yet.
export { grpoLoss, type GrpoLossInputs, type GrpoLossOptions, type GrpoLossResult, type GrpoLossType } from './loss.js';
export { groupAdvantages, type ScaleRewards } from './advantages.js';
