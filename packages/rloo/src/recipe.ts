// RLOO as a recipe (Ahmadian et al. 2024; TRL's RLOOTrainer): numGenerations completions per
// prompt, each one's reward (KL to the reference folded in) against the mean of the others
// in its group (advantages.ts), and the sequence-level clipped loss (loss.ts). Sampling, the
// generation batch, the steps over it, checkpoints and logging are the loop @anneal/training
// shares with GRPO.
import { runGroupRl, type GroupRlMethod, type GroupRlResult, type GroupRlRunOptions } from '@anneal/training';
import { rlooAdvantages } from './advantages.js';
import type { RlooConfig, RlooOptions } from './config.js';
import { rlooLoss } from './loss.js';

export const RLOO: GroupRlMethod<RlooOptions> = {
  recipe: 'rloo',
  title: 'RLOO',
  // the KL that comes off the reward is measured under the policy that sampled the completions
  alwaysOldLogps: (o) => o.beta > 0,
  advantages: (g, o) => {
    const r = rlooAdvantages(
      g.rewards,
      o,
      g.oldLogps && g.refLogps && { oldLogps: g.oldLogps, refLogps: g.refLogps, mask: g.mask, T: g.Tr },
    );
    return {
      advantages: r.advantages,
      metrics: { frac_reward_zero_std: r.fracRewardZeroStd, ...(r.kl !== undefined && { kl: r.kl }) },
    };
  },
  loss: (x, o) => rlooLoss(x, o),
};

export function runRloo(cfg: RlooConfig, configFile: string, o: GroupRlRunOptions = {}): Promise<GroupRlResult> {
  return runGroupRl(RLOO, cfg, cfg.rloo, 'rloo', configFile, o);
}
