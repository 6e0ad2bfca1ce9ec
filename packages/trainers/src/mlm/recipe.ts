// Masked language modelling (BERT pretraining, from scratch or continued), as one
// readable recipe: setup -> train -> save -> cleanup. Each batch masks a fresh 15% of its
// tokens (seeded by the step and each row's index, so a resumed run masks the same ones, and
// data-parallel ranks mask what one process with their whole batch would); metrics: loss and
// mlm_accuracy (argmax = original token at masked positions).
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, configToYaml, deriveSeed, useBackend } from '@anneal/core';
import { collateMlm, prepareDataset, type MlmOptions, type Tokenized } from '@anneal/data';
import { BERT_DEFAULTS, BertModelWithHead, crossEntropySum, loadPretrained } from '@anneal/modeling';
import { loadTokenizerSync, tokenizerFingerprint, trainWordPiece, type Tokenizer } from '@anneal/tokenizers';
import {
  type RunOptions,
  trainLoop,
  localModelDir,
  baseWeightsFrom,
  withAdapter,
  silentReporter,
  makeOptimizer,
  openLogger,
  openRunFolder,
  requireTokenizerFits,
} from '@anneal/training';
import type { MlmConfig } from './config.js';
import { trainingTexts } from '../texts.js';

export interface MlmResult {
  runDir: string;
  step: number;
  stopped: boolean;
  lastCheckpoint: string;
  eval?: Record<string, number>;
}

/** The texts of the training source, for training a tokenizer on them. */
export async function runMlm(cfg: MlmConfig, configFile: string, o: RunOptions = {}): Promise<MlmResult> {
  const report = o.reporter ?? silentReporter;

  // ---- setup
  const backend = await useBackend(cfg.backend);
  const { runDir, resumeDir, state } = openRunFolder(cfg.outputDir, cfg.name, configToYaml(cfg), backend, {
    resume: o.resume,
    seed: cfg.seed,
    overwrite: o.overwrite,
    rank: o.collective?.rank,
    info: (m) => report.info(m),
  });
  let tok: Tokenizer;
  if (resumeDir ?? cfg.tokenizer.path ?? (cfg.tokenizer.train ? undefined : cfg.model.pretrained))
    tok = loadTokenizerSync(resumeDir ?? cfg.tokenizer.path ?? (await localModelDir(cfg.model.pretrained!)));
  else {
    report.info(`training a WordPiece tokenizer (vocab ${cfg.tokenizer.train!.vocabSize}) on the training texts`);
    tok = await trainWordPiece(trainingTexts(cfg.data), {
      ...cfg.tokenizer.train!,
      modelMaxLength: cfg.data.maxLength,
    });
  }
  const [maskId, padId] = [tok.maskTokenId, tok.padTokenId ?? 0];
  if (maskId === undefined)
    throw new ConfigError('the tokenizer has no mask token', {
      file: configFile,
      field: 'tokenizer',
      hint: 'use a BERT-style tokenizer ([MASK]) or tokenizer.train',
    });
  const from = baseWeightsFrom(cfg.model.pretrained, resumeDir, cfg.peft, configFile);
  const model = from
    ? ((await loadPretrained(from)) as BertModelWithHead)
    : BertModelWithHead.init(
        {
          ...BERT_DEFAULTS,
          vocabSize: tok.vocabSize,
          maxPositionEmbeddings: Math.max(cfg.data.maxLength, 64),
          ...cfg.model.config,
        },
        'mlm',
        cfg.seed,
      );
  if (!(model instanceof BertModelWithHead) || model.head !== 'mlm')
    throw new ConfigError(`MLM needs a BertForMaskedLM checkpoint, and ${from} is not one`, {
      file: configFile,
      field: 'model.pretrained',
    });
  if (model.config.maxPositionEmbeddings < cfg.data.maxLength)
    throw new ConfigError(
      `data.maxLength ${cfg.data.maxLength} > the model's max_position_embeddings ${model.config.maxPositionEmbeddings}`,
      { file: configFile, field: 'data.maxLength', hint: 'lower data.maxLength' },
    );
  requireTokenizerFits(tok, model, { file: configFile, field: 'tokenizer.path' });
  const fingerprint = tokenizerFingerprint(tok);
  const data = await prepareDataset({ ...cfg.data, addEos: false }, tok, {
    tokenizerFingerprint: fingerprint,
    configFile,
    seed: cfg.seed,
  });
  if (data.stats.badRows.count) report.info(data.stats.badRows.summary());
  const seqs = (set: Tokenized[]) =>
    set.filter((t): t is Extract<Tokenized, { kind: 'sequence' }> => t.kind === 'sequence').map((t) => t.inputIds);
  const [train, held] = [seqs(data.train), seqs(data.eval)];
  report.info(
    `model: bert ${(model.numParameters / 1e6).toFixed(2)}M parameters; data: ${train.length} train / ${held.length} eval texts, ${data.stats.tokens} tokens`,
  );

  const net = withAdapter(model, cfg, { resumeDir, file: configFile, info: (m) => report.info(m) }); // the model, or LoRA around it
  const opt = makeOptimizer(net.params, cfg.optim, resumeDir);
  const logger = openLogger(runDir, cfg, state?.step, o.collective?.rank);
  const specialIds = new Set(tok.addedTokens.filter((t) => t.special).map((t) => t.id));
  const continues = (id: number) => tok.idToToken(id)?.startsWith('##') ?? false;

  /** Masked batch -> logits [n, V] at its n masked positions, and their labels (the head runs on those rows only). */
  const masked = (rows: Int32Array[], seed: number, training: boolean, rng: MlmOptions['rng'] = new Rng(seed)) => {
    const b = collateMlm(rows, {
      padId,
      maskTokenId: maskId,
      vocabSize: tok.vocabSize,
      specialIds,
      continuesWord: cfg.wholeWordMask ? continues : undefined,
      probability: cfg.mlmProbability,
      rng,
    });
    // only masked positions carry a label (-100 elsewhere): the cross-entropy of all rows equals
    // that of these rows, so the [B·T, V] logits are never made (at least one row: a batch
    // with nothing masked gives a zero count)
    let at = Array.from(b.labels.keys()).filter((i) => b.labels[i] !== -100);
    if (!at.length) at = [0];
    const { logits } = net.forward({
      inputIds: tf.tensor2d(b.inputIds, [b.batchSize, b.length], 'int32'),
      attentionMask: tf.tensor2d(b.attentionMask, [b.batchSize, b.length], 'int32'),
      training,
      dropoutSeed: seed,
      logitsAt: tf.tensor1d(at, 'int32'),
    });
    return { logits: logits as tf.Tensor2D, labels: Int32Array.from(at, (i) => b.labels[i]) };
  };

  const evaluate = () => {
    let [sum, count, correct] = [0, 0, 0];
    const nBatches = Math.ceil(held.length / cfg.train.batchSize);
    const limit = cfg.train.evalBatches > 0 ? Math.min(cfg.train.evalBatches, nBatches) : nBatches;
    for (let k = 0; k < limit; k++) {
      // the same masks at every evaluation: seeded by the batch, not the step
      const { logits, labels } = masked(
        held.slice(k * cfg.train.batchSize, (k + 1) * cfg.train.batchSize),
        deriveSeed(cfg.seed, 0x4d4c4d, k),
        false,
      );
      const r = crossEntropySum(logits, labels);
      sum += r.sum.dataSync()[0];
      count += r.count;
      const pred = tf.argMax(logits, 1).dataSync();
      labels.forEach((l, i) => {
        if (l !== -100 && pred[i] === l) correct++;
      });
    }
    return { 'eval/loss': sum / Math.max(1, count), 'eval/mlm_accuracy': correct / Math.max(1, count) };
  };

  // ---- train
  const result = await trainLoop(
    cfg,
    {
      ...{ runDir, logger, state, resumeDir, backendName: backend.name },
      model: net,
      optimizer: opt,
      numRows: train.length,
      loss: (idx, seed, dataSeed) => () => {
        // dropout from the rank's seed; each row's masks from the step's shared seed and the row's
        // index, so 2 processes mask what 1 process with the doubled batch masks
        const { logits, labels } = masked(
          Array.from(idx, (i) => train[i]),
          seed,
          true,
          (b) => new Rng(deriveSeed(dataSeed, idx[b])),
        );
        return crossEntropySum(logits, labels);
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
