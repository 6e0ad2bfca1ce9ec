// Masked moments and whitening over [B, T] host arrays (mask 1 for a response's tokens), as
// TRL's masked_mean / masked_var / masked_whiten: PPO whitens advantages and rewards with them.

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
