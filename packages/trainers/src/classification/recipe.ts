// Sequence classification (sentiment, topic, ...), as one readable recipe: setup -> train
// -> save -> cleanup. The classifier comes from a checkpoint: used as is, or an encoder
// (BERT MLM) or a decoder (GPT-2/Llama LM) with a fresh classification head. Metrics:
// loss, accuracy, macro F1, and a per-class report at every evaluation.
import * as tf from '@tensorflow/tfjs-core';
import { configToYaml, useBackend } from '@anneal/core';
import { collateClassification, prepareDataset, type Tokenized } from '@anneal/data';
import { classifierFrom, crossEntropySum } from '@anneal/modeling';
import { loadTokenizerSync, tokenizerFingerprint } from '@anneal/tokenizers';
import {
  type RunOptions,
  trainLoop,
  localModelDir,
  baseWeightsFrom,
  loadBase,
  withAdapter,
  requireFits,
  silentReporter,
  makeOptimizer,
  openLogger,
  openRunFolder,
  type RecipeResult,
  requireTokenizerFits,
} from '@anneal/training';
import type { ClassificationConfig } from './config.js';

type Example = Extract<Tokenized, { kind: 'classification' }>;

export type ClassificationResult = RecipeResult;

export async function runClassification(
  cfg: ClassificationConfig,
  configFile: string,
  o: RunOptions = {},
): Promise<ClassificationResult> {
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
  const tok = loadTokenizerSync(resumeDir ?? cfg.tokenizer.path ?? (await localModelDir(cfg.model.pretrained)));
  const padId = tok.padTokenId ?? tok.eosTokenId ?? 0;
  const base = classifierFrom(
    await loadBase(baseWeightsFrom(cfg.model.pretrained, resumeDir, cfg.peft, configFile), cfg.quantization, {
      info: (m) => report.info(m),
    }),
    cfg.labels,
    padId,
    cfg.seed,
  );
  requireFits(cfg.data.maxLength, base, configFile);
  requireTokenizerFits(tok, base, { file: configFile, field: 'tokenizer.path' });
  const peft = cfg.peft && {
    ...cfg.peft,
    modulesToSave: cfg.peft.modulesToSave.length ? cfg.peft.modulesToSave : ['classifier', 'score'],
  };
  const model = withAdapter(base, cfg, { resumeDir, file: configFile, info: (m) => report.info(m), peft });
  const fingerprint = tokenizerFingerprint(tok);
  const data = await prepareDataset({ ...cfg.data, labels: cfg.data.labels ?? cfg.labels }, tok, {
    tokenizerFingerprint: fingerprint,
    configFile,
    seed: cfg.seed,
  });
  if (data.stats.badRows.count) report.info(data.stats.badRows.summary());
  const train = data.train as Example[];
  const held = data.eval as Example[];
  report.info(
    `model: ${base.modelType} ${(base.numParameters / 1e6).toFixed(2)}M parameters, ${cfg.labels.length} classes; data: ${train.length} train / ${held.length} eval examples`,
  );

  const opt = makeOptimizer(model.params, cfg.optim, resumeDir);
  const logger = openLogger(runDir, cfg, state?.step, o.collective?.rank);

  /** logits [B, classes] of a batch of examples. */
  const logitsOf = (rows: Example[], training: boolean, seed = 0) => {
    const b = collateClassification(rows, { padId });
    return {
      logits: model.forward({
        inputIds: tf.tensor2d(b.inputIds, [b.batchSize, b.length], 'int32'),
        attentionMask: tf.tensor2d(b.attentionMask, [b.batchSize, b.length], 'int32'),
        training,
        dropoutSeed: seed,
      }).logits as tf.Tensor2D,
      labels: b.classLabels,
    };
  };

  const evaluate = () => {
    const K = cfg.labels.length;
    const confusion = Array.from({ length: K }, () => new Array<number>(K).fill(0)); // [gold][pred]
    let lossSum = 0;
    const nBatches = Math.ceil(held.length / cfg.train.batchSize);
    const limit = cfg.train.evalBatches > 0 ? Math.min(cfg.train.evalBatches, nBatches) : nBatches;
    for (let k = 0; k < limit; k++) {
      const rows = held.slice(k * cfg.train.batchSize, (k + 1) * cfg.train.batchSize);
      const { logits, labels } = logitsOf(rows, false);
      lossSum += crossEntropySum(logits, labels).sum.dataSync()[0];
      const pred = tf.argMax(logits, 1).dataSync();
      labels.forEach((g, i) => confusion[g][pred[i]]++);
    }
    const n = confusion.flat().reduce((a, b) => a + b, 0);
    const perClass = cfg.labels.map((name, c) => {
      const tp = confusion[c][c];
      const support = confusion[c].reduce((a, b) => a + b, 0);
      const predicted = confusion.reduce((a, row) => a + row[c], 0);
      const precision = predicted ? tp / predicted : 0;
      const recall = support ? tp / support : 0;
      return {
        name,
        precision,
        recall,
        f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0,
        support,
      };
    });
    report.info(
      'per class: ' +
        perClass
          .map(
            (c) =>
              `${c.name} P ${c.precision.toFixed(3)} R ${c.recall.toFixed(3)} F1 ${c.f1.toFixed(3)} (n=${c.support})`,
          )
          .join('; '),
    );
    const correct = confusion.reduce((a, row, c) => a + row[c], 0);
    return {
      'eval/loss': lossSum / Math.max(1, n),
      'eval/accuracy': correct / Math.max(1, n),
      'eval/f1': perClass.reduce((a, c) => a + c.f1, 0) / K,
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
        const { logits, labels } = logitsOf(
          Array.from(idx, (i) => train[i]),
          true,
          seed,
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
