// The supervised training step every recipe but PPO shares (CLM, SFT, MLM, classification,
// reward models, DPO): sample micro-batches, accumulate gradients over their tokens, clip,
// guard against NaN/Inf, AdamW with the schedule; on the outer loop (run-loop.ts) that logs,
// evaluates, samples text, checkpoints and stops on request. Each recipe supplies what
// differs: the loss of a batch of row indices, its evaluation, optional text samples, and
// how to save its tokenizer. The model and optimizer are disposed when the loop ends.
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, RunLogger, deriveSeed, requireStateField, stateFileOf, type TrainerState } from '@anneal/core';
import { ShuffledSampler, type SamplerState } from '@anneal/data';
import type { RunOptions } from './options.js';
import { requireSameWorld, runLoop, type LoopResult, type RunLoopConfig } from './run-loop.js';
import { liveTensorBytes, memoryReport } from './memory-report.js';
import { accumulatedGradients, guardedUpdate, type LossSum } from './step.js';

export type { LoopResult } from './run-loop.js';

/** The outer loop's settings, and what the supervised step adds: batches, accumulation, clipping, a stop condition. */
export interface LoopConfig extends RunLoopConfig {
  optim: { lr: number; gradClip: number };
  train: RunLoopConfig['train'] & {
    batchSize: number;
    gradientAccumulationSteps: number;
    maxSteps?: number;
    numEpochs?: number;
    gradientCheckpointing?: boolean;
  };
}

/** Where a run lives and what it resumes from (opened by the recipe). */
export interface RunContext {
  runDir: string;
  /** metrics.jsonl + TensorBoard. */
  logger: RunLogger;
  /** Resumed state (sampler position, step, best metric, token count) and its checkpoint. */
  state?: TrainerState;
  resumeDir?: string;
  backendName: string;
}

/** What the loop trains: a model, or a LoRA-wrapped one (then `params` are the adapter's). */
export interface TrainableModel {
  params: Map<string, tf.Variable>;
  savePretrained(dir: string): Promise<void>;
  dispose(): void;
}

export interface LoopParts extends RunContext {
  model: TrainableModel;
  optimizer: AdamW;
  numRows: number;
  /**
   * The summed loss and token count of the rows at these indices (dropout seeded by `seed`, which
   * differs between data-parallel ranks). `dataSeed` is the step's seed shared by all ranks: what
   * is drawn per row (span-corruption masks) from it and the row's index is the same however the
   * batch is split.
   */
  loss: (rows: Int32Array, seed: number, dataSeed: number) => LossSum;
  /** Eval metrics ("eval/..."); the first is the one best checkpoints are chosen by (lower is better). */
  evaluate?: () => Record<string, number>;
  /** Text samples for TensorBoard, at eval steps or every `sampleEvery` steps. */
  samples?: (step: number) => string[];
  sampleEvery?: number;
  saveTokenizer: (dir: string) => void;
}

/** The supervised step: sample micro-batches, accumulate gradients over their tokens, clip, guard, AdamW. */
export async function trainLoop(cfg: LoopConfig, p: LoopParts, o: RunOptions): Promise<LoopResult> {
  if (p.state && p.resumeDir) {
    const at = { file: stateFileOf(p.resumeDir) ?? p.resumeDir };
    requireStateField(p.state, 'data.epoch', 'integer', { ...at, why: "the data sampler's epoch" });
    requireStateField(p.state, 'data.position', 'integer', { ...at, why: "the data sampler's position in the epoch" });
  }
  const sampler = new ShuffledSampler(p.numRows, cfg.seed, p.state?.data as SamplerState | undefined);
  const { batchSize, gradientAccumulationSteps: accumulation } = cfg.train;
  // Data parallel: every rank draws the same global batch of world x batchSize rows and
  // trains on its slice; rank 0's parameters are the starting point of all.
  const dp = o.collective && o.collective.worldSize > 1 ? o.collective : undefined;
  const [rank, world] = [dp?.rank ?? 0, dp?.worldSize ?? 1];
  requireSameWorld(p, world);
  if (dp) {
    const names = [...p.model.params.keys()];
    const fresh = dp.broadcast(
      names.map((n) => p.model.params.get(n)!),
      0,
    );
    names.forEach((n, i) => p.model.params.get(n)!.assign(fresh[i]));
    tf.dispose(fresh);
  }
  const shard = (global: Int32Array) => global.subarray(rank * batchSize, (rank + 1) * batchSize);
  // numEpochs: as many steps as cover that many passes over the rows
  const maxSteps =
    cfg.train.maxSteps ??
    Math.max(1, Math.ceil(((cfg.train.numEpochs ?? 1) * p.numRows) / (batchSize * accumulation * world)));
  let numTokens = Number((p.state?.data as { numTokens?: number } | undefined)?.numTokens ?? 0);
  // The console and the logged train/ scalars are means over the steps since the last log.
  let window = { loss: 0, steps: 0, tokens: 0, t0: performance.now(), metrics: {} as Record<string, number> };
  let norm = 0;
  // The first step of this process says what memory goes where (memory-report.ts).
  let reported = false;
  const reportingMemory = (first: LossSum): LossSum => {
    const before = liveTensorBytes();
    return () => {
      const start = liveTensorBytes();
      const r = first();
      const trainable = [...p.model.params.values()].filter((v) => v.trainable).reduce((n, v) => n + v.size, 0);
      const kept = liveTensorBytes() - start;
      const tokens = r.tokens ?? r.count;
      const { gradientCheckpointing = false } = cfg.train;
      o.reporter?.info(memoryReport({ before, trainable, kept, tokens, gradientCheckpointing }));
      reported = true;
      return r;
    };
  };
  return runLoop(
    cfg,
    {
      ...p,
      maxSteps,
      params: p.model.params,
      saveModel: (d) => p.model.savePretrained(d),
      progress: () => ({
        epoch: sampler.epochProgress,
        data: { ...sampler.getState(), numTokens, ...(dp && { worldSize: world }) },
      }),
      update: (step, lr) => {
        const micro = Array.from({ length: accumulation }, (_, k) =>
          p.loss(
            shard(sampler.next(batchSize * world)),
            dp ? deriveSeed(cfg.seed, step, k, rank) : deriveSeed(cfg.seed, step, k),
            deriveSeed(cfg.seed, step, k),
          ),
        );
        if (!reported) micro[0] = reportingMemory(micro[0]);
        const { loss, tokens, grads, metrics } = accumulatedGradients(p.model.params, micro, dp);
        const guarded = guardedUpdate(grads, loss, {
          clip: cfg.optim.gradClip,
          apply: (g) => p.optimizer.apply(g, lr),
        });
        norm = guarded.norm;
        o.onStep?.(step, loss);
        numTokens += tokens;
        window = { ...window, loss: window.loss + loss, steps: window.steps + 1, tokens: window.tokens + tokens };
        for (const [k, v] of Object.entries(metrics)) window.metrics[k] = (window.metrics[k] ?? 0) + v;
        const elapsed = (performance.now() - window.t0) / 1000;
        return {
          shown: { name: 'loss', value: window.loss / window.steps, meanOf: window.steps },
          tokensPerSecond: window.tokens / elapsed,
          problem: guarded.problem,
        };
      },
      scalars: (_step, lr) => {
        const elapsed = (performance.now() - window.t0) / 1000;
        const extra = Object.fromEntries(
          Object.entries(window.metrics).map(([k, v]) => [`train/${k}`, v / window.steps]),
        );
        const out = {
          'train/loss': window.loss / window.steps,
          ...extra,
          'train/learning_rate': lr,
          'train/grad_norm': norm,
          'train/num_tokens': numTokens,
          'train/tokens_per_second': window.tokens / elapsed,
          'train/epoch': sampler.epochProgress,
        };
        window = { loss: 0, steps: 0, tokens: 0, t0: performance.now(), metrics: {} };
        return out;
      },
      evaluate: p.evaluate && (() => tf.tidy(() => p.evaluate!())),
      dispose: () => p.model.dispose(),
    },
    o,
  );
}
