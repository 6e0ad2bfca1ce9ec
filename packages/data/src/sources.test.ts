// Every source format yields the same rows with the place each came from; Parquet and
// Arrow files are written here with hyparquet-writer and apache-arrow's own IPC writer.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { DataError } from '@anneal/core';
import { readRows, type SourceRow } from './index.js';

const ROWS = [
  { prompt: 'Say hi', completion: 'Hi!', score: 1 },
  { prompt: 'Count, then stop', completion: '1, 2, 3', score: -2 },
  { prompt: 'Quote "this"', completion: 'ok\nnext line', score: 7 },
];

async function all(it: AsyncIterable<SourceRow>): Promise<SourceRow[]> {
  const out: SourceRow[] = [];
  for await (const r of it) out.push(r);
  return out;
}

describe('readRows', () => {
  const dir = mkdtempSync(join(tmpdir(), 'anneal-src-'));
  const file = (name: string, data: string | Uint8Array) => (writeFileSync(join(dir, name), data), join(dir, name));

  it('reads JSONL (with its line numbers), JSON arrays and CSV/TSV', async () => {
    const jsonl = file('a.jsonl', ROWS.map((r) => JSON.stringify(r)).join('\n\n') + '\n');
    const got = await all(readRows({ path: jsonl }));
    expect(got.map((r) => r.row)).toEqual(ROWS);
    expect(got.map((r) => r.at.line)).toEqual([1, 3, 5]);
    expect((await all(readRows({ path: file('a.json', JSON.stringify(ROWS)) }))).map((r) => r.row)).toEqual(ROWS);
    const csv =
      'prompt,completion,score\n' +
      ROWS.map((r) =>
        [r.prompt, r.completion, r.score].map((v) => `"${String(v).replace(/"/g, '""')}"`).join(','),
      ).join('\n');
    const fromCsv = await all(readRows({ path: file('a.csv', csv) }));
    expect(fromCsv.map((r) => r.row)).toEqual(ROWS.map((r) => ({ ...r, score: String(r.score) }))); // CSV has no types
    expect(fromCsv[2].at.line).toBe(5); // the quoted newline makes row 3 span lines 4-5
    const tsv = 'prompt\tcompletion\nA\tB\n';
    expect((await all(readRows({ path: file('a.tsv', tsv) }))).map((r) => r.row)).toEqual([
      { prompt: 'A', completion: 'B' },
    ]);
  });

  it('reads Parquet row group by row group, and Arrow IPC streams and files', async () => {
    const columns = (['prompt', 'completion'] as const).map((name) => ({
      name,
      data: ROWS.map((r) => r[name]),
      type: 'STRING' as const,
    }));
    const pq = file(
      'a.parquet',
      new Uint8Array(
        parquetWriteBuffer({
          columnData: [...columns, { name: 'score', data: ROWS.map((r) => r.score), type: 'INT32' }],
          rowGroupSize: 2,
        }),
      ),
    );
    const got = await all(readRows({ path: pq }));
    expect(got.map((r) => r.row)).toEqual(ROWS);
    expect(got.map((r) => r.at.row)).toEqual([0, 1, 2]);
    const table = tableFromArrays({
      prompt: ROWS.map((r) => r.prompt),
      completion: ROWS.map((r) => r.completion),
      score: Int32Array.from(ROWS.map((r) => r.score)),
    });
    for (const kind of ['stream', 'file'] as const) {
      const arrow = file(`a-${kind}.arrow`, tableToIPC(table, kind));
      expect((await all(readRows({ path: arrow }))).map((r) => r.row)).toEqual(ROWS);
    }
  });

  it('reads text files and folders by file, line or paragraph', async () => {
    const sub = join(dir, 'texts');
    mkdirSync(sub);
    writeFileSync(join(sub, 'b.txt'), 'second file\n');
    writeFileSync(join(sub, 'a.txt'), 'para one\nstill one\n\npara two\n');
    expect((await all(readRows({ path: sub }))).map((r) => r.row.text)).toEqual([
      'para one\nstill one\n\npara two\n',
      'second file\n',
    ]);
    expect((await all(readRows({ path: sub, textUnit: 'paragraph' }))).map((r) => r.row.text)).toEqual([
      'para one\nstill one',
      'para two',
      'second file',
    ]);
    expect((await all(readRows({ path: sub, textUnit: 'line' }))).map((r) => [r.row.text, r.at.line])).toEqual([
      ['para one', 1],
      ['still one', 2],
      ['para two', 4],
      ['second file', 1],
    ]);
  });

  it('names the file and line of bad input', async () => {
    const bad = file('bad.jsonl', '{"a": 1}\n{"a": 2\n');
    await expect(all(readRows({ path: bad }))).rejects.toThrow(DataError);
    await expect(all(readRows({ path: bad }))).rejects.toThrow(/line 2: not valid JSON/);
    await expect(all(readRows({ path: file('x.parquet', 'not parquet') }))).rejects.toThrow(
      /not a readable Parquet file/,
    );
    await expect(all(readRows({ path: join(dir, 'missing.jsonl') }))).rejects.toThrow(/not found/);
    await expect(all(readRows({ path: file('x.bin', 'x') }))).rejects.toThrow(/cannot tell the format/);
  });
});
