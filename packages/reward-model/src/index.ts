// @anneal/reward-model: reward models for RLHF — a one-output sequence classifier trained
// on preference pairs with the Bradley–Terry loss, TRL's metrics, and scoring of texts.
export { bradleyTerryLoss, rewardMetrics, type RewardLossOptions, type RewardMetrics } from './loss.js';
// scoreTexts lives in @anneal/modeling (PPO and eval use it too); re-exported as this package's API
export { scoreTexts, type ScoreOptions, type ScoreTokenizer, type ScoredText } from '@anneal/modeling';
export { RewardConfigSchema, type RewardConfig } from './config.js';
export { runReward, type RewardResult } from './recipe.js';
