// `anneal eval <config>`: one model, the tasks its kind supports, numbers into eval.json
// and TensorBoard scalars under eval/<task>/<metric> (in the run's folder when the model
// is one of its checkpoints, else in `output`).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { ConfigError, RunLogger, writeFileAtomic } from '@anneal/core';
import { readRows, toExample, type Example } from '@anneal/data';
import { generate, type CausalLm, type ModelOutput, type PretrainedModel } from '@anneal/modeling';
import { bleu, sacreBleu } from './bleu.js';
import { perplexity } from './lm.js';
import { meteor } from './meteor.js';
import { rouge } from './rouge.js';
import { accuracy, distinctN, exactMatch, f1, winRate } from './simple.js';

const Source = z.union([
  z.string(),
  z.object({ path: z.string(), textUnit: z.enum(['file', 'line', 'paragraph']).optional() }).strict(),
]);
const Columns = z
  .object({
    text: z.string(),
    prompt: z.string(),
    completion: z.string(),
    chosen: z.string(),
    rejected: z.string(),
    label: z.string(),
  })
  .partial()
  .strict()
  .default({});

export const EvalConfigSchema = z
  .object({
    /** Model folder or Hub repo id. */
    model: z.string(),
    /** Tokenizer folder or file (default: the model folder). */
    tokenizer: z.string().optional(),
    backend: z.enum(['auto', 'cpu', 'wasm', 'tensorflow', 'torch']).default('auto'),
    /** Folder for eval.json and event files (default: the run folder of a checkpoint, else ./eval). */
    output: z.string().optional(),
    /** Rows per task at most (0: all). */
    limit: z.number().int().min(0).default(0),
    seed: z.number().int().default(0),
    tasks: z
      .object({
        perplexity: z
          .object({
            data: Source,
            stride: z.number().int().min(1).optional(),
            maxLength: z.number().int().min(2).optional(),
          })
          .strict()
          .optional(),
        generation: z
          .object({
            data: Source,
            columns: Columns,
            metrics: z
              .array(z.enum(['bleu', 'sacrebleu', 'rouge', 'meteor', 'exact_match', 'distinct']))
              .default(['bleu', 'rouge', 'exact_match']),
            maxNewTokens: z.number().int().min(1).default(64),
            doSample: z.boolean().default(false),
            temperature: z.number().positive().optional(),
            topK: z.number().int().min(0).optional(),
            topP: z.number().min(0).max(1).optional(),
            numBeams: z.number().int().min(1).optional(),
          })
          .strict()
          .optional(),
        classification: z
          .object({ data: Source, columns: Columns, labels: z.array(z.string()).optional() })
          .strict()
          .optional(),
        reward: z.object({ data: Source, columns: Columns }).strict().optional(),
      })
      .strict(),
  })
  .strict();

export type EvalConfig = z.infer<typeof EvalConfigSchema>;

export interface EvalTokenizer {
  encode(text: string, o?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], o?: { skipSpecialTokens?: boolean }): string;
  readonly eosTokenId: number | undefined;
  readonly padTokenId: number | undefined;
}

export interface EvalProgress {
  task(name: string, total: number): void;
  tick(): void;
  info(message: string): void;
}

const silent: EvalProgress = { task: () => undefined, tick: () => undefined, info: () => undefined };

async function examples(
  src: z.infer<typeof Source>,
  format: Example['kind'],
  columns: Record<string, string>,
  limit: number,
  labels?: string[],
): Promise<Example[]> {
  const spec = typeof src === 'string' ? { path: src } : src;
  const out: Example[] = [];
  for await (const { row, at } of readRows(spec)) {
    out.push(toExample(row, at, format, columns, labels));
    if (limit && out.length >= limit) break;
  }
  return out;
}

const isClassifier = (m: PretrainedModel) =>
  /ForSequenceClassification$/.test(String((m.hfConfig().architectures as string[] | undefined)?.[0]));

/** Runs the configured tasks; returns { "<task>/<metric>": value }. */
export async function runEval(
  cfg: EvalConfig,
  model: PretrainedModel,
  tok: EvalTokenizer,
  o: { configFile?: string; progress?: EvalProgress } = {},
): Promise<Record<string, number>> {
  const p = o.progress ?? silent;
  const results: Record<string, number> = {};
  const t = cfg.tasks;
  const needLm = (task: string) => {
    if (isClassifier(model) || model.modelType === 'bert' || model.modelType === 'distilbert')
      throw new ConfigError(
        `task ${task} needs a causal language model, and ${cfg.model} is ${String((model.hfConfig().architectures as string[])[0])}`,
        { file: o.configFile, field: `tasks.${task}` },
      );
    return model as unknown as CausalLm;
  };
  const needClassifier = (task: string) => {
    if (!isClassifier(model)) {
      throw new ConfigError(
        `task ${task} needs a sequence-classification model, and ${cfg.model} is ${String((model.hfConfig().architectures as string[])[0])}`,
        { file: o.configFile, field: `tasks.${task}` },
      );
    }
  };
  const scoreOf = (text: string): number[] =>
    tf.tidy(() => {
      const ids = tok.encode(text);
      return Array.from(
        (model.forward({ inputIds: tf.tensor2d([ids], [1, ids.length], 'int32') }) as ModelOutput).logits.dataSync(),
      );
    });

  if (t.perplexity) {
    const lm = needLm('perplexity');
    const texts = (await examples(t.perplexity.data, 'text', {}, cfg.limit)).map((e) => (e as { text: string }).text);
    p.task('perplexity', 1);
    const r = perplexity(lm, tok, texts, { stride: t.perplexity.stride, maxLength: t.perplexity.maxLength });
    p.tick();
    Object.assign(results, {
      'perplexity/perplexity': r.perplexity,
      'perplexity/mean_nll': r.meanNll,
      'perplexity/tokens': r.tokens,
    });
  }

  if (t.generation) {
    const g = t.generation;
    const lm = needLm('generation');
    const rows = (await examples(g.data, 'prompt-completion', g.columns, cfg.limit)) as Array<{
      prompt: string;
      completion: string;
    }>;
    p.task('generation', rows.length);
    const preds = rows.map((r, i) => {
      const ids = tok.encode(r.prompt);
      const [out] = generate(lm, [ids], {
        maxNewTokens: g.maxNewTokens,
        doSample: g.doSample,
        temperature: g.temperature,
        topK: g.topK,
        topP: g.topP,
        numBeams: g.numBeams,
        seed: cfg.seed + i,
        eosTokenId: tok.eosTokenId,
      });
      p.tick();
      return tok.decode(out.slice(ids.length), { skipSpecialTokens: true }).trim();
    });
    const refs = rows.map((r) => r.completion.trim());
    for (const m of g.metrics) {
      if (m === 'bleu')
        results['generation/bleu'] = bleu(
          refs.map((r) => [r.split(/\s+/)]),
          preds.map((x) => x.split(/\s+/).filter(Boolean)),
          { smoothing: 1 },
        );
      if (m === 'sacrebleu') results['generation/sacrebleu'] = sacreBleu(preds, [refs]).score;
      if (m === 'rouge')
        for (const [k, v] of Object.entries(rouge(preds, refs))) results[`generation/${k}`] = v.fmeasure;
      if (m === 'meteor') results['generation/meteor'] = meteor(preds, refs).mean;
      if (m === 'exact_match') results['generation/exact_match'] = exactMatch(preds, refs, { normalize: true });
      if (m === 'distinct')
        Object.assign(results, {
          'generation/distinct_1': distinctN(preds, 1),
          'generation/distinct_2': distinctN(preds, 2),
        });
    }
  }

  if (t.classification) {
    needClassifier('classification');
    const labels =
      t.classification.labels ??
      (model.hfConfig().id2label ? Object.values(model.hfConfig().id2label as Record<string, string>) : undefined);
    const rows = (await examples(
      t.classification.data,
      'classification',
      t.classification.columns,
      cfg.limit,
      labels,
    )) as Array<{ text: string; label: number }>;
    p.task('classification', rows.length);
    const preds = rows.map((r) => {
      const s = scoreOf(r.text);
      p.tick();
      return s.indexOf(Math.max(...s));
    });
    const gold = rows.map((r) => r.label);
    Object.assign(results, {
      'classification/accuracy': accuracy(preds, gold),
      'classification/f1_macro': f1(preds, gold, 'macro'),
      'classification/f1_micro': f1(preds, gold, 'micro'),
    });
  }

  if (t.reward) {
    needClassifier('reward');
    const rows = (await examples(t.reward.data, 'preference', t.reward.columns, cfg.limit)) as Array<{
      prompt: string;
      chosen: string;
      rejected: string;
    }>;
    p.task('reward', rows.length);
    const chosen: number[] = [];
    const rejected: number[] = [];
    for (const r of rows) {
      chosen.push(scoreOf(`${r.prompt}${r.chosen}`)[0]);
      rejected.push(scoreOf(`${r.prompt}${r.rejected}`)[0]);
      p.tick();
    }
    const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
    Object.assign(results, {
      'reward/accuracy': winRate(chosen, rejected),
      'reward/chosen_mean': mean(chosen),
      'reward/rejected_mean': mean(rejected),
      'reward/margin': mean(chosen) - mean(rejected),
    });
  }
  return results;
}

/** Where results go: the run folder of a checkpoint (runs/x/checkpoints/step-N -> runs/x), else `output` or ./eval. */
export function evalOutputDir(cfg: EvalConfig): string {
  if (cfg.output) return cfg.output;
  if (existsSync(join(cfg.model, 'run.json'))) return cfg.model; // the run folder itself (its best checkpoint is evaluated)
  const m = /^(.*)[\\/]checkpoints[\\/][^\\/]+[\\/]?$/.exec(cfg.model);
  if (m && existsSync(join(m[1], 'run.json'))) return m[1];
  return 'eval';
}

/** Writes eval.json (atomically) and the scalars as eval/<name> TensorBoard events at `step`. */
export function writeEvalResults(
  dir: string,
  results: Record<string, number>,
  meta: Record<string, unknown>,
  step = 0,
): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'eval.json');
  writeFileAtomic(file, JSON.stringify({ ...meta, results }, null, 2) + '\n');
  const log = new RunLogger(dir);
  log.scalars(step, Object.fromEntries(Object.entries(results).map(([k, v]) => [`eval/${k}`, v])));
  log.tb.flush();
  return file;
}
