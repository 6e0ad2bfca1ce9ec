// prepareDataset end to end: bad rows by policy, held-out eval split, and the on-disk
// tokenization cache (hit on the second run, missed when an option or a file changes).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError } from '@anneal/core';
import { DataConfigSchema, prepareDataset, type DataTokenizer } from './index.js';

const tok: DataTokenizer = {
  encode: (t) => Array.from(t, (c) => c.codePointAt(0)!),
  encodeChat: () => ({ ids: [], assistantMask: [] }),
  applyChatTemplate: () => [],
  eosTokenId: 1,
};
const FP = 'char-tokenizer-v1';

function setup(lines: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'anneal-ds-'));
  const file = join(dir, 'train.jsonl');
  writeFileSync(file, lines.join('\n') + '\n');
  return { dir, file };
}

const ROWS = [
  '{"q": "hi", "a": "yo"}',
  '{"q": "abc", "a": "defghijklmnop"}',
  '{"q": "no answer"}',
  '{"q": "x", "a": "y"}',
];

describe('prepareDataset', () => {
  const cfg = (file: string, dir: string, extra: object = {}) =>
    DataConfigSchema.parse({
      train: file,
      format: 'prompt-completion',
      columns: { prompt: 'q', completion: 'a' },
      maxLength: 8,
      evalFraction: 0,
      cacheDir: join(dir, 'cache'),
      ...extra,
    });

  it('stops at the first bad row by default, naming file, line and field', async () => {
    const { dir, file } = setup(ROWS);
    const err = await prepareDataset(cfg(file, dir), tok, { tokenizerFingerprint: FP }).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    expect([err.file, err.field, err.message]).toEqual([
      file,
      'data.maxLength',
      'line 2: sequence of 17 tokens is longer than maxLength 8',
    ]);
  });

  it('keeps preference margins through the cache', async () => {
    const { dir, file } = setup([
      '{"prompt": "p", "chosen": "a", "rejected": "b", "m": 0.25}',
      '{"prompt": "q", "chosen": "c", "rejected": "d", "m": -3}',
    ]);
    const c = DataConfigSchema.parse({
      train: file,
      format: 'preference',
      columns: { margin: 'm' },
      maxLength: 8,
      evalFraction: 0,
      cacheDir: join(dir, 'cache'),
    });
    const first = await prepareDataset(c, tok, { tokenizerFingerprint: FP });
    const second = await prepareDataset(c, tok, { tokenizerFingerprint: FP });
    expect(second.stats.cached).toBe(true);
    for (const d of [first, second])
      expect(d.train.map((t) => t.kind === 'preference' && t.margin)).toEqual([0.25, -3]);
    expect(second.train[0].kind === 'preference' && Array.from(second.train[0].chosen)).toEqual([97, 1]);
  });

  it('reads unpaired (KTO) rows: prompt, completion and a boolean label, through the cache; a bad label is named', async () => {
    const { dir, file } = setup([
      '{"prompt": "p", "completion": "good", "label": true}',
      '{"prompt": "q", "completion": "bad", "label": false}',
      '{"prompt": "r", "completion": "what", "label": "maybe"}',
    ]);
    const c = DataConfigSchema.parse({
      train: file,
      format: 'unpaired-preference',
      maxLength: 8,
      evalFraction: 0,
      onBadRow: 'skip',
      cacheDir: join(dir, 'cache'),
    });
    const first = await prepareDataset(c, tok, { tokenizerFingerprint: FP });
    const second = await prepareDataset(c, tok, { tokenizerFingerprint: FP });
    expect(second.stats.cached).toBe(true);
    for (const d of [first, second]) {
      expect(
        d.train.map((t) => t.kind === 'unpaired' && [Array.from(t.prompt), Array.from(t.completion), t.label]),
      ).toEqual([
        [[112], [103, 111, 111, 100, 1], true],
        [[113], [98, 97, 100, 1], false],
      ]);
      expect(d.stats.badRows.count).toBe(1);
    }
    expect(first.stats.badRows.lines()[0]).toMatch(
      /line 3: field "label" should be true \(desirable\) or false \(undesirable\), got "maybe"/,
    );
  });

  it('skips and counts bad rows, or truncates the long ones', async () => {
    const { dir, file } = setup(ROWS);
    const skipped = await prepareDataset(cfg(file, dir, { onBadRow: 'skip' }), tok, { tokenizerFingerprint: FP });
    expect(skipped.train).toHaveLength(2);
    expect(skipped.stats.badRows.count).toBe(2);
    expect(skipped.stats.badRows.summary()).toMatch(
      /^2 bad rows skipped, e\.g\.:\n {2}.*line 2: sequence of 17 tokens.*\n {2}.*line 3: missing field "a"/,
    );
    const truncated = await prepareDataset(cfg(file, dir, { onBadRow: 'truncate' }), tok, { tokenizerFingerprint: FP });
    expect(truncated.train).toHaveLength(3); // the row without an answer is still bad
    expect(truncated.train[1].kind === 'sequence' && truncated.train[1].inputIds.length).toBe(8);
  });

  it('skip also skips and counts rows that are not even rows (not JSON, not an object); the summary is short with at most 3 examples', async () => {
    const good = '{"q": "x", "a": "y"}';
    const lines = [
      good,
      '{"q": "x", "a": ',
      good,
      '[1, 2]',
      'not json at all',
      '"a string"',
      '{"q": "' + 'z'.repeat(400) + '"',
    ];
    const { dir, file } = setup(lines);
    const skipped = await prepareDataset(cfg(file, dir, { onBadRow: 'skip' }), tok, { tokenizerFingerprint: FP });
    expect(skipped.train).toHaveLength(2);
    expect(skipped.stats.badRows.count).toBe(5);
    const summary = skipped.stats.badRows.summary().split('\n');
    expect(summary[0]).toBe('5 bad rows skipped, e.g.:');
    expect(summary.slice(1, 4).map((l) => /line (\d+): (not valid JSON|not a JSON object)/.exec(l)?.slice(1))).toEqual([
      ['2', 'not valid JSON'],
      ['4', 'not a JSON object'],
      ['5', 'not valid JSON'],
    ]);
    expect(summary[4]).toBe('  (2 more)');
    expect(Math.max(...summary.map((l) => l.length))).toBeLessThanOrEqual(162);
    const err = await prepareDataset(cfg(file, dir, { onBadRow: 'error' }), tok, { tokenizerFingerprint: FP }).catch(
      (e) => e,
    );
    expect([err.constructor.name, err.message]).toEqual([
      'DataError',
      expect.stringMatching(/^line 2: not valid JSON/),
    ]);
  });

  it('skips CSV records with the wrong number of fields under skip, and names them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'anneal-csv-'));
    const file = join(dir, 'rows.csv');
    writeFileSync(file, 'q,a\nx,y\nonly-one-field\nx,y,extra\nx,y\n');
    const skipped = await prepareDataset(cfg(file, dir, { onBadRow: 'skip' }), tok, { tokenizerFingerprint: FP });
    expect([skipped.train.length, skipped.stats.badRows.count]).toEqual([2, 2]);
    expect(skipped.stats.badRows.summary()).toMatch(/line 3: not a valid record/);
  });

  it('caches tokenized data: the second run reads it, a changed option or file does not', async () => {
    const { dir, file } = setup(ROWS.filter((_, i) => i !== 2));
    const first = await prepareDataset(cfg(file, dir, { onBadRow: 'truncate' }), tok, { tokenizerFingerprint: FP });
    const second = await prepareDataset(cfg(file, dir, { onBadRow: 'truncate' }), tok, { tokenizerFingerprint: FP });
    expect([first.stats.cached, second.stats.cached]).toEqual([false, true]);
    expect(second.train).toEqual(first.train);
    expect(second.stats.rows).toBe(3);
    expect(
      (await prepareDataset(cfg(file, dir, { onBadRow: 'truncate', maxLength: 9 }), tok, { tokenizerFingerprint: FP }))
        .stats.cached,
    ).toBe(false);
    expect(
      (await prepareDataset(cfg(file, dir, { onBadRow: 'truncate' }), tok, { tokenizerFingerprint: 'other' })).stats
        .cached,
    ).toBe(false);
    writeFileSync(file, ROWS[0] + '\n');
    expect(
      (await prepareDataset(cfg(file, dir, { onBadRow: 'truncate' }), tok, { tokenizerFingerprint: FP })).train,
    ).toHaveLength(1);
  });

  it('holds out a seeded eval fraction, the same every run', async () => {
    const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify({ text: `row ${i}` }));
    const { dir, file } = setup(lines);
    const c = DataConfigSchema.parse({
      train: file,
      format: 'text',
      maxLength: 32,
      evalFraction: 0.25,
      cacheDir: null,
    });
    const a = await prepareDataset(c, tok, { tokenizerFingerprint: FP, seed: 3 });
    const b = await prepareDataset(c, tok, { tokenizerFingerprint: FP, seed: 3 });
    expect([a.train.length, a.eval.length]).toEqual([30, 10]);
    expect(b.eval).toEqual(a.eval);
    void dir;
  });
});
