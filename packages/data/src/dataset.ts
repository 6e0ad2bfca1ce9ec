// A dataset as a config describes it: sources -> rows -> examples -> tokens, bad rows
// handled by on_bad_row, an eval split by file or by ratio, and an on-disk cache of the
// tokenized result keyed by the data files, the tokenizer and every option that changes
// tokens (a second run reads the cache instead of tokenizing).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { DataError, Rng, deriveSeed, writeFileAtomic } from '@anneal/core';
import { BadRow, BadRowLog, toExample, type TaskFormat } from './formats.js';
import { hubDatasetFiles } from './hub.js';
import { readRows, sourceFiles, type RowAt, type SourceSpec } from './sources.js';
import { TooLong, tokenizeExample, type DataTokenizer, type Tokenized } from './tokenize.js';

const SourceSchema = z.union([
  z.string(),
  z
    .object({
      path: z.string(),
      format: z.enum(['jsonl', 'json', 'csv', 'tsv', 'text', 'parquet', 'arrow']).optional(),
      textUnit: z.enum(['file', 'line', 'paragraph']).optional(),
    })
    .strict(),
  z
    .object({
      hub: z.string().regex(/^[\w.-]+\/[\w.-]+$/, 'org/name'),
      split: z.string().default('train'),
      config: z.string().optional(),
      revision: z.string().optional(),
    })
    .strict(),
]);

export const DataConfigSchema = z
  .object({
    /** A file or folder, {path, format, textUnit}, or a Hub dataset {hub: org/name, split, config}. */
    train: SourceSchema,
    /** Evaluation data; else evalFraction of train, held out with a fixed seed. */
    eval: SourceSchema.optional(),
    evalFraction: z.number().min(0).max(0.5).default(0.05),
    format: z.enum([
      'text',
      'prompt-completion',
      'conversational',
      'preference',
      'unpaired-preference',
      'classification',
    ]),
    /** Where each field is, e.g. {text: body, label: stars}. */
    columns: z
      .object({
        text: z.string(),
        prompt: z.string(),
        completion: z.string(),
        messages: z.string(),
        chosen: z.string(),
        rejected: z.string(),
        label: z.string(),
        margin: z.string(),
      })
      .partial()
      .strict()
      .default({}),
    /** Classification label names (index = class id); string labels are looked up here. */
    labels: z.array(z.string()).optional(),
    maxLength: z.number().int().min(1),
    truncation: z.enum(['keep_start', 'keep_end']).default('keep_start'),
    /** preference: the prompt's share of maxLength when a pair is too long (TRL's max_prompt_length; the prompt keeps its start or end by truncation). */
    maxPromptLength: z.number().int().min(1).optional(),
    onBadRow: z.enum(['error', 'skip', 'truncate']).default('error'),
    addEos: z.boolean().default(true),
    completionOnlyLoss: z.boolean().default(true),
    assistantOnlyLoss: z.boolean().default(false),
    /** Tokenized data is cached in this folder (null: no cache). */
    cacheDir: z.string().nullable().default('.anneal-cache'),
  })
  .strict();

export type DataConfig = z.infer<typeof DataConfigSchema>;

export interface DatasetStats {
  rows: number;
  tokens: number;
  badRows: BadRowLog;
  /** Read from the cache instead of tokenized. */
  cached: boolean;
}

export interface PreparedDataset {
  train: Tokenized[];
  eval: Tokenized[];
  stats: DatasetStats;
}

async function sourceToFiles(src: z.infer<typeof SourceSchema>): Promise<SourceSpec[]> {
  if (typeof src === 'string') return [{ path: src }];
  if ('hub' in src)
    return (await hubDatasetFiles(src.hub, { split: src.split, config: src.config, revision: src.revision })).map(
      (path) => ({ path, format: 'parquet' as const }),
    );
  return [src];
}

/** What identifies the tokenized result: file identities, the tokenizer, the options. */
function cacheKey(specs: SourceSpec[][], cfg: DataConfig, tokenizerFingerprint: string): string {
  const files = specs.map((list) =>
    list.flatMap((s) =>
      sourceFiles(s).map((f) => [
        resolve(f),
        statSync(f).size,
        statSync(f).mtimeMs,
        s.format ?? null,
        s.textUnit ?? null,
      ]),
    ),
  );
  const { cacheDir: _ignored, ...options } = cfg;
  void _ignored;
  return createHash('sha256')
    .update(JSON.stringify({ v: 2, files, options, tokenizerFingerprint }))
    .digest('hex')
    .slice(0, 32);
}

// ---- cache file: [u32 header length][header JSON][Int32 lengths][Int32 data]

function encode(sets: Tokenized[][]): { header: object; lengths: Int32Array; data: Int32Array } {
  const arrays: ArrayLike<number>[] = [];
  const kinds: string[] = [];
  for (const set of sets)
    for (const t of set) {
      kinds.push(t.kind);
      if (t.kind === 'sequence') arrays.push(t.inputIds, t.lossMask);
      else if (t.kind === 'classification') arrays.push(t.inputIds, [t.label]);
      else if (t.kind === 'unpaired') arrays.push(t.prompt, t.completion, [t.label ? 1 : 0]);
      else
        arrays.push(
          t.prompt,
          t.chosen,
          t.rejected,
          t.margin === undefined ? [] : new Int32Array(Float32Array.of(t.margin).buffer),
        );
    }
  const lengths = Int32Array.from(arrays.map((a) => a.length));
  const data = new Int32Array(lengths.reduce((s, n) => s + n, 0));
  let at = 0;
  for (const a of arrays) {
    data.set(a, at);
    at += a.length;
  }
  return { header: { sizes: sets.map((s) => s.length), kinds }, lengths, data };
}

function writeCache(file: string, sets: Tokenized[][], extra: object): void {
  const { header, lengths, data } = encode(sets);
  const json = Buffer.from(JSON.stringify({ ...header, ...extra, arrays: lengths.length }));
  const pad = (4 - (json.length % 4)) % 4;
  const buf = Buffer.alloc(4 + json.length + pad + lengths.byteLength + data.byteLength, 0x20);
  buf.writeUInt32LE(json.length + pad, 0);
  json.copy(buf, 4);
  Buffer.from(lengths.buffer, lengths.byteOffset, lengths.byteLength).copy(buf, 4 + json.length + pad);
  Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(buf, 4 + json.length + pad + lengths.byteLength);
  writeFileAtomic(file, buf);
}

function readCache(file: string): {
  sets: Tokenized[][];
  extra: { rows: number; badRows: number; firstBad: string[] };
} {
  const buf = readFileSync(file);
  const n = buf.readUInt32LE(0);
  const header = JSON.parse(buf.subarray(4, 4 + n).toString());
  // View the file's bytes in place when aligned (large reads are), else copy once.
  const start = buf.byteOffset + 4 + n;
  const body = start % 4 === 0 ? buf.buffer : buf.buffer.slice(start, buf.byteOffset + buf.length);
  const base = start % 4 === 0 ? start : 0;
  const lengths = new Int32Array(body, base, header.arrays);
  const data = new Int32Array(body, base + lengths.byteLength, (buf.length - 4 - n - lengths.byteLength) / 4);
  let a = 0;
  let at = 0;
  const next = () => {
    const x = data.subarray(at, at + lengths[a]);
    at += lengths[a++];
    return x;
  };
  let k = 0;
  const sets = (header.sizes as number[]).map((size) =>
    Array.from({ length: size }, (): Tokenized => {
      const kind = header.kinds[k++];
      if (kind === 'sequence') return { kind, inputIds: next(), lossMask: new Uint8Array(next()) };
      if (kind === 'classification') return { kind, inputIds: next(), label: next()[0] };
      if (kind === 'unpaired') return { kind, prompt: next(), completion: next(), label: next()[0] === 1 };
      const [prompt, chosen, rejected, m] = [next(), next(), next(), next()];
      return {
        kind: 'preference',
        prompt,
        chosen,
        rejected,
        ...(m.length ? { margin: new Float32Array(Int32Array.from(m).buffer)[0] } : {}),
      };
    }),
  );
  return { sets, extra: header };
}

/** Reads, converts and tokenizes the configured data (or loads it from the cache). */
export async function prepareDataset(
  cfg: DataConfig,
  tok: DataTokenizer,
  o: { tokenizerFingerprint: string; configFile?: string; seed?: number },
): Promise<PreparedDataset> {
  const trainSpecs = await sourceToFiles(cfg.train);
  const evalSpecs = cfg.eval ? await sourceToFiles(cfg.eval) : [];
  const key = cacheKey([trainSpecs, evalSpecs], cfg, o.tokenizerFingerprint);
  const cacheFile = cfg.cacheDir ? join(cfg.cacheDir, 'tokenized', `${key}.bin`) : undefined;
  if (cacheFile && existsSync(cacheFile)) {
    const { sets, extra } = readCache(cacheFile);
    const badRows = new BadRowLog();
    badRows.count = extra.badRows;
    badRows.restored.push(...extra.firstBad);
    return {
      train: sets[0],
      eval: sets[1],
      stats: { rows: extra.rows, tokens: countTokens(sets), badRows, cached: true },
    };
  }
  const badRows = new BadRowLog();
  let rows = 0;
  const tokenizeAll = async (specs: SourceSpec[]): Promise<Tokenized[]> => {
    const out: Tokenized[] = [];
    for (const spec of specs) {
      // With onBadRow skip/truncate, rows that cannot even be read (not JSON, wrong field count) are skipped and counted too.
      const unreadable =
        cfg.onBadRow === 'error'
          ? undefined
          : (reason: string, at: RowAt) => badRows.add(new BadRow(reason, at, 'data.train'));
      for await (const { row, at } of readRows(spec, unreadable)) {
        rows++;
        try {
          const ex = toExample(row, at, cfg.format as TaskFormat, cfg.columns, cfg.labels);
          try {
            out.push(tokenizeExample(ex, tok, cfg, cfg.onBadRow === 'truncate'));
          } catch (e) {
            if (e instanceof TooLong) throw new BadRow(e.message, at, 'data.maxLength');
            throw e;
          }
        } catch (e) {
          if (!(e instanceof BadRow) || cfg.onBadRow === 'error') throw e;
          badRows.add(e);
        }
      }
    }
    return out;
  };
  let train = await tokenizeAll(trainSpecs);
  let evalSet = await tokenizeAll(evalSpecs);
  if (!cfg.eval && cfg.evalFraction > 0) {
    // A seeded permutation, the last evalFraction of it held out (as datasets' train_test_split).
    const order = Int32Array.from(train.keys());
    new Rng(deriveSeed(o.seed ?? 42, 7)).shuffle(order);
    const nEval = Math.round(train.length * cfg.evalFraction);
    const held = new Set(order.subarray(order.length - nEval));
    evalSet = train.filter((_, i) => held.has(i));
    train = train.filter((_, i) => !held.has(i));
  }
  if (!train.length)
    throw new DataError('no usable training rows', {
      file: typeof cfg.train === 'string' ? cfg.train : o.configFile,
      field: 'data.train',
      hint: badRows.count ? badRows.summary() : 'the source is empty',
    });
  if (cacheFile) {
    mkdirSync(join(cfg.cacheDir!, 'tokenized'), { recursive: true });
    writeCache(cacheFile, [train, evalSet], { rows, badRows: badRows.count, firstBad: badRows.lines() });
  }
  return { train, eval: evalSet, stats: { rows, tokens: countTokens([train, evalSet]), badRows, cached: false } };
}

/** Tokens of one example (a pair's prompt counts once). */
export function tokenCount(t: Tokenized): number {
  if (t.kind === 'preference') return t.prompt.length + t.chosen.length + t.rejected.length;
  if (t.kind === 'unpaired') return t.prompt.length + t.completion.length;
  return t.inputIds.length;
}

function countTokens(sets: Tokenized[][]): number {
  let n = 0;
  for (const s of sets) for (const t of s) n += tokenCount(t);
  return n;
}
