// @anneal/reward-model: reward models for RLHF — a one-output sequence classifier trained
// on preference pairs with the Bradley–Terry loss, TRL's metrics, and scoring of texts.
export { bradleyTerryLoss, rewardMetrics, type RewardLossOptions, type RewardMetrics } from './loss.js';
export { scoreTexts, type ScoreOptions, type ScoreTokenizer, type ScoredText } from './score.js';
export { RewardConfigSchema, type RewardConfig } from './config.js';
export { runReward, type RewardResult } from './recipe.js';
