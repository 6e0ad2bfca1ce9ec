// @anneal/training: what every method recipe (trainers, reward-model, dpo, ppo) shares — the
// outer loop (runLoop) and the supervised step on it (trainLoop), the run folder and its atomic checkpoints, the optimizer and logger set-up,
// LoRA/QLoRA wiring, and the `train:`/`optim:`/`schedule:` config schemas.
export { trainLoop, type LoopConfig, type LoopParts, type RunContext, type TrainableModel } from './loop.js';
export {
  requireSameWorld,
  runLoop,
  type LoopResult,
  type RunLoopConfig,
  type RunLoopParts,
  type UpdateOutcome,
} from './run-loop.js';
export type { RunOptions, RecipeResult } from './options.js';
export { silentReporter, type Reporter, type StepReport } from './reporter.js';
export { accumulatedGradients, guardedUpdate, handleNonFinite, type LossSum } from './step.js';
export { TokenTally, tokenMetrics } from './token-metrics.js';
export { causalLmBatchLoss } from './lm-loss.js';
export { liveTensorBytes, memoryReport } from './memory-report.js';
export { OptimSchema, ScheduleSchema } from './schemas.js';
export {
  LmTrainSchema,
  TrainSchema,
  lossChunkField,
  trainFields,
  oneStopCondition,
  runFields,
} from './schemas-train.js';
export {
  openRunFolder,
  saveCheckpoint,
  flattenHparams,
  makeOptimizer,
  openLogger,
  type OpenedRun,
  type CheckpointParts,
} from './run-folder.js';
export { baseWeightsFrom, loadBase, withAdapter } from './peft.js';
export { localModelDir } from '@anneal/modeling';
export { packageVersions } from './versions.js';
export { tinyGpt2Dir, pairTexts, SENTIMENT_PAIRS } from './testing.js';
export { requireCausalLm, requireFits, requireTokenizerFits } from './checks.js';
export {
  computeRewards,
  loadRewardFunction,
  loadRewardFunctions,
  type NamedReward,
  type RewardFunction,
  type RewardFunctionSpec,
} from './reward-functions.js';
export {
  layout,
  layoutLogprobs,
  sampleResponses,
  responseLogprobs,
  forwardArgs,
  rowsOf,
  type RolloutBatch,
  type SamplingSettings,
} from './rl/rollout.js';
export { klPerToken, type KlEstimator } from './rl/kl.js';
export { maskedMoments, maskedWhiten } from './rl/whiten.js';
export { RewardSourceSchema, loadRewardSources, rewardModelFunction, type RewardSource } from './rl/reward-sources.js';
export { loadPolicy, type Policy, type PolicySettings } from './rl/policy.js';
export { readPrompts, type PromptRow, type PromptSource } from './rl/prompts.js';
export { groupRlFields, groupRlRunFields, type GroupRlOptions, type GroupRlRunConfig } from './rl/group-schema.js';
export {
  completionMetrics,
  generationShape,
  rewardMetrics,
  runGroupRl,
  type Generation,
  type GroupLossInputs,
  type GroupRlMethod,
  type GroupRlResult,
  type GroupRlRunOptions,
} from './rl/group-rl.js';
export { batchLogps, batchLogpsOfTargets, logpsTargets, modelBatchLogps, type BatchLogps } from './sequence-logps.js';
export { heldOutMeans, type HeldOutBatch } from './held-out.js';
export { openOfflineRun, type OfflineRunSettings } from './rl/offline-run.js';
