// GRPO as a recipe (Shao et al. 2024; TRL's GRPOTrainer): for each prompt a group of
// numGenerations completions, rewards from functions and reward models, each completion's
// advantage its reward against its group's (advantages.ts), and the clipped per-token loss
// with an optional KL term to the reference (loss.ts). Sampling, the generation batch, the
// steps over it, checkpoints and logging are the loop @anneal/training shares with RLOO.
import { runGroupRl, type GroupRlMethod, type GroupRlResult, type GroupRlRunOptions } from '@anneal/training';
import { groupAdvantages } from './advantages.js';
import type { GrpoConfig, GrpoOptions } from './config.js';
import { grpoLoss } from './loss.js';

export const GRPO: GroupRlMethod<GrpoOptions> = {
  recipe: 'grpo',
  title: 'GRPO',
  advantages: (g, o) => {
    const { advantages, fracRewardZeroStd } = groupAdvantages(g.rewards, o.numGenerations, o.scaleRewards);
    return { advantages, metrics: { frac_reward_zero_std: fracRewardZeroStd } };
  },
  loss: (x, o) =>
    grpoLoss(x, {
      lossType: o.lossType,
      beta: o.beta,
      epsilon: o.epsilon,
      epsilonHigh: o.epsilonHigh,
      delta: o.delta,
      importanceSamplingLevel: o.importanceSamplingLevel,
      maxCompletionLength: o.maxCompletionLength,
    }),
};

export function runGrpo(cfg: GrpoConfig, configFile: string, o: GroupRlRunOptions = {}): Promise<GroupRlResult> {
  return runGroupRl(GRPO, cfg, cfg.grpo, 'grpo', configFile, o);
}
