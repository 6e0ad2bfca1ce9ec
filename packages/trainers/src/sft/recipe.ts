// Supervised fine-tuning (instruction and chat tuning), as one readable recipe:
// setup -> train -> save -> cleanup. A pretrained causal LM learns the completions of
// prompt-completion data or the assistant turns of conversations (rendered by the chat
// template), with EOS at the end of each so the model learns to stop. Metrics carry TRL's
// names: loss, mean_token_accuracy, num_tokens, entropy.
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, configToYaml, deriveSeed, useBackend } from '@anneal/core';
import {
  collateCausal,
  packBestFit,
  packedRow,
  prepareDataset,
  type Tokenized,
  type TokenizedSequence,
} from '@anneal/data';
import { generate, initFromHfConfig, type CausalLm, type PretrainedModel } from '@anneal/modeling';
import { loadTokenizerSync, tokenizerFingerprint, type Tokenizer } from '@anneal/tokenizers';
import {
  type RunOptions,
  makeOptimizer,
  openLogger,
  openRunFolder,
  trainLoop,
  localModelDir,
  silentReporter,
  causalLmBatchLoss,
  baseWeightsFrom,
  loadBase,
  withAdapter,
  requireCausalLm,
  requireFits,
  requireTokenizerFits,
} from '@anneal/training';
import type { SftConfig } from './config.js';

export interface SftResult {
  runDir: string;
  step: number;
  stopped: boolean;
  lastCheckpoint: string;
  evalLoss: number | undefined;
}

/** A training row: tokens, loss mask, and for packed rows positions and document ids. */
interface Row {
  inputIds: Int32Array;
  lossMask: Uint8Array;
  positionIds?: Int32Array;
  documentIds?: Int32Array;
}

/** Forward arguments and labels (-100 where no loss) of a batch of rows. */
function batchOf(rows: Row[], padId: number) {
  const b = collateCausal(rows, { padId });
  const [B, T] = [b.batchSize, b.length];
  const packed = rows[0].positionIds !== undefined;
  const args = {
    inputIds: tf.tensor2d(b.inputIds, [B, T], 'int32'),
    ...(packed
      ? {
          positionIds: tf.tensor2d(Int32Array.from(rows.flatMap((r) => Array.from(r.positionIds!))), [B, T], 'int32'),
          documentIds: tf.tensor2d(Int32Array.from(rows.flatMap((r) => Array.from(r.documentIds!))), [B, T], 'int32'),
        }
      : { attentionMask: tf.tensor2d(b.attentionMask, [B, T], 'int32') }),
  };
  return { args, labels: b.labels, B, T };
}

export async function runSft(cfg: SftConfig, configFile: string, o: RunOptions = {}): Promise<SftResult> {
  const report = o.reporter ?? silentReporter;

  // ---- setup: backend, run folder, model, tokenizer, data
  const backend = await useBackend(cfg.backend);
  const { runDir, resumeDir, state } = openRunFolder(cfg.outputDir, cfg.name, configToYaml(cfg), backend, {
    resume: o.resume,
    seed: cfg.seed,
    overwrite: o.overwrite,
    rank: o.collective?.rank,
    info: (m) => report.info(m),
  });
  const { pretrained, init } = cfg.model;
  if (init && !cfg.tokenizer.path)
    throw new ConfigError('a model made from model.init needs a tokenizer', {
      file: configFile,
      field: 'tokenizer.path',
      hint: 'set tokenizer.path to a tokenizer folder (its vocabulary sizes the model)',
    });
  if (init && (cfg.peft || cfg.quantization))
    throw new ConfigError('LoRA and quantization adapt a pretrained model, and model.init makes a random one', {
      file: configFile,
      field: cfg.peft ? 'peft' : 'quantization',
      hint: 'train a model from model.init in full (remove the block), or start from model.pretrained',
    });
  const tok: Tokenizer = loadTokenizerSync(resumeDir ?? cfg.tokenizer.path ?? (await localModelDir(pretrained!)));
  const base: PretrainedModel =
    init && !resumeDir
      ? initFromHfConfig({ vocab_size: tok.vocabSize, ...init }, cfg.seed, configFile)
      : await loadBase(baseWeightsFrom(pretrained ?? resumeDir!, resumeDir, cfg.peft, configFile), cfg.quantization, {
          info: (m) => report.info(m),
        });
  const modelName = pretrained ?? `model.init (${String(init!.model_type)})`;
  requireCausalLm(base, modelName, 'SFT', { file: configFile, field: pretrained ? 'model.pretrained' : 'model.init' });
  requireFits(cfg.data.maxLength, base, configFile);
  const model = withAdapter(base, cfg, { resumeDir, file: configFile, info: (m) => report.info(m) });
  const lm = model as unknown as CausalLm;
  requireTokenizerFits(tok, base, { file: configFile, field: 'tokenizer.path' });
  if (cfg.tokenizer.chatTemplate)
    Object.assign(tok.config, {
      chatTemplate: cfg.tokenizer.chatTemplate,
      chatTemplateSource: { file: configFile, field: 'tokenizer.chatTemplate' },
    });
  if (tok.eosTokenId === undefined)
    throw new ConfigError('the tokenizer has no EOS token, so the model cannot learn to stop', {
      file: configFile,
      field: 'tokenizer',
      hint: 'set eos_token in tokenizer_config.json',
    });
  const padId = tok.padTokenId ?? tok.eosTokenId;
  const fingerprint = tokenizerFingerprint(tok);
  const data = await prepareDataset(cfg.data, tok, { tokenizerFingerprint: fingerprint, configFile, seed: cfg.seed });
  if (data.stats.badRows.count) report.info(data.stats.badRows.summary());
  const seqs = (set: Tokenized[]) =>
    set.filter((t): t is { kind: 'sequence' } & TokenizedSequence => t.kind === 'sequence');
  let rows: Row[] = seqs(data.train);
  if (cfg.packing === 'bfd') {
    const p = packBestFit(seqs(data.train), cfg.data.maxLength, padId);
    rows = Array.from({ length: p.rows }, (_, r) => packedRow(p, r));
    report.info(
      `packed ${data.train.length} examples into ${p.rows} rows of ${cfg.data.maxLength} (${(100 * p.efficiency).toFixed(1)}% full)`,
    );
  }
  const evalRows: Row[] = seqs(data.eval);
  report.info(
    `model: ${base.modelType} ${(base.numParameters / 1e6).toFixed(2)}M parameters; data: ${data.train.length} train / ${data.eval.length} eval examples, ${data.stats.tokens} tokens`,
  );

  const opt = makeOptimizer(model.params, cfg.optim, resumeDir);
  const logger = openLogger(runDir, cfg, state?.step, o.collective?.rank);

  /**
   * Loss sum and token count of a batch of rows (labels shifted inside causalLmBatchLoss),
   * with TRL's train-time mean_token_accuracy and entropy as sums over the same tokens.
   */
  const lossSum = (batch: Row[], training: boolean, seed: number) => () => {
    const { args, labels } = batchOf(batch, padId);
    const { sum, count, tally } = causalLmBatchLoss(lm, { ...args, training, dropoutSeed: seed }, labels, {
      lossChunkSize: cfg.train.lossChunkSize,
      metrics: true,
    });
    return { sum, count, metrics: { mean_token_accuracy: tally!.correct, entropy: tally!.entropy } };
  };

  /** Loss, token accuracy and entropy over the eval split (or its first evalBatches batches). */
  const evaluate = () => {
    let [sum, count, correct, ent] = [0, 0, 0, 0];
    const nBatches = Math.ceil(evalRows.length / cfg.train.batchSize);
    const limit = cfg.train.evalBatches > 0 ? Math.min(cfg.train.evalBatches, nBatches) : nBatches;
    for (let k = 0; k < limit; k++) {
      const batch = evalRows.slice(k * cfg.train.batchSize, (k + 1) * cfg.train.batchSize);
      tf.tidy(() => {
        const { args, labels } = batchOf(batch, padId);
        const l = causalLmBatchLoss(lm, { ...args, training: false }, labels, {
          lossChunkSize: cfg.train.lossChunkSize,
          metrics: true,
        });
        sum += l.sum.dataSync()[0];
        count += l.count;
        correct += l.tally!.correct;
        ent += l.tally!.entropy;
      });
    }
    return {
      loss: sum / Math.max(1, count),
      accuracy: correct / Math.max(1, count),
      entropy: ent / Math.max(1, count),
    };
  };

  // ---- train
  const result = await trainLoop(
    cfg,
    {
      ...{ runDir, logger, state, resumeDir, backendName: backend.name },
      model,
      optimizer: opt,
      numRows: rows.length,
      loss: (idx, seed) =>
        lossSum(
          Array.from(idx, (i) => rows[i]),
          true,
          seed,
        ),
      evaluate: evalRows.length
        ? () => {
            const e = evaluate();
            return { 'eval/loss': e.loss, 'eval/mean_token_accuracy': e.accuracy, 'eval/entropy': e.entropy };
          }
        : undefined,
      samples: (step) =>
        cfg.sample.prompts.map((p, i) => {
          const ids =
            cfg.data.format === 'conversational'
              ? tok.applyChatTemplate([{ role: 'user', content: p }], { addGenerationPrompt: true, tokenize: true })
              : tok.encode(p);
          const [out] = generate(lm, [ids], {
            maxNewTokens: cfg.sample.maxNewTokens,
            eosTokenId: tok.eosTokenId,
            seed: deriveSeed(cfg.seed, step, 1, i),
          });
          return `${p} -> ${tok.decode(out.slice(ids.length))}`;
        }),
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
    evalLoss: result.lastEval?.['eval/loss'],
  };
}
