// What data-parallel training needs from a process group (the app makes one with
// @anneal/backend-torch's c10d bindings and hands it to a recipe): every rank runs the same
// program on its share of each batch and the ranks meet in these collectives.
import type { Tensor } from '@tensorflow/tfjs-core';

export interface Collective {
  readonly rank: number;
  readonly worldSize: number;
  /** Elementwise sum (or mean) of each tensor across ranks; new tensors, the inputs are kept. */
  allReduce(tensors: Tensor[], op: 'sum' | 'avg'): Tensor[];
  /** Each tensor as rank `root` has it; new tensors, the inputs are kept. */
  broadcast(tensors: Tensor[], root: number): Tensor[];
  barrier(): void;
}
