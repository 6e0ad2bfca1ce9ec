// KTO as one readable recipe (Ethayarajh et al. 2024; TRL's KTOTrainer): setup -> train.
// Each example is one completion labelled desirable or undesirable. For a batch:
//   1. the KL reference point's pairs: prompt i with completion i − 1 (TRL rotates the batch's
//      completions by one), scored by the policy and the reference without gradients
//   2. the reference's log-probs of the batch's own completions, without gradients
//   3. the policy's log-probs of them (the gradient flows here), and ktoLoss (loss.ts): the
//      mean over desirable and undesirable losses, weighted
// The reference is a frozen copy of model.pretrained, or with LoRA the policy with its
// adapter disabled (no second copy in memory).
import * as tf from '@tensorflow/tfjs-core';
import { collateCompletions, type Tokenized } from '@anneal/data';
import type { CausalLm } from '@anneal/modeling';
import {
  heldOutMeans,
  makeOptimizer,
  modelBatchLogps,
  openLogger,
  openOfflineRun,
  silentReporter,
  trainLoop,
  type RecipeResult,
  type RunOptions,
} from '@anneal/training';
import type { KtoConfig } from './config.js';
import { ktoLoss } from './loss.js';

type Example = Extract<Tokenized, { kind: 'unpaired' }>;

/** Examples of prepared data: unpaired rows as they are, each pair as a desirable and an undesirable example. */
export function unpaired(rows: Tokenized[]): Example[] {
  return rows.flatMap((t): Example[] => {
    if (t.kind === 'unpaired') return [t];
    if (t.kind === 'preference')
      return [
        { kind: 'unpaired', prompt: t.prompt, completion: t.chosen, label: true },
        { kind: 'unpaired', prompt: t.prompt, completion: t.rejected, label: false },
      ];
    return [];
  });
}

/** Per-example log-probs [n] of the completions under lm. Call inside tf.tidy or a gradient function. */
function completionLogps(
  lm: CausalLm,
  items: Array<{ prompt: Int32Array; completion: Int32Array }>,
  padId: number,
  o: { training: boolean; seed?: number; lossChunkSize: number | 'auto' },
) {
  const b = collateCompletions(items, { padId });
  const args = {
    inputIds: tf.tensor2d(b.inputIds, [items.length, b.length], 'int32'),
    attentionMask: tf.tensor2d(b.attentionMask, [items.length, b.length], 'int32'),
    training: o.training,
    dropoutSeed: o.seed,
  };
  const r = modelBatchLogps(lm, args, b.labels, o);
  return { ...r, tokens: b.attentionMask.reduce((a, m) => a + m, 0) };
}

const sumWhere = (x: ArrayLike<number>, pick: boolean[], want: boolean) =>
  Array.from(x).reduce((s, v, i) => s + (pick[i] === want ? v : 0), 0);

export async function runKto(cfg: KtoConfig, configFile: string, o: RunOptions = {}): Promise<RecipeResult> {
  const report = o.reporter ?? silentReporter;
  const k = cfg.kto;
  const lossChunkSize = cfg.train.lossChunkSize;

  // ---- setup: backend, run folder, policy and reference, tokenizer, data
  const { runDir, resumeDir, state, backendName, policy, data } = await openOfflineRun(cfg, configFile, o, {
    title: 'KTO',
    reference: true,
  });
  const { tok, model, lm, padTokenId: padId } = policy;
  const train = unpaired(data.train);
  const held = unpaired(data.eval);
  const desirable = train.filter((e) => e.label).length;
  report.info(
    `policy: ${policy.base.modelType} ${(policy.base.numParameters / 1e6).toFixed(2)}M parameters; reference: ${policy.reference}; data: ${train.length} train examples (${desirable} desirable, ${train.length - desirable} undesirable) / ${held.length} eval; loss ${k.lossType}, beta ${k.beta}`,
  );
  const withReference = policy.withReference!;
  const opt = makeOptimizer(model.params, cfg.optim, resumeDir);
  const logger = openLogger(runDir, cfg, state?.step, o.collective?.rank);

  /**
   * What a batch needs outside the gradient tape: the KL pairs' log-probs under policy and
   * reference (TRL computes the policy's without gradients too), and the reference's log-probs
   * of the batch's completions.
   */
  const fixed = (items: Example[]) =>
    tf.tidy(() => {
      // another row's completion can be longer than this prompt leaves room for: cut at maxLength, as TRL's KL rows are
      const mismatched = items.map((e, i) => ({
        prompt: e.prompt,
        completion: items[(i + items.length - 1) % items.length].completion.subarray(
          0,
          Math.max(1, cfg.data.maxLength - e.prompt.length),
        ),
      }));
      const o2 = { training: false, lossChunkSize };
      return {
        policyKl: completionLogps(lm, mismatched, padId, o2).logps.dataSync(),
        referenceKl: withReference((ref) => completionLogps(ref, mismatched, padId, o2).logps.dataSync()),
        reference: withReference((ref) => completionLogps(ref, items, padId, o2).logps.dataSync()),
      };
    });

  /** The batch's summed loss and TRL's metrics (each a batch mean × the example count, as the loop averages). */
  const batchLoss = (items: Example[], f: ReturnType<typeof fixed>, training: boolean, seed: number) => {
    const labels = items.map((e) => e.label);
    const chosenIdx = tf.tensor1d(
      labels.flatMap((l, i) => (l ? [i] : [])),
      'int32',
    );
    const rejectedIdx = tf.tensor1d(
      labels.flatMap((l, i) => (l ? [] : [i])),
      'int32',
    );
    const p = completionLogps(lm, items, padId, { training, seed, lossChunkSize });
    const ref = tf.tensor1d(f.reference);
    const r = ktoLoss(
      {
        policyChosenLogps: tf.gather(p.logps, chosenIdx),
        referenceChosenLogps: tf.gather(ref, chosenIdx),
        policyRejectedLogps: tf.gather(p.logps, rejectedIdx),
        referenceRejectedLogps: tf.gather(ref, rejectedIdx),
        policyKlLogps: tf.tensor1d(f.policyKl),
        referenceKlLogps: tf.tensor1d(f.referenceKl),
      },
      k,
    );
    const n = items.length;
    const nc = chosenIdx.size;
    const nr = rejectedIdx.size;
    const logps = p.logps.dataSync();
    const [rc, rr] = [r.chosenRewards.dataSync(), r.rejectedRewards.dataSync()];
    const meanOf = (a: ArrayLike<number>) => Array.from(a).reduce((s, x) => s + x, 0) / Math.max(1, a.length);
    const metrics: Record<string, number> = {
      kl: r.kl.dataSync()[0],
      'rewards/chosen': meanOf(rc),
      'rewards/rejected': meanOf(rr),
      'rewards/margins': meanOf(rc) - meanOf(rr),
      'logps/chosen': sumWhere(logps, labels, true) / Math.max(1, nc),
      'logps/rejected': sumWhere(logps, labels, false) / Math.max(1, nr),
      'count/chosen': nc,
      'count/rejected': nr,
    };
    return {
      sum: tf.sum(r.losses) as tf.Scalar,
      count: n,
      tokens: p.tokens,
      metrics: Object.fromEntries(Object.entries(metrics).map(([key, v]) => [key, v * n])),
    };
  };

  // whole batches: the KL pairs need at least two rows
  const evaluate = () =>
    heldOutMeans(held, { ...cfg.train, wholeBatches: true }, (items) => batchLoss(items, fixed(items), false, 0));

  // ---- train
  const result = await trainLoop(
    cfg,
    {
      ...{ runDir, logger, state, resumeDir, backendName },
      model,
      optimizer: opt,
      numRows: train.length,
      loss: (idx, seed) => {
        const items = Array.from(idx, (i) => train[i]);
        const f = fixed(items); // outside the tape
        return () => batchLoss(items, f, !k.disableDropout, seed);
      },
      evaluate: held.length >= cfg.train.batchSize ? evaluate : undefined,
      saveTokenizer: (dir) => tok.save(dir),
    },
    o,
  );
  policy.disposeReference(); // the loop disposed the policy
  return {
    runDir,
    step: result.step,
    stopped: result.stopped,
    lastCheckpoint: result.lastCheckpoint,
    eval: result.lastEval,
  };
}
