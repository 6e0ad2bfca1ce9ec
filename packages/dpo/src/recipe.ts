// Direct Preference Optimization, as one readable recipe: setup -> reference -> train ->
// cleanup. The policy (an SFT checkpoint, fully or through LoRA) learns to prefer each pair's
// chosen completion over the rejected one more than a frozen reference does. Chosen and
// rejected rows go through one concatenated forward pass. The reference is, in order of
// what the config says: nothing (referenceFree), log-probs precomputed once and kept in the
// run folder, a frozen copy loaded from referenceModel / model.pretrained, or — with LoRA —
// the policy itself with its adapter disabled (no second copy in memory).
import * as tf from '@tensorflow/tfjs-core';
import { configToYaml, deriveSeed, useBackend } from '@anneal/core';
import { prepareDataset } from '@anneal/data';
import { generate, loadPretrained, type CausalLm, type PretrainedModel } from '@anneal/modeling';
import type { LoraModel } from '@anneal/peft-lora';
import { loadTokenizerSync, tokenizerFingerprint, type Tokenizer } from '@anneal/tokenizers';
import {
  baseWeightsFrom,
  heldOutMeans,
  loadBase,
  localModelDir,
  makeOptimizer,
  openLogger,
  openRunFolder,
  requireCausalLm,
  requireFits,
  silentReporter,
  trainLoop,
  withAdapter,
  type RecipeResult,
  type RunOptions,
  requireTokenizerFits,
} from '@anneal/training';
import { join } from 'node:path';
import type { DpoConfig } from './config.js';
import { dpoLoss } from './loss.js';
import { dpoMetrics } from './metrics.js';
import {
  cachedReferenceLogps,
  concatenatedForward,
  pairLogps,
  referenceKey,
  type Pair,
  type PairLogps,
} from './reference.js';

export interface DpoResult extends RecipeResult {
  /** Where the reference log-probs came from. */
  reference: 'none' | 'precomputed' | 'copy' | 'adapter-disabled';
}

export async function runDpo(cfg: DpoConfig, configFile: string, o: RunOptions = {}): Promise<DpoResult> {
  const report = o.reporter ?? silentReporter;
  const d = cfg.dpo;
  const average = d.lossType === 'ipo'; // TRL: IPO compares per-token averages
  const lossChunkSize = cfg.train.lossChunkSize; // the policy's and the reference's head in chunks of rows

  // ---- setup: backend, run folder, policy, tokenizer, data
  const backend = await useBackend(cfg.backend);
  const { runDir, resumeDir, state } = openRunFolder(cfg.outputDir, cfg.name, configToYaml(cfg), backend, {
    resume: o.resume,
    seed: cfg.seed,
    overwrite: o.overwrite,
    rank: o.collective?.rank,
    info: (m) => report.info(m),
  });
  const base = await loadBase(
    baseWeightsFrom(cfg.model.pretrained, resumeDir, cfg.peft, configFile),
    cfg.quantization,
    { info: (m) => report.info(m) },
  );
  requireCausalLm(base, cfg.model.pretrained, 'DPO', { file: configFile, field: 'model.pretrained' });
  requireFits(cfg.data.maxLength, base, configFile);
  const model = withAdapter(base, cfg, { resumeDir, file: configFile, info: (m) => report.info(m) });
  const policy = model as unknown as CausalLm;
  const tok: Tokenizer = loadTokenizerSync(
    resumeDir ?? cfg.tokenizer.path ?? (await localModelDir(cfg.model.pretrained)),
  );
  requireTokenizerFits(tok, base, { file: configFile, field: 'tokenizer.path' });
  if (cfg.tokenizer.chatTemplate)
    Object.assign(tok.config, {
      chatTemplate: cfg.tokenizer.chatTemplate,
      chatTemplateSource: { file: configFile, field: 'tokenizer.chatTemplate' },
    });
  const padId = tok.padTokenId ?? tok.eosTokenId ?? 0;
  const fingerprint = tokenizerFingerprint(tok);
  const data = await prepareDataset(cfg.data, tok, { tokenizerFingerprint: fingerprint, configFile, seed: cfg.seed });
  if (data.stats.badRows.count) report.info(data.stats.badRows.summary());
  const train = data.train as Pair[];
  const held = data.eval as Pair[];
  report.info(
    `policy: ${base.modelType} ${(base.numParameters / 1e6).toFixed(2)}M parameters; data: ${train.length} train / ${held.length} eval pairs; loss ${d.lossType}, beta ${d.beta}`,
  );

  // ---- reference
  const adapterOff = !!cfg.peft && !cfg.referenceModel;
  const reference: DpoResult['reference'] = d.referenceFree
    ? 'none'
    : d.precomputeRefLogProbs
      ? 'precomputed'
      : adapterOff
        ? 'adapter-disabled'
        : 'copy';
  const loadCopy = async (): Promise<PretrainedModel> => {
    const name = cfg.referenceModel ?? cfg.model.pretrained;
    const m = await loadPretrained(name);
    requireCausalLm(m, name, 'the DPO reference', {
      file: configFile,
      field: cfg.referenceModel ? 'referenceModel' : 'model.pretrained',
    });
    return m;
  };
  let copy: PretrainedModel | undefined;
  /** Runs fn on the reference model: the frozen copy, or the policy with its adapter off. */
  const onReference = <T>(fn: (lm: CausalLm) => T): T =>
    adapterOff ? (model as LoraModel).withAdapterDisabled(() => fn(policy)) : fn(copy as unknown as CausalLm);
  let tables: { train: PairLogps; eval: PairLogps } | undefined;
  if (reference === 'precomputed') {
    const source = adapterOff
      ? `adapter-disabled:${cfg.model.pretrained}`
      : (cfg.referenceModel ?? cfg.model.pretrained);
    const r = await cachedReferenceLogps(
      join(runDir, 'reference_logps.safetensors'),
      referenceKey([train, held], average, source),
      async () => {
        report.info(`precomputing reference log-probs of ${train.length + held.length} pairs`);
        if (!adapterOff) copy = await loadCopy();
        const t = onReference((lm) => ({
          train: pairLogps(lm, train, padId, { average, batchSize: cfg.train.batchSize, lossChunkSize }),
          eval: pairLogps(lm, held, padId, { average, batchSize: cfg.train.batchSize, lossChunkSize }),
        }));
        copy?.dispose(); // only the log-probs are kept
        copy = undefined;
        return t;
      },
    );
    if (r.cached) report.info('reference log-probs read from the run folder');
    tables = r;
  } else if (reference === 'copy') copy = await loadCopy();
  report.info(
    `reference: ${{ none: 'none (reference-free)', precomputed: 'precomputed log-probs (run folder)', copy: 'a frozen copy', 'adapter-disabled': 'the policy with its adapter disabled' }[reference]}`,
  );

  /** Reference log-probs of these pairs (rows `idx` of a set) as plain arrays, computed outside the gradient tape. */
  const referenceOf = (set: 'train' | 'eval', idx: ArrayLike<number>, pairs: Pair[]): PairLogps | undefined => {
    if (reference === 'none') return undefined;
    if (tables)
      return {
        chosen: Float32Array.from(idx, (i) => tables![set].chosen[i]),
        rejected: Float32Array.from(idx, (i) => tables![set].rejected[i]),
      };
    return onReference((lm) => pairLogps(lm, pairs, padId, { average, batchSize: pairs.length, lossChunkSize }));
  };

  const opt = makeOptimizer(model.params, cfg.optim, resumeDir);
  const logger = openLogger(runDir, cfg, state?.step, o.collective?.rank);

  /** Loss sum over the batch's pairs and TRL's metrics (as sums over its `count` loss terms). */
  const batchLoss = (pairs: Pair[], ref: PairLogps | undefined, training: boolean, seed: number) => {
    const p = concatenatedForward(policy, pairs, padId, { average, training, seed, lossChunkSize });
    const r = dpoLoss(
      {
        policyChosenLogps: p.chosen,
        policyRejectedLogps: p.rejected,
        referenceChosenLogps: ref && tf.tensor1d(ref.chosen),
        referenceRejectedLogps: ref && tf.tensor1d(ref.rejected),
      },
      d,
    );
    const n = pairs.length;
    const meanLogits = p.meanLogits.dataSync();
    const m = dpoMetrics({
      chosenRewards: r.chosenRewards.dataSync(),
      rejectedRewards: r.rejectedRewards.dataSync(),
      chosenLogps: p.chosen.dataSync(),
      rejectedLogps: p.rejected.dataSync(),
      chosenMeanLogits: meanLogits.subarray(0, n),
      rejectedMeanLogits: meanLogits.subarray(n),
      chosenCounts: p.counts.subarray(0, n),
      rejectedCounts: p.counts.subarray(n),
    });
    const count = r.losses.shape[0];
    return {
      sum: tf.sum(r.losses) as tf.Scalar,
      count,
      tokens: p.tokens,
      metrics: Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v * count])),
    };
  };

  const evaluate = () =>
    heldOutMeans(held, cfg.train, (pairs, k) => {
      const idx = pairs.map((_, i) => k * cfg.train.batchSize + i);
      return batchLoss(pairs, referenceOf('eval', idx, pairs), false, 0);
    });

  // ---- train
  const result = await trainLoop(
    cfg,
    {
      ...{ runDir, logger, state, resumeDir, backendName: backend.name },
      model,
      optimizer: opt,
      numRows: train.length,
      // The loop asks for each micro-batch's closure before it records gradients: the
      // reference log-probs are computed here, outside the tape; the closure runs the policy.
      loss: (idx, seed) => {
        const pairs = Array.from(idx, (i) => train[i]);
        const ref = referenceOf('train', idx, pairs);
        return () => batchLoss(pairs, ref, !d.disableDropout, seed);
      },
      evaluate: held.length ? evaluate : undefined,
      samples: (step) =>
        cfg.sample.prompts.map((prompt, i) => {
          const ids = cfg.tokenizer.chatTemplate
            ? tok.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true, tokenize: true })
            : tok.encode(prompt);
          const [out] = generate(policy, [ids], {
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

  // ---- cleanup (the loop disposed the policy and the optimizer)
  copy?.dispose();
  return {
    runDir,
    step: result.step,
    stopped: result.stopped,
    lastCheckpoint: result.lastCheckpoint,
    eval: result.lastEval,
    reference,
  };
}
