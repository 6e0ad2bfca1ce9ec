// Causal language modelling (pretraining or continued pretraining), as one readable
// recipe: setup -> train (the shared loop) -> cleanup. Everything a resumed run needs is in
// the checkpoint: weights, tokenizer, AdamW moments, step, sampler position, best metric.
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, ShapeError, configToYaml, deriveSeed, useBackend } from '@anneal/core';
import { readTextFile, tokenizeAndSplit, unigramEntropy, type TokenBlocks } from '@anneal/data';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, generate, type CausalLm } from '@anneal/modeling';
import { loadTokenizerSync, trainByteLevelBpe, type Tokenizer } from '@anneal/tokenizers';
import {
  causalLmBatchLoss,
  trainLoop,
  localModelDir,
  baseWeightsFrom,
  withAdapter,
  type RunOptions,
  silentReporter,
  makeOptimizer,
  openLogger,
  openRunFolder,
} from '@anneal/training';
import type { ClmConfig } from './config.js';

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

// ---------------------------------------------------------------- setup helpers

async function buildModel(
  cfg: ClmConfig,
  tok: Tokenizer,
  resumeDir: string | undefined,
  file: string,
): Promise<Gpt2LMHeadModel> {
  const source = baseWeightsFrom(cfg.model.pretrained, resumeDir, cfg.peft, file);
  const from = source && (await localModelDir(source, { field: 'model.pretrained' })); // a Hub repo id through the cache; a run folder its best checkpoint; a folder as is
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
function evaluate(
  model: CausalLm,
  blocks: TokenBlocks,
  batchSize: number,
  maxBatches: number,
  lossChunkSize: number | 'auto',
): number {
  const T = blocks.blockSize;
  const nBatches = Math.ceil(blocks.numBlocks / batchSize);
  const limit = maxBatches > 0 ? Math.min(maxBatches, nBatches) : nBatches;
  let sum = 0;
  let count = 0;
  for (let b = 0; b < limit; b++) {
    const idx = Array.from(
      { length: Math.min(batchSize, blocks.numBlocks - b * batchSize) },
      (_, i) => b * batchSize + i,
    );
    const ids = blocks.batch(idx);
    tf.tidy(() => {
      const batch = causalLmBatchLoss(
        model,
        { inputIds: tf.tensor2d(ids, [idx.length, T], 'int32'), training: false },
        ids,
        { lossChunkSize },
      );
      sum += batch.sum.dataSync()[0];
      count += batch.count;
    });
  }
  return sum / count;
}

// ---------------------------------------------------------------- the recipe

export async function runClm(cfg: ClmConfig, configFile: string, o: RunOptions = {}): Promise<RunResult> {
  const report = o.reporter ?? silentReporter;

  // ---- setup: backend, run folder
  const backend = await useBackend(cfg.backend);
  if (cfg.device !== 'cpu' && backend.name !== 'torch') {
    throw new ConfigError(`device ${cfg.device} needs the torch backend, and the run uses ${backend.name}`, {
      file: configFile,
      field: 'device',
      hint: 'set backend: torch (or auto with the addon built against a CUDA libtorch), or device: cpu',
    });
  }
  report.info(`backend: ${backend.name}${backend.detail ? ` (${backend.detail})` : ''}`);

  const text = readTextFile(cfg.data.train); // fail on a bad path before touching the run folder
  const { runDir, resumeDir, state } = openRunFolder(cfg.outputDir, cfg.name, configToYaml(cfg), backend, {
    resume: o.resume,
    seed: cfg.seed,
    overwrite: o.overwrite,
    rank: o.collective?.rank,
    info: (m) => report.info(m),
  });

  // ---- setup: tokenizer, data, model, optimizer, sampler
  let tok: Tokenizer;
  if (resumeDir) tok = loadTokenizerSync(resumeDir);
  else if (cfg.tokenizer.path) tok = loadTokenizerSync(await localModelDir(cfg.tokenizer.path));
  else {
    const t = cfg.tokenizer.train!;
    report.info(`training a byte-level BPE tokenizer (vocab ${t.vocabSize}) on ${cfg.data.train}`);
    // GPT-2's convention: the first special token (<|endoftext|>) is BOS, EOS and UNK.
    const first = t.specialTokens[0];
    tok = await trainByteLevelBpe([text], { ...t, bosToken: first, eosToken: first, unkToken: first });
  }
  const { train, val } = tokenizeAndSplit(text, tok, {
    blockSize: cfg.data.blockSize,
    valFraction: cfg.data.valFraction,
    file: cfg.data.train,
  });
  const entropy = unigramEntropy(train.tokens);
  const model = await buildModel(cfg, tok, resumeDir, configFile);
  const net = withAdapter(model, cfg, { resumeDir, file: configFile, info: (m) => report.info(m) }); // the model, or LoRA around it
  report.info(
    `model: gpt2, ${(model.numParameters / 1e6).toFixed(2)}M parameters; data: ${train.tokens.length} train / ${val.tokens.length} val tokens ` +
      `(${train.numBlocks} blocks of ${cfg.data.blockSize}); unigram entropy ${entropy.toFixed(3)} nats/token`,
  );

  const opt = makeOptimizer(net.params, cfg.optim, resumeDir);
  const logger = openLogger(runDir, cfg, state?.step, o.collective?.rank);
  const T = cfg.data.blockSize;
  const s = cfg.train.sample;

  // ---- train
  const result = await trainLoop(
    cfg,
    {
      ...{ runDir, logger, state, resumeDir, backendName: backend.name },
      model: net,
      optimizer: opt,
      numRows: train.numBlocks,
      loss: (rows, seed) => {
        const ids = train.batch(rows);
        return () =>
          causalLmBatchLoss(
            net,
            { inputIds: tf.tensor2d(ids, [rows.length, T], 'int32'), training: true, dropoutSeed: seed },
            ids,
            {
              lossChunkSize: cfg.train.lossChunkSize,
            },
          );
      },
      evaluate:
        val.numBlocks > 0
          ? () => {
              const loss = evaluate(net, val, cfg.train.batchSize, cfg.train.evalBatches, cfg.train.lossChunkSize);
              return { 'eval/loss': loss, 'eval/perplexity': Math.exp(loss) };
            }
          : undefined,
      sampleEvery: s.every,
      samples: (step) =>
        s.prompts.map((prompt, i) => {
          // Generation stops at the model's context length; a prompt keeps its last tokens.
          const promptIds = tok.encode(prompt).slice(-(model.config.nPositions - 1));
          const [ids] = generate(net, [promptIds], {
            maxNewTokens: s.maxNewTokens,
            doSample: s.temperature > 0,
            temperature: s.temperature,
            topK: s.topK,
            seed: deriveSeed(cfg.seed, step, 1, i),
          });
          // A model may have more embeddings than the tokenizer has tokens (padded vocabularies);
          // ids past the tokenizer's are left out of the text, as Hugging Face tokenizers do.
          return tok.decode(ids.filter((id) => id < tok.vocabSize));
        }),
      saveTokenizer: (dir) => {
        tok.config.modelMaxLength = model.config.nPositions;
        tok.save(dir);
      },
    },
    o,
  );

  // ---- cleanup (the loop disposed the model and the optimizer)
  const { step, stopped, lastCheckpoint } = result;
  const evalLoss = result.lastEval?.['eval/loss'];
  return { runDir, step, stopped, lastCheckpoint, evalLoss, unigramEntropy: entropy, backend: backend.name };
}
