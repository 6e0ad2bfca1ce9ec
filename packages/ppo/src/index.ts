// @anneal/ppo: RLHF with Proximal Policy Optimization — GAE, KL control, clipped policy and
// value losses, on the rollouts @anneal/training shares with GRPO and RLOO.
export { gae } from './advantages.js';
export { AdaptiveKlController, FixedKlController, type KlController } from './kl.js';
export { ppoPolicyLoss, ppoValueLoss, type PolicyLossResult, type ValueLossResult } from './losses.js';
export { responseValues } from './values.js';
export { ppoUpdate, rollout, type PpoModels, type RewardFn, type UpdateResult } from './trainer.js';
export { PpoConfigSchema, PpoOptionsSchema, type PpoConfig, type PpoOptions } from './config.js';
export { runPpo, type PpoRunOptions, type PpoResult } from './recipe.js';
