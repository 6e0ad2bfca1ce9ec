// RLOO's advantages (Ahmadian et al. 2024, "Back to Basics"), as TRL's RLOOTrainer computes
// them: the reward (clipped to rewardClipRange, minus beta × the completion's summed k1 KL to
// the reference: the KL is part of the reward, not a loss term) against the mean reward of the
// other numGenerations − 1 completions of its prompt — the leave-one-out baseline
//   A_i = r_i − (Σ_j r_j − r_i) / (G − 1)
// optionally normalized over the whole generation batch (mean 0, std 1).

/** Unbiased standard deviation (torch.std). */
function std(xs: ArrayLike<number>): number {
  const a = Array.from(xs);
  const m = a.reduce((s, x) => s + x, 0) / a.length;
  return Math.sqrt(a.reduce((s, x) => s + (x - m) ** 2, 0) / Math.max(1, a.length - 1));
}

export interface RlooAdvantageOptions {
  numGenerations: number;
  /** KL coefficient: beta × Σ_t (old − ref) comes off each completion's reward. */
  beta?: number;
  /** Clamp rewards to [min, max] first. */
  rewardClipRange?: [number, number];
  normalizeAdvantages?: boolean;
}

/**
 * rewards [N] in groups of G consecutive completions -> advantages [N]; with beta > 0 the
 * per-token log-probs under the sampling policy and the reference ([N, T], masked by `mask`)
 * give each completion's KL. Also returns the rewards the baseline saw, the mean per-token KL
 * (TRL's kl) and frac_reward_zero_std.
 */
export function rlooAdvantages(
  rewards: ArrayLike<number>,
  o: RlooAdvantageOptions,
  kl?: { oldLogps: ArrayLike<number>; refLogps: ArrayLike<number>; mask: ArrayLike<number>; T: number },
): { advantages: Float32Array; rewards: Float32Array; kl?: number; fracRewardZeroStd: number } {
  const n = rewards.length;
  const G = o.numGenerations;
  if (G < 2 || n % G !== 0)
    throw new RangeError(`rlooAdvantages: ${n} rewards do not make groups of numGenerations ${G} (>= 2)`);
  const r = Float64Array.from(rewards);
  if (o.rewardClipRange) {
    const [lo, hi] = o.rewardClipRange;
    r.forEach((v, i) => (r[i] = Math.min(hi, Math.max(lo, v))));
  }
  let meanKl: number | undefined;
  if ((o.beta ?? 0) !== 0) {
    if (!kl) throw new RangeError('rlooAdvantages: beta > 0 needs the old and reference log-probs');
    let [sum, count] = [0, 0];
    for (let b = 0; b < n; b++) {
      let seq = 0;
      for (let t = 0; t < kl.T; t++) {
        const i = b * kl.T + t;
        const d = (kl.oldLogps[i] - kl.refLogps[i]) * kl.mask[i];
        seq += d;
        count += kl.mask[i];
      }
      sum += seq;
      r[b] -= o.beta! * seq;
    }
    meanKl = sum / Math.max(1, count);
  }
  const advantages = new Float32Array(n);
  let zero = 0;
  for (let g = 0; g < n / G; g++) {
    const group = r.subarray(g * G, (g + 1) * G);
    const total = group.reduce((s, x) => s + x, 0);
    if (Math.abs(std(group)) <= 1e-8) zero++;
    for (let i = 0; i < G; i++) advantages[g * G + i] = group[i] - (total - group[i]) / (G - 1);
  }
  if (o.normalizeAdvantages) {
    const m = advantages.reduce((s, x) => s + x, 0) / n;
    const s = std(advantages);
    advantages.forEach((a, i) => (advantages[i] = (a - m) / (s + 1e-4)));
  }
  return { advantages, rewards: Float32Array.from(r), kl: meanKl, fracRewardZeroStd: zero / (n / G) };
}
