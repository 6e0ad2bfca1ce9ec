// A shuffling batch sampler whose whole state is (epoch, position): each epoch's order
// is a permutation seeded by (seed, epoch), so a resumed run reproduces the exact
// sequence of batches from the two numbers saved in anneal_state.json.
import { Rng, deriveSeed } from '@anneal/core';

export interface SamplerState {
  epoch: number;
  /** Index into the current epoch's permutation. */
  position: number;
}

export class ShuffledSampler {
  private order: Int32Array;
  private state: SamplerState;

  constructor(
    readonly size: number,
    readonly seed: number,
    state: SamplerState = { epoch: 0, position: 0 },
  ) {
    if (size < 1) throw new RangeError('sampler needs at least one item');
    this.state = { ...state };
    this.order = this.permutation(state.epoch);
  }

  private permutation(epoch: number): Int32Array {
    const order = Int32Array.from({ length: this.size }, (_, i) => i);
    new Rng(deriveSeed(this.seed, epoch)).shuffle(order);
    return order;
  }

  /** The next `batchSize` indices; crosses into the next epoch when one runs out. */
  next(batchSize: number): Int32Array {
    const out = new Int32Array(batchSize);
    for (let i = 0; i < batchSize; i++) {
      if (this.state.position >= this.size) {
        this.state = { epoch: this.state.epoch + 1, position: 0 };
        this.order = this.permutation(this.state.epoch);
      }
      out[i] = this.order[this.state.position++];
    }
    return out;
  }

  /** Fractional epochs consumed. */
  get epochProgress(): number {
    return this.state.epoch + this.state.position / this.size;
  }

  getState(): SamplerState {
    return { ...this.state };
  }
}
