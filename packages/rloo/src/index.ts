// @anneal/rloo: REINFORCE Leave-One-Out with TRL's names — leave-one-out advantages with the KL
// in the reward, the sequence-level clipped loss, config and recipe.
export { rlooAdvantages, type RlooAdvantageOptions } from './advantages.js';
export { rlooLoss, type RlooLossInputs, type RlooLossOptions } from './loss.js';
export { RlooConfigSchema, RlooOptionsSchema, type RlooConfig, type RlooOptions } from './config.js';
export { RLOO, runRloo } from './recipe.js';
