// PPO's KL coefficient (the per-token KL estimators live in @anneal/training).
// The adaptive controller is Ziegler et al. 2019's: β ← β (1 + clip(KL/target − 1, ±0.2) · n/horizon).

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
