// RLHF with PPO, as one readable recipe: setup (policy, reference, value model, reward,
// prompts) -> updates -> cleanup. Each update samples responses for a batch of prompts and
// improves the policy on them (trainer.ts). Checkpoints hold the policy (a full HF model
// folder, or its LoRA adapter), the value model, the optimizer, the prompt sampler, the
// episode count and the KL coefficient: a resumed run continues exactly.
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, configToYaml, deriveSeed, requireStateField, stateFileOf, useBackend } from '@anneal/core';
import { ShuffledSampler, type SamplerState } from '@anneal/data';
import { DecoderForSequenceClassification, classifierFrom, loadPretrained } from '@anneal/modeling';
import {
  loadPolicy,
  makeOptimizer,
  openLogger,
  openRunFolder,
  readPrompts,
  rewardModelFunction,
  runLoop,
  sampleResponses,
  silentReporter,
  type RunOptions,
} from '@anneal/training';
import type { PpoConfig } from './config.js';
import { AdaptiveKlController, FixedKlController, type KlController } from './kl.js';
import { ppoUpdate, type PpoModels, type RewardFn } from './trainer.js';

export interface PpoRunOptions extends RunOptions {
  /** A TypeScript reward instead of the config's reward model. */
  rewardFn?: RewardFn;
  /** Called after every update with its metrics (tests watch them). */
  onUpdate?: (update: number, metrics: Record<string, number>) => void;
}

export interface PpoResult {
  runDir: string;
  step: number;
  stopped: boolean;
  lastCheckpoint: string;
  metrics?: Record<string, number>;
}

export async function runPpo(cfg: PpoConfig, configFile: string, o: PpoRunOptions = {}): Promise<PpoResult> {
  const report = o.reporter ?? silentReporter;
  const p = cfg.ppo;

  // ---- setup: backend, run folder, tokenizer, policy, reference, value model, reward, prompts
  const backend = await useBackend(cfg.backend);
  const { runDir, resumeDir, state } = openRunFolder(cfg.outputDir, cfg.name, configToYaml(cfg), backend, {
    resume: o.resume,
    seed: cfg.seed,
    overwrite: o.overwrite,
    rank: o.collective?.rank,
    info: (m) => report.info(m),
    models: ['policy', 'value'],
  });
  const pol = await loadPolicy(cfg, configFile, {
    method: 'PPO',
    reference: true,
    resumeDir,
    info: (m) => report.info(m),
  });
  const { tok, model, base, padTokenId: padId } = pol;
  const policy = pol.lm;
  const withReference = pol.withReference!;
  const valueFrom = async (dir: string) =>
    loadPretrained(dir).catch((e: unknown) => {
      // the value model trains in full: a checkpoint saved quantized cannot start it
      if (e instanceof ConfigError && e.field === 'quantization_config')
        throw new ConfigError(`the value model trains in full, and ${dir} is saved quantized`, {
          file: configFile,
          field: 'valueModel',
          hint: 'set valueModel to a float32 checkpoint (e.g. the one the quantized policy was made from)',
        });
      throw e;
    });
  const valueBase = resumeDir
    ? await loadPretrained(join(resumeDir, 'value'))
    : classifierFrom(
        await valueFrom(cfg.valueModel ?? cfg.model.pretrained),
        ['LABEL_0'],
        padId,
        deriveSeed(cfg.seed, 2),
      );
  if (!(valueBase instanceof DecoderForSequenceClassification))
    throw new ConfigError(
      `the value model must be a decoder (its value at a token may only see the tokens before it), and ${cfg.valueModel ?? cfg.model.pretrained} is ${String((valueBase.hfConfig().architectures as string[])[0])}`,
      {
        file: configFile,
        field: 'valueModel',
        hint: 'leave valueModel unset (the policy checkpoint with a fresh head), or give a GPT-2/Llama reward model',
      },
    );
  const value = valueBase;
  value.gradientCheckpointing = cfg.train.gradientCheckpointing;
  if (!o.rewardFn && !cfg.reward)
    throw new ConfigError('PPO needs a reward', {
      file: configFile,
      field: 'reward.model',
      hint: 'set reward.model to a reward-model checkpoint (recipe: reward), or pass a reward function in code',
    });
  const reward = o.rewardFn ?? (await rewardModelFunction(cfg.reward!.model));
  const split = await readPrompts(cfg.prompts, tok, { seed: cfg.seed });
  const trainPrompts = split.train.map((p) => p.ids);
  const evalPrompts = split.eval.map((p) => p.ids);
  const numUpdates = cfg.train.maxSteps ?? Math.ceil(p.totalEpisodes! / p.batchSize);
  report.info(
    `policy: ${base.modelType} ${(base.numParameters / 1e6).toFixed(2)}M parameters; reference: ${pol.reference}; value model ${(value.numParameters / 1e6).toFixed(2)}M; ${trainPrompts.length} train / ${evalPrompts.length} eval prompts; ${numUpdates} updates of ${p.batchSize} episodes`,
  );

  const params = new Map<string, tf.Variable>([
    ...[...model.params].map(([k, v]) => [`policy.${k}`, v] as const),
    ...[...value.params].map(([k, v]) => [`value.${k}`, v] as const),
  ]);
  const optimizer = makeOptimizer(params, cfg.optim, resumeDir);
  const logger = openLogger(runDir, cfg, state?.step, o.collective?.rank);
  if (state && resumeDir) {
    const at = { file: stateFileOf(resumeDir) ?? resumeDir };
    requireStateField(state, 'data.sampler.epoch', 'integer', { ...at, why: "the prompt sampler's epoch" });
    requireStateField(state, 'data.sampler.position', 'integer', {
      ...at,
      why: "the prompt sampler's position in the epoch",
    });
    requireStateField(state, 'data.episode', 'integer', { ...at, why: 'the number of episodes done' });
    requireStateField(state, 'data.klCoef', 'number', {
      ...at,
      why: 'the KL coefficient the adaptive controller reached',
    });
  }
  const data = state?.data as { sampler: SamplerState; episode: number; klCoef: number } | undefined;
  const kl: KlController = p.adaptiveKl
    ? new AdaptiveKlController(data?.klCoef ?? p.klCoef, p.adaptiveKl.target, p.adaptiveKl.horizon)
    : new FixedKlController(p.klCoef);
  const sampler = new ShuffledSampler(trainPrompts.length, cfg.seed, data?.sampler);
  let episode = data?.episode ?? 0;
  const models: PpoModels = {
    policy,
    withReference,
    value,
    params,
    reward,
    decode: (ids) => tok.decode(ids),
    eosTokenId: pol.eosTokenId,
    padTokenId: padId,
  };

  /** Mean reward of sampled completions for the held-out prompts, and a few of them (the samples). */
  let evalLines: string[] = [];
  const evaluate = async () => {
    const prompts = evalPrompts.slice(0, Math.max(p.batchSize, 16));
    const responses = sampleResponses(policy, prompts, {
      responseLength: p.responseLength,
      temperature: p.temperature,
      eosTokenId: p.stopToken === 'eos' ? tok.eosTokenId! : -1,
      padTokenId: padId,
      seed: deriveSeed(cfg.seed, update, 99),
    });
    const texts = prompts.map((q) => tok.decode(q));
    const completions = responses.map((r) => tok.decode(r.filter((t) => t !== tok.eosTokenId)));
    const scores = await reward(texts, completions);
    evalLines = texts.slice(0, 4).map((t, i) => `${t} -> ${completions[i]} (score ${scores[i].toFixed(3)})`);
    return { 'eval/objective/scores': scores.reduce((sum, x) => sum + x, 0) / scores.length };
  };

  // ---- updates, on the shared loop: each one a rollout, then PPO's epochs of minibatch steps
  let update = state?.step ?? 0;
  let memoryReported = false;
  let metrics: Record<string, number> | undefined;
  const result = await runLoop(
    cfg,
    {
      runDir,
      logger,
      state,
      resumeDir,
      backendName: backend.name,
      maxSteps: numUpdates,
      optimizer,
      params,
      singleProcess: 'ppo',
      saveModel: async (d) => {
        for (const sub of ['policy', 'value']) mkdirSync(join(d, sub));
        await model.savePretrained(join(d, 'policy'));
        await value.savePretrained(join(d, 'value'));
      },
      saveTokenizer: (d) => {
        tok.save(d);
        tok.save(join(d, 'policy'));
      },
      progress: () => ({
        epoch: sampler.epochProgress,
        data: { sampler: sampler.getState(), episode, klCoef: kl.value },
      }),
      update: async (step, lr) => {
        update = step;
        const prompts = Array.from(sampler.next(p.batchSize), (i) => trainPrompts[i]);
        const klCoef = kl.value;
        const t0 = performance.now();
        const r = await ppoUpdate(
          models,
          optimizer,
          prompts,
          { ...p, gradClip: cfg.optim.gradClip, lossChunkSize: cfg.train.lossChunkSize },
          { seed: cfg.seed, update: step, lr, klCoef },
          // this process's first update says what memory goes where, as the supervised loop does
          memoryReported
            ? undefined
            : { report: (line) => report.info(line), gradientCheckpointing: cfg.train.gradientCheckpointing },
        );
        memoryReported = true;
        const seconds = (performance.now() - t0) / 1000;
        kl.update(r.metrics['objective/kl'], p.batchSize);
        episode += p.batchSize;
        metrics = { ...r.metrics, 'objective/kl_coef': klCoef, lr, episode };
        o.onUpdate?.(step, metrics);
        o.onStep?.(step, r.metrics['loss/policy_avg']);
        // Each update's metrics are shown and logged as they are (TRL's), not averaged.
        return {
          shown: { name: 'objective/scores', value: r.metrics['objective/scores'], meanOf: 1 },
          tokensPerSecond: r.tokens / seconds,
          problem: r.problem,
        };
      },
      scalars: () => metrics!,
      // the mean eval score is reported, not used to pick checkpoints (higher is better, and TRL keeps the last)
      ...(evalPrompts.length && { evaluate, samples: () => evalLines }),
      bestByEval: false,
      evalAtStart: false,
      dispose: () => {
        pol.dispose();
        value.dispose();
      },
    },
    o,
  );
  return { runDir, step: result.step, stopped: result.stopped, lastCheckpoint: result.lastCheckpoint, metrics };
}
