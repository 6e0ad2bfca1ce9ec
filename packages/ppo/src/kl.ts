// The KL penalty between policy and reference per sampled token, and its coefficient.
//   k1 = log π(y) − log π_ref(y)                (unbiased, can be negative per token)
//   k3 = (r − 1) − log r with r = π_ref/π       (Schulman's low-variance estimator, ≥ 0)
// The adaptive controller is Ziegler et al. 2019's: β ← β (1 + clip(KL/target − 1, ±0.2) · n/horizon).

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

export interface KlController {
  readonly value: number;
  /** After a batch whose mean KL (summed over tokens) was `kl`, covering nSteps episodes. */
  update(kl: number, nSteps: number): void;
  state(): { value: number };
}

export class FixedKlController implements KlController {
  constructor(public value: number) {}
  update(): void {
    // a fixed coefficient does not adapt
  }
  state() {
    return { value: this.value };
  }
}

export class AdaptiveKlController implements KlController {
  constructor(
    public value: number,
    readonly target: number,
    readonly horizon: number,
  ) {}
  update(kl: number, nSteps: number): void {
    const error = Math.min(0.2, Math.max(-0.2, kl / this.target - 1));
    this.value *= 1 + (error * nSteps) / this.horizon;
  }
  state() {
    return { value: this.value };
  }
}
