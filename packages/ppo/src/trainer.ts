// One PPO update, as TRL's PPOTrainer does it, top to bottom:
//   1. rollout: sample responses for a batch of prompts; log-probs under policy and
//      reference, values, and the reward of each whole response
//   2. rewards per token: −β·KL at every response token, the score added at the last one
//   3. GAE advantages and returns; advantages whitened
//   4. numPpoEpochs passes over shuffled minibatches: clipped policy loss + vfCoef × clipped
//      value loss, one optimizer over policy and value parameters, gradients clipped
//   5. KL controller update; metrics with TRL's names
// Dropout is off throughout (TRL disables it for PPO), so log-probs are deterministic.
import * as tf from '@tensorflow/tfjs-core';
import { deriveSeed, Rng, valueAndGrads, type AdamW } from '@anneal/core';
import {
  guardedUpdate,
  klPerToken,
  layout,
  layoutLogprobs,
  liveTensorBytes,
  maskedMoments,
  maskedWhiten,
  memoryReport,
  responseLogprobs,
  rowsOf,
  sampleResponses,
} from '@anneal/training';
import type { CausalLm, DecoderForSequenceClassification } from '@anneal/modeling';
import { gae } from './advantages.js';
import { ppoPolicyLoss, ppoValueLoss } from './losses.js';
import { responseValues } from './values.js';
import type { PpoOptions } from './config.js';

/** Scores whole responses: (prompt texts, completion texts) -> one number each. */
export type RewardFn = (prompts: string[], completions: string[]) => number[] | Promise<number[]>;

export interface PpoModels {
  policy: CausalLm;
  /** Runs fn on the frozen reference (a copy, or the policy with its adapter disabled). */
  withReference: <T>(fn: (lm: CausalLm) => T) => T;
  value: DecoderForSequenceClassification;
  /** Trainable parameters of policy and value, prefixed "policy." and "value." (one optimizer, as TRL). */
  params: Map<string, tf.Variable>;
  reward: RewardFn;
  decode: (ids: number[]) => string;
  eosTokenId: number;
  padTokenId: number;
}

export interface UpdateResult {
  metrics: Record<string, number>;
  /** Tokens (prompts and responses) the update processed. */
  tokens: number;
  /** Prompt, completion and score of the first few episodes. */
  samples: Array<{ prompt: string; completion: string; score: number }>;
  /** The first NaN/Inf loss or gradient norm met (its minibatch's step was skipped). */
  problem?: string;
}

const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, x) => s + x, 0) / Math.max(1, a.length);
/** Per-row sums of a [B, T] array. */
const rowSums = (a: ArrayLike<number>, B: number, T: number) =>
  Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => a[b * T + t]).reduce((s, x) => s + x, 0));

/** Everything the update needs from a rollout, on the host. */
export async function rollout(
  m: PpoModels,
  prompts: number[][],
  o: PpoOptions & { lossChunkSize: number | 'auto' },
  seed: number,
  klCoef: number,
) {
  // 1. sample (the policy's log-probs of the sampled tokens come from the sampling forward, as
  // in TRL), lay out, score with the reference and the value model
  const sampled: number[][] = [];
  const responses = sampleResponses(
    m.policy,
    prompts,
    {
      responseLength: o.responseLength,
      temperature: o.temperature,
      eosTokenId: o.stopToken === 'eos' ? m.eosTokenId : -1,
      padTokenId: m.padTokenId,
      seed,
    },
    sampled,
  );
  const batch = layout(prompts, responses, m.padTokenId, m.eosTokenId);
  const { B, Tr } = batch;
  const rows = Array.from({ length: B }, (_, b) => b);
  const logprobs = layoutLogprobs(sampled, Tr);
  const [refLogprobs, values] = tf.tidy(
    () =>
      [
        m.withReference((ref) => responseLogprobs(ref, batch, rows, o).logprobs.dataSync()),
        responseValues(m.value, batch, rows).dataSync(),
      ] as const,
  );
  const promptTexts = prompts.map((p) => m.decode(p));
  const completions = responses.map((r) => m.decode(r.filter((t) => t !== m.eosTokenId)));
  const scores = Float32Array.from(await m.reward(promptTexts, completions));
  if (o.missingEosPenalty !== undefined)
    batch.endedWithEos.forEach((e, b) => (scores[b] -= e ? 0 : o.missingEosPenalty!));

  // 2. per-token rewards: −β·KL everywhere, the score at each response's last token
  const mask = batch.responseMask;
  const kl = klPerToken(logprobs, refLogprobs, o.klEstimator).map((v, i) => v * mask[i]);
  const nonScore = kl.map((v) => -klCoef * v);
  const rewards = Float32Array.from(nonScore);
  batch.lengths.forEach((len, b) => (rewards[b * Tr + Math.max(0, len - 1)] += scores[b]));

  // 3. advantages
  const vals = values.map((v, i) => v * mask[i]);
  const { advantages, returns } = gae(
    o.whitenRewards ? maskedWhiten(rewards, mask, false) : rewards,
    vals,
    mask,
    B,
    Tr,
    o,
  );
  const whitened = maskedWhiten(advantages, mask);
  const klSums = rowSums(kl, B, Tr);
  const nonScoreSums = rowSums(nonScore, B, Tr);
  return {
    batch,
    promptTexts,
    completions,
    scores,
    logprobs: Float32Array.from(logprobs),
    values: Float32Array.from(vals),
    advantages: whitened,
    returns,
    klSums,
    nonScoreSums,
  };
}

export async function ppoUpdate(
  m: PpoModels,
  optimizer: AdamW,
  prompts: number[][],
  o: PpoOptions & { gradClip: number; lossChunkSize: number | 'auto' },
  step: { seed: number; update: number; lr: number; klCoef: number },
  /** Given: the memory line (training's memoryReport) goes to `report` after the first minibatch's forward pass. */
  memory?: { report: (line: string) => void; gradientCheckpointing: boolean },
): Promise<UpdateResult> {
  let onMemory = memory?.report;
  const r = await rollout(m, prompts, o, deriveSeed(step.seed, step.update, 0), step.klCoef);
  const { batch } = r;
  const { B, Tr } = batch;

  // 4. PPO epochs over shuffled minibatches
  const mb = Math.max(1, Math.floor(B / o.numMiniBatches));
  const stats = {
    pg: [] as number[],
    vf: [] as number[],
    pgClip: [] as number[],
    vfClip: [] as number[],
    approxkl: [] as number[],
    ratio: [] as number[],
    entropy: [] as number[],
  };
  let problem: string | undefined;
  for (let epoch = 0; epoch < o.numPpoEpochs; epoch++) {
    const order = Int32Array.from({ length: B }, (_, i) => i);
    new Rng(deriveSeed(step.seed, step.update, epoch + 1)).shuffle(order);
    for (let k = 0; k + mb <= B; k += mb) {
      const rows = Array.from(order.subarray(k, k + mb));
      const t = (a: Float32Array) => tf.tensor2d(rowsOf(a, Tr, rows), [mb, Tr]);
      let parts: tf.Scalar[] = [];
      let entropy = 0;
      const before = onMemory ? liveTensorBytes() : 0;
      const { value, grads } = valueAndGrads(m.params, () => {
        const start = onMemory ? liveTensorBytes() : 0;
        const mask = t(batch.responseMask);
        const policy = responseLogprobs(m.policy, batch, rows, { ...o, withEntropy: true });
        const logprobs = policy.logprobs;
        entropy = policy.entropy!;
        const pg = ppoPolicyLoss(logprobs, t(r.logprobs), t(r.advantages), mask, o.cliprange);
        const vf = ppoValueLoss(
          responseValues(m.value, batch, rows),
          t(r.values),
          t(r.returns),
          mask,
          o.cliprangeValue,
        );
        parts = [pg.loss, vf.loss, pg.clipfrac, vf.clipfrac, pg.approxkl, pg.ratio].map((x) => tf.keep(x.clone()));
        const total = tf.add(pg.loss, tf.mul(o.vfCoef, vf.loss)) as tf.Scalar;
        if (onMemory) {
          const trainable = [...m.params.values()].filter((v) => v.trainable).reduce((n, v) => n + v.size, 0);
          const kept = liveTensorBytes() - start;
          const { gradientCheckpointing } = memory!;
          onMemory(memoryReport({ before, trainable, kept, tokens: mb * (batch.Tq + Tr), gradientCheckpointing }));
          onMemory = undefined;
        }
        return total;
      });
      const loss = value.dataSync()[0];
      value.dispose();
      // clipped, and skipped when the loss or gradient is NaN/Inf (the loop then stops or goes on per train.onNonFinite)
      problem ??= guardedUpdate(grads, loss, { clip: o.gradClip, apply: (g) => optimizer.apply(g, step.lr) }).problem;
      const [pg, vf, pgClip, vfClip, approxkl, ratio] = parts.map((x) => x.dataSync()[0]);
      tf.dispose(parts);
      Object.entries({ pg, vf, pgClip, vfClip, approxkl, ratio, entropy }).forEach(([key, v]) =>
        stats[key as keyof typeof stats].push(v),
      );
    }
  }

  // 5. metrics (TRL's names)
  const ratioMoments = maskedMoments(
    stats.ratio,
    stats.ratio.map(() => 1),
  );
  const metrics = {
    'objective/kl': mean(r.klSums),
    'objective/entropy': mean(
      rowSums(
        r.logprobs.map((v, i) => -v * batch.responseMask[i]),
        B,
        Tr,
      ),
    ),
    'objective/non_score_reward': mean(r.nonScoreSums),
    'objective/rlhf_reward': mean(Array.from(r.scores, (s, b) => s + r.nonScoreSums[b])),
    'objective/scores': mean(r.scores),
    'policy/approxkl_avg': mean(stats.approxkl),
    'policy/clipfrac_avg': mean(stats.pgClip),
    'loss/policy_avg': mean(stats.pg),
    'loss/value_avg': mean(stats.vf),
    'val/clipfrac_avg': mean(stats.vfClip),
    'policy/entropy_avg': mean(stats.entropy),
    'val/ratio': ratioMoments.mean,
    'val/ratio_var': ratioMoments.variance,
    'val/num_eos_tokens': batch.endedWithEos.filter(Boolean).length,
  };
  const tokens = batch.attentionMask.reduce((n, m) => n + m, 0); // prompt and response tokens the update processed
  return {
    metrics,
    tokens,
    problem,
    samples: r.promptTexts.map((prompt, b) => ({ prompt, completion: r.completions[b], score: r.scores[b] })),
  };
}
