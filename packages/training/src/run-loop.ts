// The outer loop every recipe runs, written once: for each step, the learning rate from the
// schedule, the recipe's update, the console line, logging, evaluation (best checkpoint,
// early stopping), text samples, parameter histograms, checkpoints (every saveEvery, the
// last step, a new best, a stop request), and the NaN/Inf guard. What an update is belongs
// to the recipe: the supervised step over micro-batches (loop.ts, for CLM, SFT, MLM,
// classification, reward models and DPO), or PPO's rollout followed by its epochs of
// minibatch updates. The model(s) and optimizer are disposed when the loop ends.
import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import { AdamW, CheckpointError, ConfigError, checkpointDirName, learningRateAt } from '@anneal/core';
import type { RunContext } from './loop.js';
import type { RunOptions } from './options.js';
import { saveCheckpoint } from './run-folder.js';
import { silentReporter } from './reporter.js';
import { handleNonFinite } from './step.js';

export interface RunLoopConfig {
  seed: number;
  optim: { lr: number };
  schedule: { kind: 'constant' | 'linear' | 'cosine'; warmupSteps: number; minLrRatio: number };
  train: {
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

/** What one update did, for the console and the NaN/Inf guard. */
export interface UpdateOutcome {
  /** The number the console shows (the loss; PPO: objective/scores), and over how many steps it is a mean. */
  shown: { name: string; value: number; meanOf: number };
  tokensPerSecond: number;
  /** What was non-finite (the loss, a gradient norm) when the update was skipped. */
  problem?: string;
}

export interface RunLoopParts extends RunContext {
  maxSteps: number;
  optimizer: AdamW;
  /** The trained variables (parameter histograms). */
  params: Map<string, tf.Variable>;
  /** Writes the trained model(s) into a checkpoint folder, and the tokenizer next to them. */
  saveModel: (dir: string) => Promise<void>;
  saveTokenizer: (dir: string) => void;
  /** The recipe's resumable position (data sampler, counters), saved in each checkpoint's state. */
  progress: () => { epoch: number; data: Record<string, unknown> };
  /** One update at `step` (from 1) with learning rate `lr`. */
  update: (step: number, lr: number) => UpdateOutcome | Promise<UpdateOutcome>;
  /** Scalars logged at a log step (called at log steps only: it may average over the steps since the last call). */
  scalars: (step: number, lr: number) => Record<string, number>;
  /** Eval metrics ("eval/..."); unless bestByEval is false the first picks the best checkpoint (lower is better). */
  evaluate?: () => Record<string, number> | Promise<Record<string, number>>;
  /** Default true: best checkpoint and early stopping follow the first eval metric. */
  bestByEval?: boolean;
  /** Default true: a fresh run is evaluated at step 0, the number training is measured against. */
  evalAtStart?: boolean;
  /** Text samples for TensorBoard, at eval steps or every `sampleEvery` steps. */
  samples?: (step: number) => string[] | Promise<string[]>;
  sampleEvery?: number;
  /** A recipe without a data-parallel mode names itself here, and a multi-process launch of it is refused. */
  singleProcess?: string;
  /** Frees the model(s) when the loop ends. */
  dispose: () => void;
}

export interface LoopResult {
  step: number;
  stopped: boolean;
  lastCheckpoint: string;
  lastEval?: Record<string, number>;
}

/** A checkpoint continues exactly only with the number of processes that wrote it. */
export function requireSameWorld(run: Pick<RunContext, 'state' | 'resumeDir'>, world: number): void {
  const saved = Number((run.state?.data as { worldSize?: number } | undefined)?.worldSize ?? 1);
  if (run.state && saved !== world)
    throw new CheckpointError(`the checkpoint was written by ${saved} process(es) and this run has ${world}`, {
      file: run.resumeDir,
      hint: `resume with the same number of processes (anneal launch --nproc ${saved}), or start a new run`,
    });
}

/**
 * Peak memory so far, in MiB: on a GPU the device allocator's peak (what torch.cuda.max_memory_allocated
 * reports), else the process's peak resident memory (what the OS counts for a CPU run: tensors, caches, V8 heap).
 */
const peakMemoryMb = () => {
  const device = (tf.memory() as { peakBytesOnDevice?: number }).peakBytesOnDevice;
  return device !== undefined ? device / 2 ** 20 : process.resourceUsage().maxRSS / 1024;
};

const formatMetrics = (m: Record<string, number>) =>
  Object.entries(m)
    .map(([k, v]) => `${k} ${v.toFixed(4)}`)
    .join(', ');

export async function runLoop(cfg: RunLoopConfig, p: RunLoopParts, o: RunOptions): Promise<LoopResult> {
  const report = o.reporter ?? silentReporter;
  const dp = o.collective && o.collective.worldSize > 1 ? o.collective : undefined;
  if (dp && p.singleProcess)
    throw new ConfigError(`${p.singleProcess} has no data-parallel mode yet: run it as one process`, {
      field: 'recipe',
      hint: `anneal train (not anneal launch) for recipe: ${p.singleProcess}`,
    });
  const main = (dp?.rank ?? 0) === 0; // only rank 0 writes logs and checkpoints
  requireSameWorld(p, dp?.worldSize ?? 1);
  const { logger, maxSteps } = p;
  const schedule = { ...cfg.schedule, lr: cfg.optim.lr, totalSteps: maxSteps };
  const bestByEval = p.bestByEval ?? true;
  let sinceBest = 0;
  let best = p.state?.bestMetric ?? null;
  let lastCheckpoint = p.resumeDir ?? '';
  let lastEval: Record<string, number> | undefined;
  const save = async (step: number) =>
    main
      ? saveCheckpoint(
          p.runDir,
          {
            saveModel: p.saveModel,
            saveTokenizer: p.saveTokenizer,
            optimizer: p.optimizer,
            state: { step, ...p.progress(), rng: { seed: cfg.seed }, bestMetric: best, backend: p.backendName },
          },
          cfg.train.saveTotalLimit,
        )
      : join(p.runDir, 'checkpoints', checkpointDirName(step));

  let step = p.state?.step ?? 0;
  if (!p.state && p.evaluate && (p.evalAtStart ?? true)) {
    const start = await p.evaluate();
    if (main) logger.scalars(0, start);
    report.info(`step 0: ${formatMetrics(start)}`);
  }
  report.start(maxSteps, step, cfg.train.logEvery);
  let stopped = false;
  while (step < maxSteps) {
    step += 1;
    const lr = learningRateAt(step - 1, schedule);
    const outcome = await p.update(step, lr);
    handleNonFinite(outcome.problem, step, cfg.train.onNonFinite, lastCheckpoint, (m) => report.info(m));
    const last = step === maxSteps;
    report.step({ step, maxSteps, metric: outcome.shown, lr, tokensPerSecond: outcome.tokensPerSecond });
    if ((step % cfg.train.logEvery === 0 || last) && main)
      logger.scalars(step, { ...p.scalars(step, lr), 'train/peak_memory_mb': peakMemoryMb() });

    let improved = false; // a new best is saved at once, so the best checkpoint exists
    const evalNow = step % cfg.train.evalEvery === 0 || last;
    if (evalNow && p.evaluate) {
      lastEval = await p.evaluate();
      if (main) logger.scalars(step, lastEval);
      report.info(`step ${step}: ${formatMetrics(lastEval)}`);
      const [name, value] = Object.entries(lastEval)[0];
      if (bestByEval && (!best || value < best.value)) {
        best = { name, value, checkpoint: `checkpoints/${checkpointDirName(step)}` }; // relative: the run folder can move
        sinceBest = 0;
        improved = true;
      } else if (bestByEval) sinceBest++;
    }
    const sampleNow = p.sampleEvery ? step % p.sampleEvery === 0 || last : evalNow && p.evaluate;
    const lines = sampleNow ? ((await p.samples?.(step)) ?? []) : [];
    if (lines.length && main) {
      logger.text('samples', lines.map((l) => '> ' + l.replace(/\n/g, '\n> ')).join('\n\n'), step);
      for (const l of lines) report.info(`sample @${step}: ${JSON.stringify(l)}`);
    }
    const hist = cfg.train.histogramsEvery ?? 0;
    if (hist > 0 && step % hist === 0 && main)
      for (const [name, v] of p.params) logger.tb.histogram(`params/${name}`, v.dataSync(), step);

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
  p.dispose();
  p.optimizer.dispose();
  return { step, stopped, lastCheckpoint, lastEval };
}
