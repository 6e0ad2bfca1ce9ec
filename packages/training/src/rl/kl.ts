// The KL between policy and reference per sampled token, from the sampled tokens' log-probs:
//   k1 = log π(y) − log π_ref(y)                (unbiased, can be negative per token)
//   k3 = (r − 1) − log r with r = π_ref/π       (Schulman's low-variance estimator, ≥ 0)

export type KlEstimator = 'k1' | 'k3';

/** Per-token KL estimates from the sampled tokens' log-probs under policy and reference. */
export function klPerToken(
  logprobs: ArrayLike<number>,
  refLogprobs: ArrayLike<number>,
  estimator: KlEstimator,
): Float32Array {
  return Float32Array.from(logprobs, (lp, i) => {
    const logr = refLogprobs[i] - lp;
    return estimator === 'k1' ? -logr : Math.expm1(logr) - logr;
  });
}
