// Rows from the files users have: JSONL, JSON arrays, CSV/TSV, plain text (files or
// folders), Parquet (hyparquet: pure JS, maintained, reads row group by row group from a
// file handle, so memory stays bounded; codecs beyond snappy through hyparquet-compressors)
// and Arrow IPC files and streams (apache-arrow; the .arrow files of a Hugging Face
// `datasets` cache are IPC streams). Every row carries where it came from, so a bad row is
// reported by file and line or row number.
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { RecordBatchReader } from 'apache-arrow';
import { parse as parseCsv } from 'csv-parse';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { DataError } from '@anneal/core';

export type Row = Record<string, unknown>;

export interface RowAt {
  file: string;
  /** 1-based line (JSONL, CSV, text by line). */
  line?: number;
  /** 0-based row index (JSON arrays, Parquet, Arrow, text files and paragraphs). */
  row?: number;
}

export interface SourceRow {
  row: Row;
  at: RowAt;
}

export type SourceFormat = 'jsonl' | 'json' | 'csv' | 'tsv' | 'text' | 'parquet' | 'arrow';

export interface SourceSpec {
  /** A file, or a folder (all its files with a known extension, in name order). */
  path: string;
  /** Default: from the extension. */
  format?: SourceFormat;
  /** Plain text: one row per file (default), per line, or per blank-line-separated paragraph. */
  textUnit?: 'file' | 'line' | 'paragraph';
}

const EXTENSIONS: Record<string, SourceFormat> = {
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.json': 'json',
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.txt': 'text',
  '.md': 'text',
  '.text': 'text',
  '.parquet': 'parquet',
  '.arrow': 'arrow',
  '.feather': 'arrow',
  '.ipc': 'arrow',
};

export function formatOf(file: string, explicit?: SourceFormat): SourceFormat {
  if (explicit) return explicit;
  const f = EXTENSIONS[extname(file).toLowerCase()];
  if (!f)
    throw new DataError(`cannot tell the format of ${extname(file) || 'a file without extension'}`, {
      file,
      hint: `use one of ${Object.keys(EXTENSIONS).join(' ')} or set format`,
    });
  return f;
}

/** The files of a source: the file itself, or a folder's files with known extensions. */
export function sourceFiles(spec: SourceSpec): string[] {
  if (!existsSync(spec.path))
    throw new DataError('dataset file or folder not found', {
      file: spec.path,
      hint: 'paths are relative to the current directory',
    });
  if (!statSync(spec.path).isDirectory()) return [spec.path];
  const files = readdirSync(spec.path)
    .filter((n) => !n.startsWith('.') && (spec.format || EXTENSIONS[extname(n).toLowerCase()]))
    .sort()
    .map((n) => join(spec.path, n))
    .filter((f) => statSync(f).isFile());
  if (!files.length) throw new DataError('no data files in this folder', { file: spec.path });
  return files;
}

/** Streams the rows of a source (memory bounded for JSONL, CSV/TSV, text lines, Parquet, Arrow). */
/**
 * Rows that cannot even be read as rows (a JSONL line that is not JSON or not an object, a
 * CSV record with the wrong number of fields, a JSON array item that is not an object):
 * without `onUnreadable` each is an error; with it, it is reported there and skipped.
 */
export type OnUnreadable = (reason: string, at: RowAt) => void;

export async function* readRows(spec: SourceSpec, onUnreadable?: OnUnreadable): AsyncGenerator<SourceRow> {
  for (const file of sourceFiles(spec)) {
    const format = formatOf(file, spec.format);
    if (format === 'jsonl') yield* readJsonl(file, onUnreadable);
    else if (format === 'json') yield* readJsonArray(file, onUnreadable);
    else if (format === 'csv' || format === 'tsv')
      yield* readDelimited(file, format === 'tsv' ? '\t' : ',', onUnreadable);
    else if (format === 'text') yield* readText(file, spec.textUnit ?? 'file');
    else if (format === 'parquet') yield* readParquet(file);
    else yield* readArrow(file);
  }
}

async function* readJsonl(file: string, onUnreadable?: OnUnreadable): AsyncGenerator<SourceRow> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  const unreadable = (reason: string) => {
    if (!onUnreadable)
      throw new DataError(`line ${n}: ${reason}`, {
        file,
        hint: 'JSONL has one JSON object per line; or set data.onBadRow: skip',
      });
    onUnreadable(reason, { file, line: n });
  };
  for await (const line of lines) {
    n++;
    if (!line.trim()) continue;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      unreadable(`not valid JSON: ${(e as Error).message}`);
      continue;
    }
    if (!row || typeof row !== 'object' || Array.isArray(row)) {
      unreadable('not a JSON object');
      continue;
    }
    yield { row: row as Row, at: { file, line: n } };
  }
}

async function* readJsonArray(file: string, onUnreadable?: OnUnreadable): AsyncGenerator<SourceRow> {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DataError(`not valid JSON: ${(e as Error).message}`, { file });
  }
  // A bare array, or {"data": [...]} / {"rows": [...]} as some exports write.
  const rows = Array.isArray(data)
    ? data
    : data && typeof data === 'object'
      ? ((data as Row).data ?? (data as Row).rows)
      : undefined;
  if (!Array.isArray(rows)) throw new DataError('expected a JSON array of objects (or {"data": [...]})', { file });
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    if (!row || typeof row !== 'object' || Array.isArray(row)) {
      if (!onUnreadable)
        throw new DataError(`row ${i} is not a JSON object`, { file, hint: 'or set data.onBadRow: skip' });
      onUnreadable('not a JSON object', { file, row: i });
      continue;
    }
    yield { row: row as Row, at: { file, row: i } };
  }
}

async function* readDelimited(file: string, delimiter: string, onUnreadable?: OnUnreadable): AsyncGenerator<SourceRow> {
  const parser = createReadStream(file).pipe(
    parseCsv({
      delimiter,
      columns: true,
      bom: true,
      relax_column_count: false,
      skip_empty_lines: true,
      info: true,
      skip_records_with_error: !!onUnreadable,
    }),
  );
  // csv-parse reports a record it skips (wrong number of fields, a broken quote) as an event.
  if (onUnreadable)
    parser.on('skip', (err: Error & { lines?: number }) =>
      onUnreadable(`not a valid record: ${err.message}`, { file, line: err.lines }),
    );
  try {
    for await (const rec of parser as AsyncIterable<{ record: Row; info: { lines: number } }>)
      yield { row: rec.record, at: { file, line: rec.info.lines } };
  } catch (e) {
    throw new DataError(`not valid ${delimiter === '\t' ? 'TSV' : 'CSV'}: ${(e as Error).message}`, { file });
  }
}

async function* readText(file: string, unit: 'file' | 'line' | 'paragraph'): AsyncGenerator<SourceRow> {
  if (unit === 'line') {
    const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
    let n = 0;
    for await (const line of lines) {
      n++;
      if (line.trim()) yield { row: { text: line }, at: { file, line: n } };
    }
    return;
  }
  const text = readFileSync(file, 'utf8');
  if (unit === 'file') {
    yield { row: { text }, at: { file, row: 0 } };
    return;
  }
  let i = 0;
  for (const p of text.split(/\r?\n\s*\r?\n/)) if (p.trim()) yield { row: { text: p.trim() }, at: { file, row: i++ } };
}

async function* readParquet(file: string): AsyncGenerator<SourceRow> {
  const buffer = await asyncBufferFromFile(file);
  let metadata;
  try {
    metadata = await parquetMetadataAsync(buffer);
  } catch (e) {
    throw new DataError(`not a readable Parquet file: ${(e as Error).message}`, { file });
  }
  // One row group at a time: memory holds a row group, not the file.
  let start = 0;
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows);
    const rows = await parquetReadObjects({
      file: buffer,
      metadata,
      rowStart: start,
      rowEnd: end,
      compressors,
      rowFormat: 'object',
    });
    for (let i = 0; i < rows.length; i++) yield { row: toPlain(rows[i]) as Row, at: { file, row: start + i } };
    start = end;
  }
}

async function* readArrow(file: string): AsyncGenerator<SourceRow> {
  let reader;
  try {
    reader = await RecordBatchReader.from(createReadStream(file));
  } catch (e) {
    throw new DataError(`not an Arrow IPC file or stream: ${(e as Error).message}`, { file });
  }
  let i = 0;
  // A file may hold several IPC streams back to back (autoDestroy: false keeps reading).
  for await (const batch of reader) {
    for (const r of batch) {
      if (r) yield { row: toPlain(r.toJSON()) as Row, at: { file, row: i } };
      i++;
    }
  }
}

/** Arrow/Parquet values as plain JS: BigInt to number, typed arrays and vectors to arrays. */
function toPlain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (v === null || typeof v !== 'object') return v;
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>, (x) => toPlain(x));
  if (Array.isArray(v)) return v.map(toPlain);
  const maybe = v as { toJSON?: () => unknown; toArray?: () => unknown };
  if (typeof maybe.toArray === 'function' && !(v instanceof Date))
    return toPlain(Array.from(maybe.toArray() as ArrayLike<unknown>));
  if (typeof maybe.toJSON === 'function' && !(v instanceof Date)) return toPlain(maybe.toJSON());
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toPlain(x)]));
}
