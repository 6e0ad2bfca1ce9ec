// MLM pretraining of a tiny BERT (WordPiece trained on the shipped reviews), then
// sentiment classification from that checkpoint: losses fall, metrics are logged, the MLM
// run resumes exactly, and a GPT-2 LM checkpoint gets a classification head too.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunLogger, readSafetensors, useBackend, validateConfig } from '@anneal/core';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { GPT2_DEFAULTS, Gpt2LMHeadModel } from '@anneal/modeling';
import { trainByteLevelBpe } from '@anneal/tokenizers';
import { ClassificationConfigSchema, MlmConfigSchema, runClassification, runMlm } from '../index.js';

const REVIEWS = new URL('../../../../datasets/sentiment/classification.jsonl', import.meta.url).pathname;
const runs = () => mkdtempSync(join(tmpdir(), 'anneal-cls-'));
const train = (o: object = {}) => ({
  batchSize: 16,
  maxSteps: 30,
  logEvery: 1,
  evalEvery: 15,
  evalBatches: 2,
  saveEvery: 15,
  ...o,
});

/** A one-layer GPT-2 language model and its byte-level BPE, saved as a model folder. */
async function tinyGpt2LmDir(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'anneal-gpt2-lm-'));
  const tok = await trainByteLevelBpe(['good bad fine awful great terrible'], {
    vocabSize: 280,
    specialTokens: ['<|endoftext|>'],
    eosToken: '<|endoftext|>',
    padToken: '<|endoftext|>',
  });
  tok.save(dir);
  await useBackend('cpu', {});
  await Gpt2LMHeadModel.init(
    { ...GPT2_DEFAULTS, vocabSize: 280, nPositions: 64, nLayer: 1, nHead: 2, nEmbd: 16 },
    1,
  ).savePretrained(dir);
  return dir;
}

const mlmConfig = (backend: 'cpu' | 'auto', o: object = {}) =>
  validateConfig(MlmConfigSchema, {
    name: 'mlm',
    recipe: 'mlm',
    backend,
    outputDir: runs(),
    model: {
      config: {
        hiddenSize: 64,
        numHiddenLayers: 2,
        numAttentionHeads: 2,
        intermediateSize: 128,
        maxPositionEmbeddings: 64,
        hiddenDropoutProb: 0,
        attentionProbsDropoutProb: 0,
      },
    },
    tokenizer: { train: { vocabSize: 600 } },
    data: { train: REVIEWS, format: 'text', maxLength: 48, onBadRow: 'truncate', evalFraction: 0.05, cacheDir: null },
    optim: { lr: 2e-3 },
    schedule: { kind: 'constant', warmupSteps: 3 },
    train: train(o),
  });

describe('MLM and classification recipes', () => {
  it('MLM: the loss falls, mlm_accuracy is logged, and a resumed run continues exactly', async () => {
    const losses = new Map<number, number>();
    const full = await runMlm(mlmConfig('cpu', { maxSteps: 10, evalEvery: 5, saveEvery: 5 }), 'mlm.yaml', {
      onStep: (s, l) => losses.set(s, l),
    });
    expect(Math.min(...[8, 9, 10].map((s) => losses.get(s)!))).toBeLessThan(
      Math.max(...[1, 2, 3].map((s) => losses.get(s)!)),
    );
    expect(RunLogger.read(full.runDir).some((m) => 'eval/mlm_accuracy' in m)).toBe(true);
    let seen = 0;
    const stopped = await runMlm(mlmConfig('cpu', { maxSteps: 10, evalEvery: 5, saveEvery: 5 }), 'mlm.yaml', {
      onStep: () => seen++,
      shouldStop: () => seen >= 4,
    });
    const resumed = new Map<number, number>();
    await runMlm(mlmConfig('cpu', { maxSteps: 10, evalEvery: 5, saveEvery: 5 }), 'mlm.yaml', {
      resume: stopped.runDir,
      onStep: (s, l) => resumed.set(s, l),
    });
    expect([...resumed.keys()]).toEqual([5, 6, 7, 8, 9, 10]);
    for (const [s, l] of resumed)
      expect(Math.abs(l - losses.get(s)!), `step ${s}`).toBeLessThanOrEqual(1e-6 * losses.get(s)!);

    // Continued MLM with LoRA on the pretrained encoder: adapter-only checkpoints, finite losses.
    const loraLosses: number[] = [];
    const lora = await runMlm(
      {
        ...mlmConfig('cpu', { maxSteps: 4, evalEvery: 4, saveEvery: 4 }),
        model: { pretrained: full.lastCheckpoint, config: {} },
        tokenizer: {},
        peft: LoraConfigSchema.parse({ r: 4, loraAlpha: 8, targetModules: ['query', 'value'] }),
      },
      'mlm.yaml',
      { onStep: (_, l) => loraLosses.push(l) },
    );
    expect(loraLosses.length).toBe(4);
    expect(loraLosses.every(Number.isFinite)).toBe(true);
    const keys = [...readSafetensors(join(lora.lastCheckpoint, 'adapter_model.safetensors')).tensors.keys()];
    expect(keys.length).toBe(2 * 2 * 2); // 2 layers x (query, value) x (A, B)
    expect(
      keys.every((k) =>
        /^base_model\.model\.bert\.encoder\.layer\.\d\.attention\.self\.(query|value)\.lora_[AB]\.weight$/.test(k),
      ),
    ).toBe(true);
  }, 180_000);

  it('classification from the MLM checkpoint: the loss falls and accuracy, F1 are logged', async () => {
    const mlm = await runMlm(mlmConfig('auto'), 'mlm.yaml');
    const losses: number[] = [];
    const cfg = validateConfig(ClassificationConfigSchema, {
      name: 'cls',
      recipe: 'classification',
      backend: 'auto',
      outputDir: runs(),
      model: { pretrained: mlm.lastCheckpoint },
      labels: ['negative', 'positive'],
      data: {
        train: REVIEWS,
        format: 'classification',
        maxLength: 48,
        onBadRow: 'truncate',
        evalFraction: 0.1,
        cacheDir: null,
      },
      optim: { lr: 1e-3 },
      schedule: { kind: 'constant', warmupSteps: 3 },
      train: train({ maxSteps: 40, evalEvery: 40, evalBatches: 0 }),
    });
    const r = await runClassification(cfg, 'cls.yaml', { onStep: (_, l) => losses.push(l) });
    const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)));
    expect(r.eval!['eval/accuracy']).toBeGreaterThan(0);
    expect(Object.keys(r.eval!)).toEqual(['eval/loss', 'eval/accuracy', 'eval/f1']);
  }, 180_000);

  it('counts steps from numEpochs, and stops early when the eval loss stops improving', async () => {
    const dir = await tinyGpt2LmDir();
    const small = join(dir, 'small.jsonl');
    writeFileSync(small, readFileSync(REVIEWS, 'utf8').split('\n').slice(0, 40).join('\n') + '\n');
    const base = {
      name: 'e',
      recipe: 'classification',
      backend: 'cpu',
      outputDir: runs(),
      model: { pretrained: dir },
      labels: ['negative', 'positive'],
      data: {
        train: small,
        format: 'classification',
        maxLength: 24,
        onBadRow: 'truncate',
        evalFraction: 0.25,
        cacheDir: null,
      },
    };
    // 30 training rows (40 less a quarter held out), batch 8: half an epoch is ceil(15 / 8) = 2 steps
    const epochs = await runClassification(
      validateConfig(ClassificationConfigSchema, {
        ...base,
        optim: { lr: 1e-3 },
        train: { batchSize: 8, numEpochs: 0.5, evalEvery: 100, evalBatches: 1 },
      }),
      'e.yaml',
    );
    expect(epochs.step).toBe(2);
    // an update too small to change a float32 parameter: the eval loss never improves after step 1
    const early = await runClassification(
      validateConfig(ClassificationConfigSchema, {
        ...base,
        outputDir: runs(),
        optim: { lr: 1e-30, weightDecay: 0 },
        train: { batchSize: 4, maxSteps: 50, evalEvery: 1, evalBatches: 1, earlyStoppingPatience: 2 },
      }),
      'e.yaml',
    );
    expect(early.step).toBe(3);
    expect(early.stopped).toBe(false);
  }, 60_000);

  it('puts a classification head on a GPT-2 language model checkpoint', async () => {
    const dir = await tinyGpt2LmDir();
    const cfg = validateConfig(ClassificationConfigSchema, {
      name: 'g',
      recipe: 'classification',
      backend: 'cpu',
      outputDir: runs(),
      model: { pretrained: dir },
      labels: ['negative', 'positive'],
      data: {
        train: REVIEWS,
        format: 'classification',
        maxLength: 48,
        onBadRow: 'truncate',
        evalFraction: 0.01,
        cacheDir: null,
      },
      optim: { lr: 1e-3 },
      train: train({ maxSteps: 3, evalEvery: 3, evalBatches: 1, batchSize: 4 }),
    });
    const r = await runClassification(cfg, 'g.yaml');
    expect(r.step).toBe(3);
    expect(JSON.parse(readFileSync(join(r.lastCheckpoint, 'config.json'), 'utf8')).architectures).toEqual([
      'GPT2ForSequenceClassification',
    ]);

    // With LoRA the head trains in full next to the adapters (PEFT's SEQ_CLS default), and a resumed run picks both up.
    const lora = {
      ...cfg,
      name: 'g-lora',
      outputDir: runs(),
      peft: LoraConfigSchema.parse({ r: 4, loraAlpha: 8, targetModules: ['c_attn'] }),
    };
    const lr = await runClassification(lora, 'g.yaml');
    const keys = [...readSafetensors(join(lr.lastCheckpoint, 'adapter_model.safetensors')).tensors.keys()].sort();
    expect(keys).toEqual([
      'base_model.model.score.weight',
      'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight',
      'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight',
    ]);
    const more = await runClassification({ ...lora, train: { ...lora.train, maxSteps: 5 } }, 'g.yaml', {
      resume: lr.runDir,
    });
    expect(more.step).toBe(5);
  }, 60_000);
});
