// T5's span-corruption pretraining (Raffel et al. 2020), as one readable recipe: setup ->
// train -> cleanup. Each text is cut to the raw length whose corrupted input is data.maxLength
// tokens; every batch draws fresh noise spans (seeded by the step and the row, so a resumed
// run corrupts the same ones): the encoder reads the text with each span replaced by a
// sentinel, the decoder writes the spans after their sentinels. Metrics: loss, accuracy of
// the target tokens.
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, configToYaml, deriveSeed, useBackend } from '@anneal/core';
import { prepareDataset, randomSpansNoiseMask, spanCorrupt, spanCorruptionLengths, type Tokenized } from '@anneal/data';
import { T5ForConditionalGeneration, T5_DEFAULTS, crossEntropySum, loadPretrained } from '@anneal/modeling';
import { loadTokenizerSync, tokenizerFingerprint, trainByteLevelBpe, type Tokenizer } from '@anneal/tokenizers';
import {
  baseWeightsFrom,
  heldOutMeans,
  localModelDir,
  makeOptimizer,
  openLogger,
  openRunFolder,
  requireTokenizerFits,
  silentReporter,
  trainLoop,
  withAdapter,
  type RecipeResult,
  type RunOptions,
} from '@anneal/training';
import { seq2seqBatch } from '../seq2seq/batch.js';
import type { T5SpanConfig } from './config.js';
import { trainingTexts } from '../texts.js';

const SENTINELS = 100; // <extra_id_0> .. <extra_id_99>, as T5's vocabulary

/**
 * A batch of rows, corrupted: encoder inputs (EOS appended, right-padded), labels (−100 padded),
 * decoder inputs. Row i's spans are drawn from seed and rowKeys[i] (its index in the dataset, so
 * that a data-parallel rank draws what one process would; default: i).
 */
export function spanBatch(
  rows: Int32Array[],
  o: {
    seed: number;
    noiseDensity: number;
    meanNoiseSpanLength: number;
    sentinel: (i: number) => number;
    rowKeys?: ArrayLike<number>;
  },
  ids: { eos: number; pad: number; decoderStart: number },
) {
  const pairs = rows.map((r, i) => {
    const rng = new Rng(deriveSeed(o.seed, o.rowKeys ? o.rowKeys[i] : i));
    const mask = randomSpansNoiseMask(r.length, o.noiseDensity, o.meanNoiseSpanLength, rng);
    const { input, target } = spanCorrupt(r, mask, o.sentinel, ids.eos);
    return { input: [...input, ids.eos], target };
  });
  const b = seq2seqBatch(pairs, ids);
  return { ...b, tokens: (b.Te + b.Tt) * b.B };
}

export async function runT5Span(cfg: T5SpanConfig, configFile: string, o: RunOptions = {}): Promise<RecipeResult> {
  const report = o.reporter ?? silentReporter;

  // ---- setup: backend, run folder, tokenizer (with sentinels), model, data
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
    report.info(
      `training a byte-level BPE tokenizer (vocab ${cfg.tokenizer.train!.vocabSize}) with T5's special tokens`,
    );
    tok = await trainByteLevelBpe(trainingTexts(cfg.data), {
      ...cfg.tokenizer.train!,
      specialTokens: ['<pad>', '</s>', '<unk>', ...Array.from({ length: SENTINELS }, (_, i) => `<extra_id_${i}>`)],
      padToken: '<pad>',
      eosToken: '</s>',
      unkToken: '<unk>',
    });
  }
  const sentinelIds = Array.from({ length: SENTINELS }, (_, i) => tok.tokenToId(`<extra_id_${i}>`));
  const where = { file: configFile, field: 'tokenizer' };
  if (sentinelIds.some((id) => id === undefined))
    throw new ConfigError(`the tokenizer has no <extra_id_${sentinelIds.indexOf(undefined)}> sentinel`, {
      ...where,
      hint: `span corruption needs <extra_id_0> .. <extra_id_${SENTINELS - 1}> (T5's tokenizers have them; tokenizer.train adds them)`,
    });
  if (tok.eosTokenId === undefined) throw new ConfigError('the tokenizer has no EOS token', where);
  const eos = tok.eosTokenId;
  const pad = tok.padTokenId ?? 0;
  const from = baseWeightsFrom(cfg.model.pretrained, resumeDir, cfg.peft, configFile);
  const model = from
    ? await loadPretrained(from)
    : T5ForConditionalGeneration.init(
        {
          ...T5_DEFAULTS,
          vocabSize: tok.vocabSize,
          padTokenId: pad,
          eosTokenId: eos,
          decoderStartTokenId: pad,
          ...cfg.model.config,
        },
        cfg.seed,
      );
  if (!(model instanceof T5ForConditionalGeneration))
    throw new ConfigError(`span corruption needs a T5 checkpoint, and ${from} is a ${model.modelType}`, {
      file: configFile,
      field: 'model.pretrained',
    });
  requireTokenizerFits(tok, model, { file: configFile, field: 'tokenizer.path' });
  const { rawLength, targetsLength } = spanCorruptionLengths(
    cfg.data.maxLength,
    cfg.noiseDensity,
    cfg.meanNoiseSpanLength,
  );
  const data = await prepareDataset({ ...cfg.data, maxLength: rawLength, addEos: false }, tok, {
    tokenizerFingerprint: tokenizerFingerprint(tok),
    configFile,
    seed: cfg.seed,
  });
  if (data.stats.badRows.count) report.info(data.stats.badRows.summary());
  const seqs = (set: Tokenized[]) =>
    set
      .filter((t): t is Extract<Tokenized, { kind: 'sequence' }> => t.kind === 'sequence' && t.inputIds.length >= 2)
      .map((t) => t.inputIds);
  const [train, held] = [seqs(data.train), seqs(data.eval)];
  report.info(
    `model: t5 ${(model.numParameters / 1e6).toFixed(2)}M parameters; data: ${train.length} train / ${held.length} eval texts of up to ${rawLength} tokens -> inputs of ${cfg.data.maxLength}, targets of about ${targetsLength}`,
  );
  const net = withAdapter(model, cfg, { resumeDir, file: configFile, info: (m) => report.info(m) });
  const opt = makeOptimizer(net.params, cfg.optim, resumeDir);
  const logger = openLogger(runDir, cfg, state?.step, o.collective?.rank);
  const sentinel = (i: number) => sentinelIds[Math.min(i, SENTINELS - 1)]!;

  /** Logits [B·Tt, V] of a corrupted batch (spans from spanSeed and the rows' keys, dropout from seed), and its labels. */
  const forward = (rows: Int32Array[], seed: number, training: boolean, spanSeed = seed, rowKeys?: Int32Array) => {
    const b = spanBatch(
      rows,
      {
        seed: spanSeed,
        noiseDensity: cfg.noiseDensity,
        meanNoiseSpanLength: cfg.meanNoiseSpanLength,
        sentinel,
        rowKeys,
      },
      { eos, pad, decoderStart: model.config.decoderStartTokenId },
    );
    const { logits } = (net as T5ForConditionalGeneration).forward({
      inputIds: tf.tensor2d(b.inputIds, undefined, 'int32'),
      attentionMask: tf.tensor2d(b.attentionMask, undefined, 'int32'),
      decoderInputIds: tf.tensor2d(b.decoderInputIds, undefined, 'int32'),
      training,
      dropoutSeed: seed,
    });
    return {
      logits: tf.reshape(logits, [b.B * b.Tt, -1]) as tf.Tensor2D,
      labels: Int32Array.from(b.labels.flat()),
      tokens: b.tokens,
    };
  };

  // the same spans at every evaluation: seeded by the batch, not the step
  const evaluate = () =>
    heldOutMeans(held, cfg.train, (part, k) => {
      const { logits, labels } = forward(part, deriveSeed(cfg.seed, 0x7535, k), false);
      const pred = tf.argMax(logits, 1).dataSync();
      const correct = labels.reduce((n, l, i) => n + (l !== -100 && pred[i] === l ? 1 : 0), 0);
      return { ...crossEntropySum(logits, labels), metrics: { accuracy: correct } };
    });

  // ---- train
  const result = await trainLoop(
    cfg,
    {
      ...{ runDir, logger, state, resumeDir, backendName: backend.name },
      model: net,
      optimizer: opt,
      numRows: train.length,
      loss: (idx, seed, dataSeed) => () => {
        const { logits, labels, tokens } = forward(
          Array.from(idx, (i) => train[i]),
          seed,
          true,
          dataSeed,
          idx,
        );
        return { ...crossEntropySum(logits, labels), tokens };
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
