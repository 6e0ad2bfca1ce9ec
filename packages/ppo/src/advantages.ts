// Generalised advantage estimation (Schulman et al. 2016) for PPO over a batch of responses,
// on the host, as TRL's PPOTrainer computes it. Arrays are row-major [B, T]; mask[b, t] is 1
// for the response's real tokens (up to and including EOS) and 0 after it.

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
