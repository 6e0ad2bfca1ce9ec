// What the caller of any recipe (the app, tests) can pass besides the config.
import type { Collective } from '@anneal/core';
import type { Reporter } from './reporter.js';

/** What a recipe returns: where the run is, how far it got, its last evaluation. */
export interface RecipeResult {
  runDir: string;
  step: number;
  /** true when a stop was requested (Ctrl-C) before the end. */
  stopped: boolean;
  lastCheckpoint: string;
  eval?: Record<string, number>;
}

export interface RunOptions {
  reporter?: Reporter;
  /** Checkpoint or run folder to continue from. */
  resume?: string;
  /** Delete an existing run folder of the same name instead of refusing. */
  overwrite?: boolean;
  /** Polled after every step; true = save a checkpoint and return (Ctrl-C). */
  shouldStop?: () => boolean;
  /** Called after every optimizer step (tests use it to watch memory). */
  onStep?: (step: number, loss: number) => void;
  /**
   * Data parallelism: this process is one rank of a process group. Each rank trains on its
   * share of every batch, gradients are summed across ranks, and only rank 0 writes logs
   * and checkpoints (recipes that support it: those on the shared training loop).
   */
  collective?: Collective;
}
