// Advantages for PPO over a batch of responses, on the host (B x responseLength numbers):
// generalised advantage estimation (Schulman et al. 2016) and masked whitening, as TRL's
// PPOTrainer computes them. Arrays are row-major [B, T]; mask[b, t] is 1 for the response's
// real tokens (up to and including EOS) and 0 after it.

/** Masked mean and variance (unbiased, as TRL's masked_var) of x where mask is 1. */
export function maskedMoments(
  x: ArrayLike<number>,
  mask: ArrayLike<number>,
): { mean: number; variance: number; count: number } {
  let [n, sum] = [0, 0];
  for (let i = 0; i < x.length; i++) if (mask[i]) [n, sum] = [n + 1, sum + x[i]];
  const mean = sum / Math.max(1, n);
  let sq = 0;
  for (let i = 0; i < x.length; i++) if (mask[i]) sq += (x[i] - mean) ** 2;
  const variance = n > 1 ? sq / (n - 1) : 0;
  return { mean, variance, count: n };
}

/** (x − mean) / sqrt(var + 1e-8) over the masked entries (others become 0); shiftMean false adds the mean back. */
export function maskedWhiten(x: ArrayLike<number>, mask: ArrayLike<number>, shiftMean = true): Float32Array {
  const { mean, variance } = maskedMoments(x, mask);
  const scale = 1 / Math.sqrt(variance + 1e-8);
  return Float32Array.from(x, (v, i) => (mask[i] ? (v - mean) * scale + (shiftMean ? 0 : mean) : 0));
}

/**
 * GAE over each row: δ_t = r_t + γ V_{t+1} − V_t, A_t = δ_t + γ λ A_{t+1}, returns = A + V.
 * Positions after the response (mask 0) have V = 0 and contribute nothing; the value after
 * the last position is 0.
 */
export function gae(
  rewards: ArrayLike<number>,
  values: ArrayLike<number>,
  mask: ArrayLike<number>,
  B: number,
  T: number,
  o: { gamma: number; lam: number },
): { advantages: Float32Array; returns: Float32Array } {
  const advantages = new Float32Array(B * T);
  const returns = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    let last = 0;
    for (let t = T - 1; t >= 0; t--) {
      const i = b * T + t;
      const v = mask[i] ? values[i] : 0;
      const next = t + 1 < T && mask[i + 1] ? values[i + 1] : 0;
      const delta = (mask[i] ? rewards[i] : 0) + o.gamma * next - v;
      last = mask[i] ? delta + o.gamma * o.lam * last : 0;
      advantages[i] = last;
      returns[i] = mask[i] ? last + v : 0;
    }
  }
  return { advantages, returns };
}
