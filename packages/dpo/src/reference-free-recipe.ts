// ORPO and CPO (with SimPO and AlphaPO) as recipes, as TRL's ORPOTrainer and CPOTrainer run
// them: preference pairs, one concatenated forward of chosen and rejected rows, no reference
// model at all. The objective of a batch:
//   ORPO  NLL(chosen) − mean(β · log σ(log odds ratio))          (log-probs averaged per token)
//   CPO   mean(cpoLoss) + cpoAlpha · NLL(chosen)                  (averaged for ipo and simpo)
// where NLL(chosen) is the mean negative log-prob over all chosen completion tokens of the batch.
import * as tf from '@tensorflow/tfjs-core';
import { deriveSeed } from '@anneal/core';
import { generate } from '@anneal/modeling';
import {
  heldOutMeans,
  makeOptimizer,
  openLogger,
  openOfflineRun,
  silentReporter,
  trainLoop,
  type RecipeResult,
  type RunOptions,
} from '@anneal/training';
import { dpoMetrics } from './metrics.js';
import { concatenatedForward, type Pair } from './reference.js';
import type { CpoConfig, OrpoConfig } from './reference-free-config.js';
import { cpoLoss, orpoLoss } from './reference-free.js';

/** One batch's loss terms from its chosen and rejected log-probs and the chosen rows' NLL. */
interface Objective {
  title: string;
  average: boolean;
  disableDropout: boolean;
  terms: (
    chosen: tf.Tensor1D,
    rejected: tf.Tensor1D,
    nll: tf.Scalar,
  ) => {
    loss: tf.Scalar; // the batch mean
    chosenRewards: tf.Tensor1D;
    rejectedRewards: tf.Tensor1D;
    extra: Record<string, tf.Scalar>;
  };
}

const orpo = (cfg: OrpoConfig): Objective => ({
  title: 'ORPO',
  average: true,
  disableDropout: cfg.orpo.disableDropout,
  terms: (chosen, rejected, nll) => {
    const r = orpoLoss(chosen, rejected, cfg.orpo.beta);
    return {
      loss: tf.sub(nll, tf.mean(r.losses)) as tf.Scalar,
      chosenRewards: r.chosenRewards,
      rejectedRewards: r.rejectedRewards,
      extra: { log_odds_ratio: r.meanRatio, log_odds_chosen: r.meanLogOdds },
    };
  },
});

const cpo = (cfg: CpoConfig): Objective => ({
  title: cfg.cpo.lossType === 'simpo' ? 'SimPO (CPO)' : 'CPO',
  average: cfg.cpo.lossType === 'ipo' || cfg.cpo.lossType === 'simpo',
  disableDropout: cfg.cpo.disableDropout,
  terms: (chosen, rejected, nll) => {
    const r = cpoLoss(chosen, rejected, cfg.cpo);
    return {
      loss: tf.add(tf.mean(r.losses), tf.mul(cfg.cpo.cpoAlpha, nll)) as tf.Scalar,
      chosenRewards: r.chosenRewards,
      rejectedRewards: r.rejectedRewards,
      extra: {},
    };
  },
});

export const runOrpo = (cfg: OrpoConfig, configFile: string, o: RunOptions = {}) =>
  runReferenceFree(cfg, orpo(cfg), configFile, o);
export const runCpo = (cfg: CpoConfig, configFile: string, o: RunOptions = {}) =>
  runReferenceFree(cfg, cpo(cfg), configFile, o);

async function runReferenceFree(
  cfg: OrpoConfig | CpoConfig,
  objective: Objective,
  configFile: string,
  o: RunOptions,
): Promise<RecipeResult> {
  const report = o.reporter ?? silentReporter;
  const lossChunkSize = cfg.train.lossChunkSize;

  // ---- setup: backend, run folder, policy (no reference), tokenizer, pairs
  const { runDir, resumeDir, state, backendName, policy, data } = await openOfflineRun(cfg, configFile, o, {
    title: objective.title,
    reference: false,
  });
  const { tok, model, lm, padTokenId: padId } = policy;
  const train = data.train as Pair[];
  const held = data.eval as Pair[];
  report.info(
    `${objective.title} policy: ${policy.base.modelType} ${(policy.base.numParameters / 1e6).toFixed(2)}M parameters; no reference model; data: ${train.length} train / ${held.length} eval pairs`,
  );
  const opt = makeOptimizer(model.params, cfg.optim, resumeDir);
  const logger = openLogger(runDir, cfg, state?.step, o.collective?.rank);

  /** The batch's loss (as a sum over its pairs) and TRL's metrics (each a batch value × the pair count). */
  const batchLoss = (pairs: Pair[], training: boolean, seed: number) => {
    const p = concatenatedForward(lm, pairs, padId, { average: objective.average, training, seed, lossChunkSize });
    const n = pairs.length;
    // NLL over every chosen token of the batch: the per-row sums (averages × counts) over the token count
    const chosenCounts = p.counts.subarray(0, n);
    const chosenSums = objective.average ? tf.mul(p.chosen, tf.tensor1d(chosenCounts)) : p.chosen;
    const nll = tf.div(
      tf.neg(tf.sum(chosenSums)),
      Math.max(
        1,
        chosenCounts.reduce((a, c) => a + c, 0),
      ),
    ) as tf.Scalar;
    const t = objective.terms(p.chosen, p.rejected, nll);
    const meanLogits = p.meanLogits.dataSync();
    const metrics: Record<string, number> = {
      ...dpoMetrics({
        chosenRewards: t.chosenRewards.dataSync(),
        rejectedRewards: t.rejectedRewards.dataSync(),
        chosenLogps: p.chosen.dataSync(),
        rejectedLogps: p.rejected.dataSync(),
        chosenMeanLogits: meanLogits.subarray(0, n),
        rejectedMeanLogits: meanLogits.subarray(n),
        chosenCounts,
        rejectedCounts: p.counts.subarray(n),
      }),
      nll_loss: nll.dataSync()[0],
      ...Object.fromEntries(Object.entries(t.extra).map(([k, v]) => [k, v.dataSync()[0]])),
    };
    return {
      sum: tf.mul(t.loss, n) as tf.Scalar,
      count: n,
      tokens: p.tokens,
      metrics: Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, v * n])),
    };
  };

  const evaluate = () => heldOutMeans(held, cfg.train, (pairs) => batchLoss(pairs, false, 0));

  // ---- train
  const result = await trainLoop(
    cfg,
    {
      ...{ runDir, logger, state, resumeDir, backendName },
      model,
      optimizer: opt,
      numRows: train.length,
      loss: (idx, seed) => {
        const pairs = Array.from(idx, (i) => train[i]);
        return () => batchLoss(pairs, !objective.disableDropout, seed);
      },
      evaluate: held.length ? evaluate : undefined,
      samples: (step) =>
        cfg.sample.prompts.map((prompt, i) => {
          const ids = tok.encode(prompt);
          const [out] = generate(lm, [ids], {
            maxNewTokens: cfg.sample.maxNewTokens,
            eosTokenId: tok.eosTokenId,
            seed: deriveSeed(cfg.seed, step, 1, i),
          });
          return `${prompt} -> ${tok.decode(out.slice(ids.length))}`;
        }),
      saveTokenizer: (dir) => tok.save(dir),
    },
    o,
  );
  return {
    runDir,
    step: result.step,
    stopped: result.stopped,
    lastCheckpoint: result.lastCheckpoint,
    eval: result.lastEval,
  };
}
