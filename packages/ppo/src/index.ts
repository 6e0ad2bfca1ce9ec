// @anneal/ppo: RLHF with Proximal Policy Optimization — GAE, KL control, clipped policy and
// value losses, rollouts with a reward model or a reward function.
export { gae, maskedWhiten, maskedMoments } from './advantages.js';
export { klPerToken, AdaptiveKlController, FixedKlController, type KlController, type KlEstimator } from './kl.js';
export { ppoPolicyLoss, ppoValueLoss, type PolicyLossResult, type ValueLossResult } from './losses.js';
export {
  layout,
  layoutLogprobs,
  sampleResponses,
  responseLogprobs,
  responseValues,
  type RolloutBatch,
} from './rollout.js';
export { ppoUpdate, rollout, type PpoModels, type RewardFn, type UpdateResult } from './trainer.js';
export { PpoConfigSchema, PpoOptionsSchema, type PpoConfig, type PpoOptions } from './config.js';
export { runPpo, type PpoRunOptions, type PpoResult } from './recipe.js';
