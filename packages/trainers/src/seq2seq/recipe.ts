// Sequence-to-sequence fine-tuning (T5, Flan-T5), as one readable recipe: setup -> train ->
// cleanup. Each row's input goes to the encoder (EOS appended, as T5's tokenizer does), its
// target (EOS appended) is the label sequence: the loss is on the target only, the decoder
// reading the target shifted right. Evaluation: the loss and, with predictWithGenerate, greedy
// decodes of held-out inputs scored against their targets (exact match, ROUGE, BLEU).
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, configToYaml, useBackend } from '@anneal/core';
import { prepareDataset, type Tokenized } from '@anneal/data';
import { rouge, sacreBleu } from '@anneal/eval';
import { T5ForConditionalGeneration, crossEntropySum, seq2seqGenerate } from '@anneal/modeling';
import { loadTokenizerSync, tokenizerFingerprint } from '@anneal/tokenizers';
import {
  baseWeightsFrom,
  heldOutMeans,
  loadBase,
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
import { seq2seqBatch, type Seq2SeqPair } from './batch.js';
import type { Seq2SeqConfig } from './config.js';

/** Prompt-completion rows as pairs: the prompt tokens (loss mask 0) are the input, the rest the target. */
export function seq2seqPairs(rows: Tokenized[], eos: number): Seq2SeqPair[] {
  return rows.flatMap((t) => {
    if (t.kind !== 'sequence') return [];
    const split = t.lossMask.indexOf(1);
    if (split <= 0) return [];
    const input = Array.from(t.inputIds.subarray(0, split));
    const target = Array.from(t.inputIds.subarray(split));
    if (input.at(-1) !== eos) input.push(eos);
    if (target.at(-1) !== eos) target.push(eos);
    return [{ input, target }];
  });
}

export async function runSeq2Seq(cfg: Seq2SeqConfig, configFile: string, o: RunOptions = {}): Promise<RecipeResult> {
  const report = o.reporter ?? silentReporter;

  // ---- setup: backend, run folder, model, tokenizer, pairs
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
    {
      info: (m) => report.info(m),
    },
  );
  if (!(base instanceof T5ForConditionalGeneration))
    throw new ConfigError(
      `seq2seq needs an encoder–decoder (T5) checkpoint, and ${cfg.model.pretrained} is a ${base.modelType}`,
      {
        file: configFile,
        field: 'model.pretrained',
        hint: 'for a decoder-only model use recipe: sft',
      },
    );
  const tok = loadTokenizerSync(resumeDir ?? cfg.tokenizer.path ?? (await localModelDir(cfg.model.pretrained)));
  requireTokenizerFits(tok, base, { file: configFile, field: 'tokenizer.path' });
  const eos = tok.eosTokenId ?? base.config.eosTokenId;
  const pad = tok.padTokenId ?? base.config.padTokenId;
  const data = await prepareDataset({ ...cfg.data, completionOnlyLoss: true }, tok, {
    tokenizerFingerprint: tokenizerFingerprint(tok),
    configFile,
    seed: cfg.seed,
  });
  if (data.stats.badRows.count) report.info(data.stats.badRows.summary());
  const [train, held] = [seq2seqPairs(data.train, eos), seq2seqPairs(data.eval, eos)];
  if (!train.length)
    throw new ConfigError('no input -> target pairs in the training data', {
      file: configFile,
      field: 'data.columns',
      hint: 'the input goes in the prompt column and the target in the completion column (data.columns maps yours)',
    });
  report.info(
    `model: t5 ${(base.numParameters / 1e6).toFixed(2)}M parameters; data: ${train.length} train / ${held.length} eval pairs`,
  );
  const net = withAdapter(base, cfg, { resumeDir, file: configFile, info: (m) => report.info(m) });
  const model = net as unknown as T5ForConditionalGeneration; // with LoRA, the wrapper forwards as the model
  const opt = makeOptimizer(net.params, cfg.optim, resumeDir);
  const logger = openLogger(runDir, cfg, state?.step, o.collective?.rank);
  const ids = { pad, decoderStart: base.config.decoderStartTokenId };

  const batchLoss = (pairs: Seq2SeqPair[], training: boolean, seed: number) => {
    const b = seq2seqBatch(pairs, ids);
    const { logits } = model.forward({
      inputIds: tf.tensor2d(b.inputIds, undefined, 'int32'),
      attentionMask: tf.tensor2d(b.attentionMask, undefined, 'int32'),
      decoderInputIds: tf.tensor2d(b.decoderInputIds, undefined, 'int32'),
      training,
      dropoutSeed: seed,
    });
    const r = crossEntropySum(tf.reshape(logits, [b.B * b.Tt, -1]) as tf.Tensor2D, Int32Array.from(b.labels.flat()));
    return { ...r, tokens: b.B * (b.Te + b.Tt) };
  };

  let samples: string[] = [];
  const evaluate = () => {
    const bs = cfg.train.batchSize;
    const out = heldOutMeans(held, cfg.train, (part) => ({ ...batchLoss(part, false, 0), metrics: {} }));
    if (!cfg.predictWithGenerate) return out;
    const rows = cfg.generationLimit ? held.slice(0, cfg.generationLimit) : held;
    const predictions: string[] = [];
    for (let s = 0; s < rows.length; s += bs) {
      const part = rows.slice(s, s + bs);
      const b = seq2seqBatch(part, ids);
      // the base model: a LoRA run's adapters sit in its layers (the loss pass above left them in eval mode)
      const decoded = seq2seqGenerate(base, b.inputIds, {
        maxNewTokens: cfg.generationMaxLength,
        attentionMask: b.attentionMask,
      });
      for (const d of decoded) predictions.push(tok.decode(d.slice(1).filter((t) => t !== eos && t !== pad)).trim());
    }
    const references = rows.map((p) => tok.decode(p.target.filter((t) => t !== eos)).trim());
    const r = rouge(predictions, references, { types: ['rouge1', 'rouge2', 'rougeL'] });
    out['eval/exact_match'] = predictions.filter((p, i) => p === references[i]).length / rows.length;
    for (const [k, v] of Object.entries(r)) out[`eval/${k}`] = v.fmeasure;
    out['eval/bleu'] = sacreBleu(predictions, [references]).score; // one reference stream
    samples = rows
      .slice(0, 4)
      .map((p, i) => `${tok.decode(p.input.filter((t) => t !== eos))} -> ${predictions[i]} (target: ${references[i]})`);
    return out;
  };

  // ---- train
  const result = await trainLoop(
    cfg,
    {
      ...{ runDir, logger, state, resumeDir, backendName: backend.name },
      model: net,
      optimizer: opt,
      numRows: train.length,
      loss: (idx, seed) => () =>
        batchLoss(
          Array.from(idx, (i) => train[i]),
          true,
          seed,
        ),
      evaluate: held.length ? evaluate : undefined,
      samples: () => samples,
      saveTokenizer: (d) => tok.save(d),
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
