// Causal language modelling (pretraining or continued pretraining), as one readable
// recipe: setup -> train -> save -> cleanup. Everything a resumed run needs is in the
// checkpoint: weights, tokenizer, AdamW moments, step, sampler position, best metric.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, ConfigError, RunLogger, ShapeError, checkpointDirName, configToYaml, deriveSeed, learningRateAt, parseSafetensors, useBackend } from '@anneal/core';
import { ShuffledSampler, readTextFile, tokenizeAndSplit, unigramEntropy, type SamplerState, type TokenBlocks } from '@anneal/data';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, causalLmLossSum, generate } from '@anneal/modeling';
import { loadTokenizerSync, trainByteLevelBpe, type Tokenizer } from '@anneal/tokenizers';
import { accumulatedGradients, guardedUpdate, handleNonFinite } from '../run/step.js';
import { silentReporter, type Reporter } from '../run/reporter.js';
import { flattenHparams, openRunFolder, saveCheckpoint } from '../run/run-folder.js';
import type { ClmConfig } from './config.js';

export interface RunOptions {
  reporter?: Reporter;
  /** Checkpoint or run folder to continue from. */
  resume?: string;
  /** Delete an existing run folder of the same name instead of refusing. */
  overwrite?: boolean;
  /** Polled after every step; true = save a checkpoint and return (Ctrl-C). */
  shouldStop?: () => boolean;
  /** Called after every optimizer step (tests use it to watch memory). */
  onStep?: (step: number, loss: number) => void;
}

export interface RunResult {
  runDir: string;
  /** Last completed step. */
  step: number;
  /** True when shouldStop ended the run early. */
  stopped: boolean;
  lastCheckpoint: string;
  evalLoss: number | undefined;
  unigramEntropy: number;
  backend: string;
}

const BEST_METRIC = 'eval/loss';

// ---------------------------------------------------------------- setup helpers

function buildModel(cfg: ClmConfig, tok: Tokenizer, resumeDir: string | undefined, file: string): Gpt2LMHeadModel {
  const from = resumeDir ?? cfg.model.pretrained;
  let model: Gpt2LMHeadModel;
  if (from) model = Gpt2LMHeadModel.fromPretrained(from);
  else {
    const eos = tok.eosTokenId ?? 0;
    // From scratch: transformers' defaults, sized to the tokenizer and block size, no dropout
    // unless asked for; then whatever model.config sets.
    model = Gpt2LMHeadModel.init(
      {
        ...GPT2_DEFAULTS,
        vocabSize: tok.vocabSize,
        nPositions: cfg.data.blockSize,
        bosTokenId: eos,
        eosTokenId: eos,
        residPdrop: 0,
        embdPdrop: 0,
        attnPdrop: 0,
        ...cfg.model.config,
      },
      cfg.seed,
    );
  }
  const c = model.config;
  if (cfg.data.blockSize > c.nPositions) {
    throw new ShapeError(`data.blockSize ${cfg.data.blockSize} > model nPositions ${c.nPositions}`, {
      file,
      field: 'data.blockSize',
      hint: 'raise model.config.nPositions (from scratch) or lower data.blockSize',
    });
  }
  if (tok.vocabSize > c.vocabSize) {
    throw new ShapeError(`tokenizer has ${tok.vocabSize} tokens but the model's vocabSize is ${c.vocabSize}`, {
      file,
      field: 'model.config.vocabSize',
      hint: 'use the tokenizer the model was trained with, or a larger model.config.vocabSize',
    });
  }
  return model;
}

/** Mean cross-entropy over (up to `maxBatches` batches of) a split, in order. */
function evaluate(model: Gpt2LMHeadModel, blocks: TokenBlocks, batchSize: number, maxBatches: number): number {
  const T = blocks.blockSize;
  const nBatches = Math.ceil(blocks.numBlocks / batchSize);
  const limit = maxBatches > 0 ? Math.min(maxBatches, nBatches) : nBatches;
  let sum = 0;
  let count = 0;
  for (let b = 0; b < limit; b++) {
    const idx = Array.from({ length: Math.min(batchSize, blocks.numBlocks - b * batchSize) }, (_, i) => b * batchSize + i);
    const ids = blocks.batch(idx);
    const batch = tf.tidy(() => causalLmLossSum(model.forward({ inputIds: tf.tensor2d(ids, [idx.length, T], 'int32'), training: false }).logits, ids));
    sum += batch.sum.dataSync()[0];
    count += batch.count;
    batch.sum.dispose();
  }
  return sum / count;
}

// ---------------------------------------------------------------- the recipe

export async function runClm(cfg: ClmConfig, configFile: string, o: RunOptions = {}): Promise<RunResult> {
  const report = o.reporter ?? silentReporter;

  // ---- setup: backend, run folder
  const backend = await useBackend(cfg.backend);
  if (cfg.device !== 'cpu' && backend.name !== 'torch') {
    throw new ConfigError(`device ${cfg.device} needs the torch backend, and the run uses ${backend.name}`, { file: configFile, field: 'device', hint: 'set backend: torch (or auto with the addon built against a CUDA libtorch), or device: cpu' });
  }
  report.info(`backend: ${backend.name}${backend.detail ? ` (${backend.detail})` : ''}`);

  const text = readTextFile(cfg.data.train); // fail on a bad path before touching the run folder
  const { runDir, resumeDir, state } = openRunFolder(cfg.outputDir, cfg.name, configToYaml(cfg), backend, { resume: o.resume, overwrite: o.overwrite, info: (m) => report.info(m) });

  // ---- setup: tokenizer, data, model, optimizer, sampler
  let tok: Tokenizer;
  if (resumeDir) tok = loadTokenizerSync(resumeDir);
  else if (cfg.tokenizer.path) tok = loadTokenizerSync(cfg.tokenizer.path);
  else {
    const t = cfg.tokenizer.train!;
    report.info(`training a byte-level BPE tokenizer (vocab ${t.vocabSize}) on ${cfg.data.train}`);
    // GPT-2's convention: the first special token (<|endoftext|>) is BOS, EOS and UNK.
    const first = t.specialTokens[0];
    tok = await trainByteLevelBpe([text], { ...t, bosToken: first, eosToken: first, unkToken: first });
  }
  const { train, val } = tokenizeAndSplit(text, tok, { blockSize: cfg.data.blockSize, valFraction: cfg.data.valFraction, file: cfg.data.train });
  const entropy = unigramEntropy(train.tokens);
  const model = buildModel(cfg, tok, resumeDir, configFile);
  report.info(
    `model: gpt2, ${(model.numParameters / 1e6).toFixed(2)}M parameters; data: ${train.tokens.length} train / ${val.tokens.length} val tokens ` +
      `(${train.numBlocks} blocks of ${cfg.data.blockSize}); unigram entropy ${entropy.toFixed(3)} nats/token`,
  );

  const opt = new AdamW(model.params, { betas: cfg.optim.betas, eps: cfg.optim.eps, weightDecay: cfg.optim.weightDecay });
  if (resumeDir) {
    const file = join(resumeDir, 'optimizer.safetensors');
    const { tensors, metadata } = parseSafetensors(readFileSync(file), file);
    opt.loadStateDict(tensors, Number(metadata.step), file);
  }
  const sampler = new ShuffledSampler(train.numBlocks, cfg.seed, state?.data as SamplerState | undefined);
  const logger = new RunLogger(runDir, state?.step);
  const schedule = { kind: cfg.schedule.kind, lr: cfg.optim.lr, warmupSteps: cfg.schedule.warmupSteps, totalSteps: cfg.train.maxSteps, minLrRatio: cfg.schedule.minLrRatio };
  if (!state) {
    logger.text('config', '```yaml\n' + configToYaml(cfg) + '```', 0);
    logger.tb.hparams(flattenHparams(cfg), ['train/loss', 'eval/loss', 'eval/perplexity']);
  }

  let best = state?.bestMetric ?? null;
  let lastCheckpoint = resumeDir ?? '';
  let evalLoss: number | undefined;

  const save = (step: number) =>
    saveCheckpoint(
      runDir,
      {
        saveModel: (dir) => model.savePretrained(dir),
        saveTokenizer: (dir) => {
          tok.config.modelMaxLength = model.config.nPositions;
          tok.save(dir);
        },
        optimizer: opt,
        // Dropout masks and sampling draw from seeds derived from (seed, step), so the seed
        // and the step are the whole RNG state.
        state: { step, epoch: sampler.epochProgress, data: { ...sampler.getState() }, rng: { seed: cfg.seed }, bestMetric: best, backend: backend.name },
      },
      cfg.train.saveTotalLimit,
    );

  // ---- train
  const startStep = state?.step ?? 0;
  const { batchSize, gradientAccumulationSteps: accumulation } = cfg.train;
  const T = cfg.data.blockSize;
  report.start(cfg.train.maxSteps, startStep, cfg.train.logEvery);
  let window = { loss: 0, steps: 0, tokens: 0, t0: performance.now() };
  let step = startStep;
  let stopped = false;
  while (step < cfg.train.maxSteps) {
    step += 1;
    const lr = learningRateAt(step - 1, schedule);
    // Micro-batches, their loss sums normalized together over all their tokens.
    const micro = Array.from({ length: accumulation }, (_, k) => {
      const ids = train.batch(sampler.next(batchSize));
      const seed = k === 0 ? deriveSeed(cfg.seed, step) : deriveSeed(cfg.seed, step, k);
      return () => causalLmLossSum(model.forward({ inputIds: tf.tensor2d(ids, [batchSize, T], 'int32'), training: true, dropoutSeed: seed }).logits, ids); // logits [B, T, V]
    });
    const { loss, grads: rawGrads } = accumulatedGradients(model.params, micro);
    const { norm, problem } = guardedUpdate(rawGrads, loss, { clip: cfg.optim.gradClip, apply: (g) => opt.apply(g, lr) });
    handleNonFinite(problem, step, cfg.train.onNonFinite, lastCheckpoint, (m) => report.info(m));
    o.onStep?.(step, loss);

    window.loss += loss;
    window.steps += 1;
    window.tokens += batchSize * T * accumulation;
    const last = step === cfg.train.maxSteps;
    const elapsed = (performance.now() - window.t0) / 1000;
    report.step({ step, maxSteps: cfg.train.maxSteps, loss, lr, tokensPerSecond: window.tokens / elapsed });
    if (step % cfg.train.logEvery === 0 || last) {
      logger.scalars(step, {
        'train/loss': window.loss / window.steps,
        'train/learning_rate': lr,
        'train/grad_norm': norm,
        'train/tokens_per_second': window.tokens / elapsed,
        'train/epoch': sampler.epochProgress,
      });
      window = { loss: 0, steps: 0, tokens: 0, t0: performance.now() };
    }
    if ((step % cfg.train.evalEvery === 0 || last) && val.numBlocks > 0) {
      evalLoss = evaluate(model, val, batchSize, cfg.train.evalBatches);
      logger.scalars(step, { 'eval/loss': evalLoss, 'eval/perplexity': Math.exp(evalLoss) });
      report.info(`step ${step}: eval/loss ${evalLoss.toFixed(4)} (perplexity ${Math.exp(evalLoss).toFixed(2)}; unigram entropy ${entropy.toFixed(3)})`);
      if (!best || evalLoss < best.value) best = { name: BEST_METRIC, value: evalLoss, checkpoint: join(runDir, 'checkpoints', checkpointDirName(step)) };
    }
    if (step % cfg.train.sample.every === 0 || last) {
      const s = cfg.train.sample;
      const lines = s.prompts.map((prompt, i) => {
        // Generation stops at the model's context length; a prompt keeps its last tokens.
        const promptIds = tok.encode(prompt).slice(-(model.config.nPositions - 1));
        const [ids] = generate(model, [promptIds], { maxNewTokens: s.maxNewTokens, doSample: s.temperature > 0, temperature: s.temperature, topK: s.topK, seed: deriveSeed(cfg.seed, step, 1, i) });
        return tok.decode(ids);
      });
      logger.text('samples', lines.map((l) => '> ' + l.replace(/\n/g, '\n> ')).join('\n\n'), step);
      for (const l of lines) report.info(`sample @${step}: ${JSON.stringify(l)}`);
    }
    if (cfg.train.histogramsEvery > 0 && step % cfg.train.histogramsEvery === 0) {
      for (const [name, p] of model.params) logger.tb.histogram(`params/${name}`, p.dataSync(), step);
    }
    const stopNow = o.shouldStop?.() ?? false;
    if (step % cfg.train.saveEvery === 0 || last || stopNow) lastCheckpoint = await save(step);
    if (stopNow) {
      stopped = true;
      report.info(`stopped at step ${step}; checkpoint ${lastCheckpoint}`);
      break;
    }
    // Let signal handlers (Ctrl-C) run between steps.
    await new Promise((r) => setImmediate(r));
  }
  report.stop();

  // ---- cleanup
  logger.tb.hparamsEnd(!stopped);
  logger.tb.flush();
  model.dispose();
  opt.dispose();
  return { runDir, step, stopped, lastCheckpoint, evalLoss, unigramEntropy: entropy, backend: backend.name };
}
