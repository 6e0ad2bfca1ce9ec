// Online RL from groups of completions (GRPO, RLOO), the loop both run, written once. A
// method brings two pure pieces: how a generation's rewards become advantages, and the loss
// of a batch of completions. Everything else is here, in TRL's order:
//   1. every stepsPerGeneration × numIterations steps, a generation: generationBatchSize /
//      numGenerations prompts, numGenerations sampled completions each (static-KV-cache
//      sampling); per-token log-probs under the sampling policy (when it will have moved on
//      by the time they are used) and the reference (beta > 0); rewards from every function
//      and reward model; advantages (the method's); TRL's generation metrics; then shuffled
//      and cut into stepsPerGeneration batches of train.batchSize completions
//   2. each step: one of those batches (the same ones again for each of numIterations), the
//      method's loss on the policy's per-token log-probs, one clipped optimizer step
// Steps are TRL's global steps (optimizer steps). The generation batch is part of each
// checkpoint's state, so a run resumed between generations continues exactly. Dropout is off
// (log-probs are deterministic), as in PPO.
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  CheckpointError,
  ConfigError,
  Rng,
  configToYaml,
  deriveSeed,
  requireStateField,
  stateFileOf,
  useBackend,
  valueAndGrads,
} from '@anneal/core';
import { ShuffledSampler, type SamplerState } from '@anneal/data';
import type { CausalLm } from '@anneal/modeling';
import type { RunOptions } from '../options.js';
import { computeRewards, type NamedReward } from '../reward-functions.js';
import { makeOptimizer, openLogger, openRunFolder } from '../run-folder.js';
import { runLoop } from '../run-loop.js';
import { silentReporter } from '../reporter.js';
import { guardedUpdate } from '../step.js';
import type { GroupRlOptions, GroupRlRunConfig } from './group-schema.js';
import { loadPolicy } from './policy.js';
import { readPrompts } from './prompts.js';
import { loadRewardSources } from './reward-sources.js';
import { layout, responseLogprobs, rowsOf, sampleResponses, type RolloutBatch } from './rollout.js';

/** A generation as the method's advantages see it (host arrays; [N, Tr] row-major). */
export interface Generation {
  /** N = prompts × numGenerations completions, each group of numGenerations consecutive. */
  N: number;
  Tr: number;
  /** 1 on each completion's tokens (up to and including EOS); all 0 for a masked truncated one. */
  mask: Float32Array;
  /** Per-token log-probs under the sampling policy (when computed) and the reference (beta > 0). */
  oldLogps?: Float32Array;
  refLogps?: Float32Array;
  /** The weighted sum of all rewards, per completion. */
  rewards: Float32Array;
}

/** One batch's tensors for the method's loss. */
export interface GroupLossInputs {
  perTokenLogps: tf.Tensor2D; // [n, Tr], differentiated
  oldPerTokenLogps?: tf.Tensor2D; // [n, Tr]
  refPerTokenLogps?: tf.Tensor2D; // [n, Tr]
  advantages: tf.Tensor1D; // [n]
  completionMask: tf.Tensor2D; // [n, Tr]
}

export interface GroupRlMethod<O extends GroupRlOptions> {
  /** 'grpo', 'rloo': the recipe name (refused multi-process launches name it). */
  recipe: string;
  /** 'GRPO', 'RLOO': in messages. */
  title: string;
  /** Old log-probs even when the policy has not moved since generation (RLOO's KL-in-reward needs them). */
  alwaysOldLogps?: (o: O) => boolean;
  advantages: (g: Generation, o: O) => { advantages: Float32Array; metrics: Record<string, number> };
  loss: (x: GroupLossInputs, o: O) => { loss: tf.Scalar; metrics: Record<string, tf.Scalar> };
}

export interface GroupRlRunOptions extends RunOptions {
  /** Called after every step with the metrics of that step (its generation's when it made one). */
  onUpdate?: (step: number, metrics: Record<string, number>) => void;
}

export interface GroupRlResult {
  runDir: string;
  step: number;
  stopped: boolean;
  lastCheckpoint: string;
  /** The last evaluation's metrics (eval/reward, eval/rewards/<name>/mean). */
  eval?: Record<string, number>;
}

/** A generation kept between its steps (and in checkpoints): everything needed to replay them. */
interface Buffer {
  /** Per completion: the index of its prompt among the train prompts, and its token ids. */
  prompts: number[];
  responses: number[][];
  /** Completions in step order (shuffled). */
  order: number[];
  advantages: number[];
  oldLogps?: number[];
  refLogps?: number[];
}

const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, x) => s + x, 0) / Math.max(1, a.length);
/** Unbiased standard deviation (torch.std); 0 for fewer than two values. */
const std = (a: ArrayLike<number>) => {
  const m = mean(a);
  return a.length > 1 ? Math.sqrt(Array.from(a).reduce((s, x) => s + (x - m) ** 2, 0) / (a.length - 1)) : 0;
};

/** Generation batch size and steps per generation from the config, checked against each other. */
export function generationShape(
  o: GroupRlOptions,
  batchSize: number,
  configFile: string,
  section: string,
): { generationBatchSize: number; stepsPerGeneration: number } {
  const where = (field: string) => ({ file: configFile, field: `${section}.${field}` });
  if (o.generationBatchSize !== undefined && o.stepsPerGeneration !== undefined)
    throw new ConfigError('generationBatchSize and stepsPerGeneration are exclusive', {
      ...where('stepsPerGeneration'),
      hint: 'give one: the other follows from train.batchSize',
    });
  const gbs = o.generationBatchSize ?? batchSize * (o.stepsPerGeneration ?? 1);
  if (gbs % batchSize !== 0)
    throw new ConfigError(`generationBatchSize ${gbs} is not a multiple of train.batchSize ${batchSize}`, {
      ...where('generationBatchSize'),
      hint: 'each generation is cut into steps of train.batchSize completions',
    });
  if (gbs % o.numGenerations !== 0)
    throw new ConfigError(
      `a generation of ${gbs} completions does not make groups of numGenerations ${o.numGenerations}`,
      {
        ...where('numGenerations'),
        hint: `make train.batchSize × stepsPerGeneration (or generationBatchSize) a multiple of ${o.numGenerations}`,
      },
    );
  return { generationBatchSize: gbs, stepsPerGeneration: gbs / batchSize };
}

/** TRL's completion-length metrics of a generation. */
export function completionMetrics(lengths: number[], terminated: boolean[]): Record<string, number> {
  const term = lengths.filter((_, i) => terminated[i]);
  return {
    'completions/mean_length': mean(lengths),
    'completions/min_length': Math.min(...lengths),
    'completions/max_length': Math.max(...lengths),
    'completions/clipped_ratio': terminated.filter((t) => !t).length / Math.max(1, lengths.length),
    'completions/mean_terminated_length': term.length ? mean(term) : 0,
    'completions/min_terminated_length': term.length ? Math.min(...term) : 0,
    'completions/max_terminated_length': term.length ? Math.max(...term) : 0,
  };
}

/** TRL's reward metrics: the weighted total's mean and std, and each reward's. */
export function rewardMetrics(
  total: ArrayLike<number>,
  perFunction: Map<string, Float32Array>,
): Record<string, number> {
  const out: Record<string, number> = { reward: mean(total), reward_std: std(total) };
  for (const [name, r] of perFunction) {
    out[`rewards/${name}/mean`] = mean(r);
    out[`rewards/${name}/std`] = std(r);
  }
  return out;
}

/** Averages each key over the records that have it (TRL averages a logging window's values). */
function averaged(records: Array<Record<string, number>>): Record<string, number> {
  const sums: Record<string, [number, number]> = {};
  for (const r of records)
    for (const [k, v] of Object.entries(r)) {
      const [s, n] = sums[k] ?? [0, 0];
      sums[k] = [s + v, n + 1];
    }
  return Object.fromEntries(Object.entries(sums).map(([k, [s, n]]) => [k, s / n]));
}

/** Runs a GRPO/RLOO config: `section` is the method's config key (grpo, rloo) holding `o`. */
export async function runGroupRl<O extends GroupRlOptions>(
  method: GroupRlMethod<O>,
  cfg: GroupRlRunConfig,
  o: O,
  section: string,
  configFile: string,
  run: GroupRlRunOptions = {},
): Promise<GroupRlResult> {
  const report = run.reporter ?? silentReporter;
  const { generationBatchSize, stepsPerGeneration } = generationShape(o, cfg.train.batchSize, configFile, section);
  const G = o.numGenerations;
  const cycle = stepsPerGeneration * o.numIterations; // steps per generation batch, all iterations
  // the sampling policy's log-probs are needed once the policy moves between generation and use
  const needOld = cycle > 1 || (method.alwaysOldLogps?.(o) ?? false);

  // ---- setup: backend, run folder, policy (+ reference when beta > 0), rewards, prompts
  const backend = await useBackend(cfg.backend);
  const { runDir, resumeDir, state } = openRunFolder(cfg.outputDir, cfg.name, configToYaml(cfg), backend, {
    resume: run.resume,
    seed: cfg.seed,
    overwrite: run.overwrite,
    rank: run.collective?.rank,
    info: (m) => report.info(m),
    models: ['policy'],
  });
  const policy = await loadPolicy(cfg, configFile, {
    method: method.title,
    reference: o.beta > 0,
    resumeDir,
    info: (m) => report.info(m),
  });
  const { tok, lm, eosTokenId, padTokenId } = policy;
  const rewards: NamedReward[] = await loadRewardSources(cfg.rewards, configFile, { weights: o.rewardWeights });
  const split = await readPrompts(cfg.prompts, tok, { seed: cfg.seed, maxPromptLength: o.maxPromptLength });
  const trainPrompts = split.train;
  const evalPrompts = cfg.prompts.eval
    ? (
        await readPrompts({ ...cfg.prompts, train: cfg.prompts.eval, evalFraction: 0 }, tok, {
          seed: cfg.seed,
          maxPromptLength: o.maxPromptLength,
        })
      ).train
    : split.eval;
  if (!trainPrompts.length)
    throw new ConfigError(`no training prompts left in ${cfg.prompts.train}`, {
      file: configFile,
      field: 'prompts.evalFraction',
    });
  const heldOut = cfg.prompts.evalLimit ? evalPrompts.slice(0, cfg.prompts.evalLimit) : evalPrompts;
  const numParams = (policy.base.numParameters / 1e6).toFixed(2);
  report.info(
    `${method.title} policy: ${policy.base.modelType} ${numParams}M parameters; reference: ${policy.reference}; rewards: ${rewards.map((r) => `${r.name} ×${r.weight}`).join(', ')}; ${trainPrompts.length} train / ${heldOut.length} held-out prompts; ${cfg.train.maxSteps} steps of ${cfg.train.batchSize} completions, a generation of ${generationBatchSize / G} prompts × ${G} every ${cycle} step(s)`,
  );

  const params = new Map<string, tf.Variable>([...policy.model.params].map(([k, v]) => [`policy.${k}`, v] as const));
  const optimizer = makeOptimizer(params, cfg.optim, resumeDir);
  const logger = openLogger(runDir, cfg, state?.step, run.collective?.rank);
  if (state && resumeDir) {
    const at = { file: stateFileOf(resumeDir) ?? resumeDir };
    requireStateField(state, 'data.sampler.epoch', 'integer', { ...at, why: "the prompt sampler's epoch" });
    requireStateField(state, 'data.sampler.position', 'integer', {
      ...at,
      why: "the prompt sampler's position in the epoch",
    });
  }
  const data = state?.data as { sampler: SamplerState; buffer?: Buffer | null } | undefined;
  const sampler = new ShuffledSampler(trainPrompts.length, cfg.seed, data?.sampler);
  let buffer: Buffer | undefined = data?.buffer ?? undefined;
  if (state && state.step % cycle !== 0 && !buffer)
    throw new CheckpointError(
      `the checkpoint at step ${state.step} is inside a generation batch (one every ${cycle} steps) and does not hold it`,
      {
        file: resumeDir,
        hint: 'resume from a checkpoint written by this version, or one at a multiple of stepsPerGeneration × numIterations',
      },
    );
  if (buffer && buffer.order.length !== generationBatchSize)
    throw new CheckpointError(
      `the checkpoint's generation batch has ${buffer.order.length} completions and this config makes ${generationBatchSize}`,
      { file: resumeDir, hint: 'resume with the config the run was started with' },
    );

  const sampling = {
    responseLength: o.maxCompletionLength,
    temperature: o.temperature,
    topP: o.topP,
    topK: o.topK,
    minP: o.minP,
    repetitionPenalty: o.repetitionPenalty,
    eosTokenId,
    padTokenId,
  };
  const decode = (ids: number[]) => tok.decode(ids.filter((t) => t !== eosTokenId));
  /** Per-token log-probs [n, Tr] of the given rows under lm (no gradient), in batches of train.batchSize rows. */
  const logpsOf = (ref: CausalLm, batch: RolloutBatch): Float32Array => {
    const out = new Float32Array(batch.B * batch.Tr);
    for (let start = 0; start < batch.B; start += cfg.train.batchSize) {
      const rows = Array.from({ length: Math.min(cfg.train.batchSize, batch.B - start) }, (_, i) => start + i);
      const lp = tf.tidy(() => responseLogprobs(ref, batch, rows, { ...o, lossChunkSize: cfg.train.lossChunkSize }));
      out.set(lp.logprobs.dataSync(), start * batch.Tr);
      lp.logprobs.dispose();
    }
    return out;
  };
  const completionMask = (batch: RolloutBatch) => {
    const mask = Float32Array.from(batch.responseMask);
    if (o.maskTruncatedCompletions)
      batch.endedWithEos.forEach((ended, b) => !ended && mask.fill(0, b * batch.Tr, (b + 1) * batch.Tr));
    return mask;
  };
  /** A buffer laid out for its steps, once per generation batch (not at every step). */
  let prepared:
    { buf: Buffer; batch: RolloutBatch; mask: Float32Array; old?: Float32Array; ref?: Float32Array } | undefined;
  const prepare = (buf: Buffer) => {
    if (prepared?.buf === buf) return prepared;
    const batch = layout(
      buf.prompts.map((p) => trainPrompts[p].ids),
      buf.responses,
      padTokenId,
      eosTokenId,
    );
    const floats = (a?: number[]) => a && Float32Array.from(a);
    prepared = { buf, batch, mask: completionMask(batch), old: floats(buf.oldLogps), ref: floats(buf.refLogps) };
    return prepared;
  };

  let samples: string[] = [];
  let window: Array<Record<string, number>> = [];
  let lastReward = 0; // the console shows the latest generation's mean reward

  /** 1. A generation: sample, score, advantages, metrics; the buffer its steps use. */
  const generate = async (step: number): Promise<{ buffer: Buffer; metrics: Record<string, number> }> => {
    const picked = Array.from(sampler.next(generationBatchSize / G));
    const prompts = picked.flatMap((p) => Array<number>(G).fill(p)); // groups of G consecutive
    const responses = sampleResponses(
      lm,
      prompts.map((p) => trainPrompts[p].ids),
      { ...sampling, seed: deriveSeed(cfg.seed, step, 0) },
    );
    const batch = layout(
      prompts.map((p) => trainPrompts[p].ids),
      responses,
      padTokenId,
      eosTokenId,
    );
    const mask = completionMask(batch);
    const oldLogps = needOld ? logpsOf(lm, batch) : undefined;
    const refLogps = policy.withReference ? policy.withReference((ref) => logpsOf(ref, batch)) : undefined;
    const promptTexts = prompts.map((p) => trainPrompts[p].text);
    const completions = responses.map(decode);
    const scored = await computeRewards(
      rewards,
      promptTexts,
      completions,
      prompts.map((p) => trainPrompts[p].row),
    );
    const adv = method.advantages({ N: batch.B, Tr: batch.Tr, mask, oldLogps, refLogps, rewards: scored.total }, o);
    const shuffled = Int32Array.from({ length: batch.B }, (_, i) => i);
    new Rng(deriveSeed(cfg.seed, step, 1)).shuffle(shuffled);
    samples = completions.slice(0, 4).map((c, i) => {
      const each = rewards.map((r) => `${r.name} ${scored.perFunction.get(r.name)![i].toFixed(3)}`).join(', ');
      return `${promptTexts[i]} -> ${c} (${each}; advantage ${adv.advantages[i].toFixed(3)})`;
    });
    return {
      buffer: {
        prompts,
        responses,
        order: Array.from(shuffled),
        advantages: Array.from(adv.advantages),
        oldLogps: oldLogps && Array.from(oldLogps),
        refLogps: refLogps && Array.from(refLogps),
      },
      metrics: {
        ...rewardMetrics(scored.total, scored.perFunction),
        ...completionMetrics(batch.lengths, batch.endedWithEos),
        ...adv.metrics,
      },
    };
  };

  /** Greedy completions of the held-out prompts, scored: eval/reward and each reward's mean. */
  let evalLines: string[] = [];
  const evaluate = async () => {
    const promptIds = heldOut.map((p) => p.ids);
    const responses: number[][] = [];
    for (let s = 0; s < promptIds.length; s += 64)
      responses.push(...sampleResponses(lm, promptIds.slice(s, s + 64), { ...sampling, seed: cfg.seed, greedy: true }));
    const completions = responses.map(decode);
    const texts = heldOut.map((p) => p.text);
    const scored = await computeRewards(
      rewards,
      texts,
      completions,
      heldOut.map((p) => p.row),
    );
    evalLines = completions
      .slice(0, 4)
      .map((c, i) => `(held out) ${texts[i]} -> ${c} (reward ${scored.total[i].toFixed(3)})`);
    const out: Record<string, number> = { 'eval/reward': mean(scored.total) };
    for (const [name, r] of scored.perFunction) out[`eval/rewards/${name}/mean`] = mean(r);
    return out;
  };

  // ---- steps, on the shared loop
  const result = await runLoop(
    cfg,
    {
      runDir,
      logger,
      state,
      resumeDir,
      backendName: backend.name,
      maxSteps: cfg.train.maxSteps,
      optimizer,
      params,
      singleProcess: method.recipe,
      saveModel: async (d) => {
        mkdirSync(join(d, 'policy'));
        await policy.model.savePretrained(join(d, 'policy'));
      },
      saveTokenizer: (d) => {
        tok.save(d);
        tok.save(join(d, 'policy'));
      },
      progress: () => ({
        epoch: sampler.epochProgress,
        data: { sampler: sampler.getState(), buffer: buffer ?? null },
      }),
      update: async (step, lr) => {
        const t0 = performance.now();
        const k = (step - 1) % cycle; // position in this generation batch's steps
        let metrics: Record<string, number> = {};
        if (k === 0 || !buffer) {
          const g = await generate(step);
          buffer = g.buffer;
          metrics = g.metrics;
        }
        const buf = buffer;
        const { batch, mask, old, ref } = prepare(buf);
        const { Tr } = batch;
        const chunk = k % stepsPerGeneration;
        const rows = buf.order.slice(chunk * cfg.train.batchSize, (chunk + 1) * cfg.train.batchSize);
        const n = rows.length;
        const rowsTensor = (a: Float32Array | undefined) =>
          a && (tf.tensor2d(rowsOf(a, Tr, rows), [n, Tr]) as tf.Tensor2D);
        let parts: Record<string, tf.Scalar> = {};
        let entropy = 0;
        const { value, grads } = valueAndGrads(params, () => {
          const current = responseLogprobs(lm, batch, rows, {
            temperature: o.temperature,
            lossChunkSize: cfg.train.lossChunkSize,
            withEntropy: true,
          });
          entropy = current.entropy!;
          const r = method.loss(
            {
              perTokenLogps: current.logprobs,
              oldPerTokenLogps: rowsTensor(old),
              refPerTokenLogps: rowsTensor(ref),
              advantages: tf.tensor1d(rows.map((b) => buf.advantages[b])),
              completionMask: tf.tensor2d(rowsOf(mask, Tr, rows), [n, Tr]) as tf.Tensor2D,
            },
            o,
          );
          parts = Object.fromEntries(Object.entries(r.metrics).map(([key, x]) => [key, tf.keep(x.clone())]));
          return r.loss;
        });
        const loss = value.dataSync()[0];
        value.dispose();
        const { norm, problem } = guardedUpdate(grads, loss, {
          clip: cfg.optim.gradClip,
          apply: (g) => optimizer.apply(g, lr),
        });
        const stepMetrics: Record<string, number> = { loss, grad_norm: norm, entropy, lr };
        for (const [key, x] of Object.entries(parts)) stepMetrics[key] = x.dataSync()[0];
        tf.dispose(Object.values(parts));
        const all = { ...metrics, ...stepMetrics };
        window.push(all);
        run.onUpdate?.(step, all);
        run.onStep?.(step, loss);
        if (k === cycle - 1) buffer = undefined; // the next step starts a new generation
        if (metrics.reward !== undefined) lastReward = metrics.reward;
        // prompt and completion tokens of this step's batch
        const tokens = rows.reduce((s, b) => s + batch.lengths[b] + trainPrompts[buf.prompts[b]].ids.length, 0);
        return {
          shown: { name: 'reward', value: lastReward, meanOf: 1 },
          tokensPerSecond: tokens / ((performance.now() - t0) / 1000),
          problem,
        };
      },
      scalars: () => {
        const out = averaged(window);
        window = [];
        return out;
      },
      evaluate: heldOut.length ? evaluate : undefined,
      samples: () => [...samples, ...evalLines],
      bestByEval: false,
      dispose: () => policy.dispose(),
    },
    run,
  );
  return {
    runDir,
    step: result.step,
    stopped: result.stopped,
    lastCheckpoint: result.lastCheckpoint,
    eval: result.lastEval,
  };
}
