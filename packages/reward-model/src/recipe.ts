// Reward modelling, as one readable recipe: setup -> train -> save -> cleanup. A checkpoint
// gets a one-output score head (the last real token's hidden state for decoders, [CLS] for
// BERT) and learns from preference pairs that the chosen response scores higher (the
// Bradley–Terry loss). Chosen and rejected rows go through one forward pass. Saved as a
// Hugging Face *ForSequenceClassification checkpoint with num_labels 1.
import * as tf from '@tensorflow/tfjs-core';
import { configToYaml, useBackend } from '@anneal/core';
import { collatePreference, prepareDataset, type Tokenized } from '@anneal/data';
import { classifierFrom } from '@anneal/modeling';
import { loadTokenizerSync, tokenizerFingerprint } from '@anneal/tokenizers';
import {
  baseWeightsFrom,
  loadBase,
  localModelDir,
  makeOptimizer,
  openLogger,
  openRunFolder,
  requireFits,
  silentReporter,
  trainLoop,
  withAdapter,
  type RunOptions,
  type RecipeResult,
  requireTokenizerFits,
} from '@anneal/training';
import type { RewardConfig } from './config.js';
import { bradleyTerryLoss, rewardMetrics } from './loss.js';

type Pair = Extract<Tokenized, { kind: 'preference' }>;

export type RewardResult = RecipeResult;

export async function runReward(cfg: RewardConfig, configFile: string, o: RunOptions = {}): Promise<RewardResult> {
  const report = o.reporter ?? silentReporter;

  // ---- setup: backend, run folder, tokenizer, model with a score head, data
  const backend = await useBackend(cfg.backend);
  const { runDir, resumeDir, state } = openRunFolder(cfg.outputDir, cfg.name, configToYaml(cfg), backend, {
    resume: o.resume,
    seed: cfg.seed,
    overwrite: o.overwrite,
    rank: o.collective?.rank,
    info: (m) => report.info(m),
  });
  const tok = loadTokenizerSync(resumeDir ?? cfg.tokenizer.path ?? (await localModelDir(cfg.model.pretrained)));
  const padId = tok.padTokenId ?? tok.eosTokenId ?? 0;
  const base = classifierFrom(
    await loadBase(baseWeightsFrom(cfg.model.pretrained, resumeDir, cfg.peft, configFile), cfg.quantization, {
      info: (m) => report.info(m),
    }),
    ['LABEL_0'],
    padId,
    cfg.seed,
  );
  const peft = cfg.peft && {
    ...cfg.peft,
    modulesToSave: cfg.peft.modulesToSave.length ? cfg.peft.modulesToSave : ['classifier', 'score'],
  };
  requireFits(cfg.data.maxLength, base, configFile);
  requireTokenizerFits(tok, base, { file: configFile, field: 'tokenizer.path' });
  const model = withAdapter(base, cfg, { resumeDir, file: configFile, info: (m) => report.info(m), peft });
  const fingerprint = tokenizerFingerprint(tok);
  const data = await prepareDataset(cfg.data, tok, { tokenizerFingerprint: fingerprint, configFile, seed: cfg.seed });
  if (data.stats.badRows.count) report.info(data.stats.badRows.summary());
  const train = data.train as Pair[];
  const held = data.eval as Pair[];
  report.info(
    `model: ${base.modelType} ${(base.numParameters / 1e6).toFixed(2)}M parameters with a reward head; data: ${train.length} train / ${held.length} eval pairs`,
  );

  const opt = makeOptimizer(model.params, cfg.optim, resumeDir);
  const logger = openLogger(runDir, cfg, state?.step, o.collective?.rank);

  /** Rewards of a batch of pairs: chosen [N] and rejected [N] from one forward over 2N rows. */
  const rewardsOf = (pairs: Pair[], training: boolean, seed = 0) => {
    const b = collatePreference(pairs, { padId });
    const n = pairs.length;
    const logits = model.forward({
      inputIds: tf.tensor2d(b.inputIds, [2 * n, b.length], 'int32'),
      attentionMask: tf.tensor2d(b.attentionMask, [2 * n, b.length], 'int32'),
      training,
      dropoutSeed: seed,
    }).logits; // [2N, 1]
    const r = tf.reshape(logits, [2 * n]);
    const tokens = b.attentionMask.reduce((a, m) => a + m, 0);
    return { chosen: tf.slice(r, 0, n) as tf.Tensor1D, rejected: tf.slice(r, n, n) as tf.Tensor1D, tokens };
  };
  const lossOf = (pairs: Pair[], chosen: tf.Tensor1D, rejected: tf.Tensor1D) => {
    const margin = pairs.some((p) => p.margin !== undefined) ? tf.tensor1d(pairs.map((p) => p.margin ?? 0)) : undefined;
    return tf.sum(
      bradleyTerryLoss(chosen, rejected, { margin, centerRewardsCoefficient: cfg.centerRewardsCoefficient }),
    ) as tf.Scalar;
  };

  /** Loss and TRL's metrics over the eval pairs (or their first evalBatches batches). */
  const evaluate = () => {
    const [c, r]: number[][] = [[], []];
    let lossSum = 0;
    const nBatches = Math.ceil(held.length / cfg.train.batchSize);
    const limit = cfg.train.evalBatches > 0 ? Math.min(cfg.train.evalBatches, nBatches) : nBatches;
    for (let k = 0; k < limit; k++) {
      const pairs = held.slice(k * cfg.train.batchSize, (k + 1) * cfg.train.batchSize);
      tf.tidy(() => {
        const { chosen, rejected } = rewardsOf(pairs, false);
        lossSum += lossOf(pairs, chosen, rejected).dataSync()[0];
        c.push(...chosen.dataSync());
        r.push(...rejected.dataSync());
      });
    }
    const m = rewardMetrics(c, r);
    return {
      'eval/loss': lossSum / Math.max(1, c.length),
      ...Object.fromEntries(Object.entries(m).map(([k, v]) => [`eval/${k}`, v])),
    };
  };

  // ---- train
  const result = await trainLoop(
    cfg,
    {
      ...{ runDir, logger, state, resumeDir, backendName: backend.name },
      model,
      optimizer: opt,
      numRows: train.length,
      loss: (idx, seed) => () => {
        const pairs = Array.from(idx, (i) => train[i]);
        const { chosen, rejected, tokens } = rewardsOf(pairs, true, seed);
        const m = rewardMetrics(chosen.dataSync(), rejected.dataSync());
        // metrics as sums over the pairs: the loop averages them over the accumulated batch
        return {
          sum: lossOf(pairs, chosen, rejected),
          count: pairs.length,
          tokens,
          metrics: Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v * pairs.length])),
        };
      },
      evaluate: held.length ? evaluate : undefined,
      saveTokenizer: (d) => tok.save(d),
    },
    o,
  );

  // ---- cleanup (the loop disposed the model and the optimizer)
  return {
    runDir,
    step: result.step,
    stopped: result.stopped,
    lastCheckpoint: result.lastCheckpoint,
    eval: result.lastEval,
  };
}
