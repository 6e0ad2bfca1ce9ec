// The training loop every recipe (CLM, SFT, MLM, classification) shares, written once: sample
// micro-batches, accumulate gradients over their tokens, clip, guard against NaN/Inf,
// AdamW with the schedule, log, evaluate, sample text, checkpoint, stop on request.
// Each recipe supplies what differs: the loss of a batch of row indices, its evaluation,
// optional text samples, and how to save its tokenizer. The model and optimizer are
// disposed when the loop ends.
import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import {
  AdamW,
  CheckpointError,
  RunLogger,
  checkpointDirName,
  deriveSeed,
  learningRateAt,
  requireStateField,
  stateFileOf,
  type TrainerState,
} from '@anneal/core';
import { ShuffledSampler, type SamplerState } from '@anneal/data';
import type { RunOptions } from './options.js';
import { saveCheckpoint } from './run-folder.js';
import { silentReporter } from './reporter.js';
import { accumulatedGradients, guardedUpdate, handleNonFinite, type LossSum } from './step.js';

export interface LoopConfig {
  seed: number;
  optim: { lr: number; gradClip: number };
  schedule: { kind: 'constant' | 'linear' | 'cosine'; warmupSteps: number; minLrRatio: number };
  train: {
    batchSize: number;
    gradientAccumulationSteps: number;
    maxSteps?: number;
    numEpochs?: number;
    earlyStoppingPatience?: number;
    logEvery: number;
    evalEvery: number;
    saveEvery: number;
    saveTotalLimit: number;
    onNonFinite: 'error' | 'skip';
    /** Parameter histograms to TensorBoard every N steps (0 or absent = never). */
    histogramsEvery?: number;
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
  /** The summed loss and token count of the rows at these indices (dropout seeded by `seed`). */
  loss: (rows: Int32Array, seed: number) => LossSum;
  /** Eval metrics ("eval/..."); the first is the one best checkpoints are chosen by (lower is better). */
  evaluate?: () => Record<string, number>;
  /** Text samples for TensorBoard, at eval steps or every `sampleEvery` steps. */
  samples?: (step: number) => string[];
  sampleEvery?: number;
  saveTokenizer: (dir: string) => void;
}

export interface LoopResult {
  step: number;
  stopped: boolean;
  lastCheckpoint: string;
  lastEval?: Record<string, number>;
}

export async function trainLoop(cfg: LoopConfig, p: LoopParts, o: RunOptions): Promise<LoopResult> {
  const report = o.reporter ?? silentReporter;
  if (p.state && p.resumeDir) {
    const at = { file: stateFileOf(p.resumeDir) ?? p.resumeDir };
    requireStateField(p.state, 'data.epoch', 'integer', { ...at, why: "the data sampler's epoch" });
    requireStateField(p.state, 'data.position', 'integer', { ...at, why: "the data sampler's position in the epoch" });
  }
  const sampler = new ShuffledSampler(p.numRows, cfg.seed, p.state?.data as SamplerState | undefined);
  const logger = p.logger;
  const { batchSize, gradientAccumulationSteps: accumulation } = cfg.train;
  // Data parallel: every rank draws the same global batch of world x batchSize rows and
  // trains on its slice; rank 0's parameters are the starting point of all; only rank 0
  // writes logs and checkpoints.
  const dp = o.collective && o.collective.worldSize > 1 ? o.collective : undefined;
  const [rank, world] = [dp?.rank ?? 0, dp?.worldSize ?? 1];
  const main = rank === 0;
  const savedWorld = Number((p.state?.data as { worldSize?: number } | undefined)?.worldSize ?? 1);
  if (p.state && savedWorld !== world)
    throw new CheckpointError(`the checkpoint was written by ${savedWorld} process(es) and this run has ${world}`, {
      file: p.resumeDir,
      hint: `resume with the same number of processes (anneal launch --nproc ${savedWorld}), or start a new run`,
    });
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
  const schedule = { ...cfg.schedule, lr: cfg.optim.lr, totalSteps: maxSteps };
  let sinceBest = 0;
  let best = p.state?.bestMetric ?? null;
  let lastCheckpoint = p.resumeDir ?? '';
  let numTokens = Number((p.state?.data as { numTokens?: number } | undefined)?.numTokens ?? 0);
  let lastEval: Record<string, number> | undefined;
  const save = async (step: number) =>
    main
      ? saveCheckpoint(
          p.runDir,
          {
            saveModel: (d) => p.model.savePretrained(d),
            saveTokenizer: p.saveTokenizer,
            optimizer: p.optimizer,
            state: {
              step,
              epoch: sampler.epochProgress,
              data: { ...sampler.getState(), numTokens, ...(dp && { worldSize: world }) },
              rng: { seed: cfg.seed },
              bestMetric: best,
              backend: p.backendName,
            },
          },
          cfg.train.saveTotalLimit,
        )
      : join(p.runDir, 'checkpoints', checkpointDirName(step));

  let step = p.state?.step ?? 0;
  if (!p.state && p.evaluate) {
    // The starting model's numbers, at step 0: what training is measured against.
    const start = tf.tidy(() => p.evaluate!());
    if (main) logger.scalars(0, start);
    report.info(
      `step 0: ${Object.entries(start)
        .map(([k, v]) => `${k} ${v.toFixed(4)}`)
        .join(', ')}`,
    );
  }
  report.start(maxSteps, step, cfg.train.logEvery);
  let window = { loss: 0, steps: 0, tokens: 0, t0: performance.now(), metrics: {} as Record<string, number> };
  let stopped = false;
  while (step < maxSteps) {
    step += 1;
    const lr = learningRateAt(step - 1, schedule);
    const micro = Array.from({ length: accumulation }, (_, k) =>
      p.loss(
        shard(sampler.next(batchSize * world)),
        dp ? deriveSeed(cfg.seed, step, k, rank) : deriveSeed(cfg.seed, step, k),
      ),
    );
    const { loss, tokens, grads, metrics } = accumulatedGradients(p.model.params, micro, dp);
    const { norm, problem } = guardedUpdate(grads, loss, {
      clip: cfg.optim.gradClip,
      apply: (g) => p.optimizer.apply(g, lr),
    });
    handleNonFinite(problem, step, cfg.train.onNonFinite, lastCheckpoint, (m) => report.info(m));
    o.onStep?.(step, loss);
    numTokens += tokens;
    window = { ...window, loss: window.loss + loss, steps: window.steps + 1, tokens: window.tokens + tokens };
    for (const [k, v] of Object.entries(metrics)) window.metrics[k] = (window.metrics[k] ?? 0) + v;
    const last = step === maxSteps;
    const elapsed = (performance.now() - window.t0) / 1000;
    report.step({
      step,
      maxSteps,
      metric: { name: 'loss', value: window.loss / window.steps, meanOf: window.steps },
      lr,
      tokensPerSecond: window.tokens / elapsed,
    });
    if ((step % cfg.train.logEvery === 0 || last) && main) {
      const extra = Object.fromEntries(
        Object.entries(window.metrics).map(([k, v]) => [`train/${k}`, v / window.steps]),
      );
      logger.scalars(step, {
        'train/loss': window.loss / window.steps,
        ...extra,
        'train/learning_rate': lr,
        'train/grad_norm': norm,
        'train/num_tokens': numTokens,
        'train/tokens_per_second': window.tokens / elapsed,
        'train/epoch': sampler.epochProgress,
      });
      window = { loss: 0, steps: 0, tokens: 0, t0: performance.now(), metrics: {} };
    }
    let improved = false; // a new best is saved at once, so the best checkpoint exists
    if ((step % cfg.train.evalEvery === 0 || last) && p.evaluate) {
      lastEval = tf.tidy(() => p.evaluate!());
      if (main) logger.scalars(step, lastEval);
      report.info(
        `step ${step}: ${Object.entries(lastEval)
          .map(([k, v]) => `${k} ${v.toFixed(4)}`)
          .join(', ')}`,
      );
      const [name, value] = Object.entries(lastEval)[0];
      if (!best || value < best.value) {
        best = { name, value, checkpoint: `checkpoints/${checkpointDirName(step)}` }; // relative: the run folder can move
        sinceBest = 0;
        improved = true;
      } else sinceBest++;
    }
    const sampleNow = p.sampleEvery
      ? step % p.sampleEvery === 0 || last
      : (step % cfg.train.evalEvery === 0 || last) && p.evaluate;
    const lines = sampleNow ? (p.samples?.(step) ?? []) : [];
    if (lines.length && main) {
      logger.text('samples', lines.map((l) => '> ' + l.replace(/\n/g, '\n> ')).join('\n\n'), step);
      for (const l of lines) report.info(`sample @${step}: ${JSON.stringify(l)}`);
    }
    const hist = cfg.train.histogramsEvery ?? 0;
    if (hist > 0 && step % hist === 0 && main)
      for (const [name, v] of p.model.params) logger.tb.histogram(`params/${name}`, v.dataSync(), step);
    const patience = cfg.train.earlyStoppingPatience ?? 0;
    const early = patience > 0 && sinceBest >= patience;
    if (early)
      report.info(
        `early stopping at step ${step}: ${best!.name} has not improved on ${best!.value.toFixed(4)} for ${patience} evaluations (best: ${join(p.runDir, best!.checkpoint)})`,
      );
    const stopNow = (o.shouldStop?.() ?? false) || early;
    if (step % cfg.train.saveEvery === 0 || last || stopNow || improved) lastCheckpoint = await save(step);
    if (stopNow) {
      stopped = !early;
      break;
    }
    await new Promise((r) => setImmediate(r)); // let Ctrl-C handlers run
  }
  report.stop();
  if (main) {
    logger.tb.hparamsEnd(!stopped);
    logger.tb.flush();
  }
  p.model.dispose();
  p.optimizer.dispose();
  return { step, stopped, lastCheckpoint, lastEval };
}
