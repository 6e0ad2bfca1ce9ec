// GRPO's group-relative advantages, as TRL's GRPOTrainer computes them: each completion's
// reward minus the mean reward of its prompt's group of numGenerations completions, scaled by
// the group's standard deviation ('group', the paper), the whole batch's ('batch', as Dr.
// GRPO's authors recommend against a per-group bias) or not at all ('none').

export type ScaleRewards = 'group' | 'batch' | 'none';

/** Unbiased standard deviation (torch.std). */
function std(xs: number[]): number {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(1, xs.length - 1));
}

/**
 * rewards [B·G] in groups of G consecutive completions -> advantages [B·G], and the fraction
 * of completions whose group's rewards have zero spread (TRL's frac_reward_zero_std: such a
 * group teaches nothing).
 */
export function groupAdvantages(
  rewards: ArrayLike<number>,
  numGenerations: number,
  scale: ScaleRewards = 'group',
): { advantages: Float32Array; fracRewardZeroStd: number } {
  const n = rewards.length;
  const G = numGenerations;
  if (G < 2 || n % G !== 0)
    throw new RangeError(`groupAdvantages: ${n} rewards do not make groups of numGenerations ${G} (>= 2)`);
  const r = Array.from(rewards);
  const advantages = new Float32Array(n);
  const batchStd = std(r);
  let zero = 0;
  for (let g = 0; g < n / G; g++) {
    const group = r.slice(g * G, (g + 1) * G);
    const mean = group.reduce((a, b) => a + b, 0) / G;
    const s = scale === 'batch' ? batchStd : std(group);
    if (Math.abs(s) <= 1e-8) zero += G; // torch.isclose(std, 0): |std| <= atol 1e-8
    for (let i = 0; i < G; i++) {
      const a = group[i] - mean;
      advantages[g * G + i] = scale === 'none' ? a : a / (s + 1e-4);
    }
  }
  return { advantages, fracRewardZeroStd: zero / n };
}
