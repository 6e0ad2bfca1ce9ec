// Task formats, as TRL names them: rows become typed examples through a column mapping
// from the config. A row that does not fit (missing field, wrong type, empty text) is a
// BadRow naming the file, the line or row, and the field; what happens to it is
// on_bad_row's choice (error, skip, or for over-long sequences truncate), counted, never silent.
import { DataError } from '@anneal/core';
import type { Row, RowAt } from './sources.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export type Example =
  | { kind: 'text'; text: string }
  | { kind: 'prompt-completion'; prompt: string; completion: string }
  | { kind: 'conversational'; messages: ChatMessage[] }
  | {
      kind: 'preference';
      prompt: string | ChatMessage[];
      chosen: string | ChatMessage[];
      rejected: string | ChatMessage[];
      margin?: number;
    }
  | { kind: 'classification'; text: string; label: number }
  /** KTO's unpaired data: one completion, labelled desirable (true) or undesirable (false). */
  | { kind: 'unpaired-preference'; prompt: string | ChatMessage[]; completion: string | ChatMessage[]; label: boolean };

export type TaskFormat = Example['kind'];

/** Where each field is in the rows (default: the field's own name). */
export interface ColumnMap {
  text?: string;
  prompt?: string;
  completion?: string;
  messages?: string;
  chosen?: string;
  rejected?: string;
  label?: string;
  /** preference: a per-pair reward margin (read only when given). */
  margin?: string;
}

export type OnBadRow = 'error' | 'skip' | 'truncate';

/** A row that cannot be used, with where and why. */
export class BadRow extends DataError {
  constructor(
    readonly reason: string,
    readonly at: RowAt,
    field: string,
  ) {
    super(`${at.line !== undefined ? `line ${at.line}` : `row ${at.row}`}: ${reason}`, {
      file: at.file,
      field,
      hint: 'fix the row, or set data.onBadRow: skip (skipped rows are counted and shown)',
    });
  }
}

/** Counts the rows skipped and keeps the first few, for the run log. */
export class BadRowLog {
  count = 0;
  readonly first: BadRow[] = [];
  /** Descriptions of the first bad rows of a run whose result came from the cache. */
  readonly restored: string[] = [];
  constructor(readonly keep = 5) {}
  add(b: BadRow): void {
    this.count++;
    if (this.first.length < this.keep) this.first.push(b);
  }
  /** "file: line N: reason (field)" for the first bad rows. */
  lines(): string[] {
    return [...this.restored, ...this.first.map((b) => `${b.file}: ${b.message} (${b.field})`)].slice(0, this.keep);
  }
  /** A short line, then at most 3 examples, each on its own line. */
  summary(): string {
    if (!this.count) return 'no bad rows';
    const shown = this.lines()
      .slice(0, 3)
      .map((l) => `  ${l.length > 160 ? l.slice(0, 157) + '...' : l}`);
    const more = this.count > shown.length ? `\n  (${this.count - shown.length} more)` : '';
    return `${this.count} bad row${this.count > 1 ? 's' : ''} skipped, e.g.:\n${shown.join('\n')}${more}`;
  }
}

function text(row: Row, col: string, at: RowAt): string {
  const v = row[col];
  if (v === undefined || v === null) throw new BadRow(`missing field "${col}"`, at, col);
  if (typeof v !== 'string')
    throw new BadRow(`field "${col}" should be text, got ${Array.isArray(v) ? 'a list' : typeof v}`, at, col);
  if (!v.trim()) throw new BadRow(`field "${col}" is empty`, at, col);
  return v;
}

function messages(row: Row, col: string, at: RowAt): ChatMessage[] {
  const v = row[col];
  if (v === undefined || v === null) throw new BadRow(`missing field "${col}"`, at, col);
  if (!Array.isArray(v) || !v.length)
    throw new BadRow(`field "${col}" should be a non-empty list of {role, content}`, at, col);
  return v.map((m, i) => {
    if (
      !m ||
      typeof m !== 'object' ||
      typeof (m as ChatMessage).role !== 'string' ||
      typeof (m as ChatMessage).content !== 'string'
    ) {
      throw new BadRow(`${col}[${i}] should be {role, content} with text values`, at, `${col}[${i}]`);
    }
    return { ...(m as ChatMessage) };
  });
}

const textOrMessages = (row: Row, col: string, at: RowAt) =>
  Array.isArray(row[col]) ? messages(row, col, at) : text(row, col, at);

/**
 * The prompt that chosen and rejected share when a preference row has none (TRL's
 * extract_prompt): the common leading messages of two conversations, or the common
 * leading text of two strings up to the last whitespace.
 */
export function splitSharedPrompt(
  chosen: string | ChatMessage[],
  rejected: string | ChatMessage[],
): { prompt: string | ChatMessage[]; chosen: string | ChatMessage[]; rejected: string | ChatMessage[] } {
  if (Array.isArray(chosen) && Array.isArray(rejected)) {
    let i = 0;
    while (
      i < chosen.length - 1 &&
      i < rejected.length - 1 &&
      chosen[i].role === rejected[i].role &&
      chosen[i].content === rejected[i].content
    )
      i++;
    return { prompt: chosen.slice(0, i), chosen: chosen.slice(i), rejected: rejected.slice(i) };
  }
  if (typeof chosen === 'string' && typeof rejected === 'string') {
    let i = 0;
    while (i < chosen.length && i < rejected.length && chosen[i] === rejected[i]) i++;
    // cut at a word boundary so the responses start with whole words
    const cut = chosen.slice(0, i).search(/\s\S*$/);
    const k = i === chosen.length || i === rejected.length ? i : cut >= 0 ? cut + 1 : 0;
    return { prompt: chosen.slice(0, k), chosen: chosen.slice(k), rejected: rejected.slice(k) };
  }
  throw new DataError('chosen and rejected must both be text or both be conversations');
}

/** A row as an example of the given format; throws BadRow when it does not fit. */
export function toExample(
  row: Row,
  at: RowAt,
  format: TaskFormat,
  cols: ColumnMap = {},
  labelNames?: string[],
): Example {
  const c = (k: keyof ColumnMap) => cols[k] ?? k;
  switch (format) {
    case 'text':
      return { kind: 'text', text: text(row, c('text'), at) };
    case 'prompt-completion':
      return {
        kind: 'prompt-completion',
        prompt: text(row, c('prompt'), at),
        completion: text(row, c('completion'), at),
      };
    case 'conversational':
      return { kind: 'conversational', messages: messages(row, c('messages'), at) };
    case 'preference': {
      const chosen = textOrMessages(row, c('chosen'), at);
      const rejected = textOrMessages(row, c('rejected'), at);
      if (Array.isArray(chosen) !== Array.isArray(rejected))
        throw new BadRow('chosen and rejected must both be text or both be conversations', at, c('rejected'));
      const hasPrompt = row[c('prompt')] !== undefined && row[c('prompt')] !== null;
      // An optional per-pair margin (TRL's reward `margin` column): read only when mapped.
      const m = cols.margin === undefined ? undefined : row[cols.margin];
      if (cols.margin !== undefined && (typeof m !== 'number' || !Number.isFinite(m)))
        throw new BadRow(
          `field "${cols.margin}" should be a finite number (the pair's reward margin), got ${JSON.stringify(m)}`,
          at,
          cols.margin,
        );
      const margin = m === undefined ? {} : { margin: m as number };
      if (!hasPrompt) return { kind: 'preference', ...splitSharedPrompt(chosen, rejected), ...margin };
      return { kind: 'preference', prompt: textOrMessages(row, c('prompt'), at), chosen, rejected, ...margin };
    }
    case 'unpaired-preference': {
      const prompt = textOrMessages(row, c('prompt'), at);
      const completion = textOrMessages(row, c('completion'), at);
      if (Array.isArray(prompt) !== Array.isArray(completion))
        throw new BadRow('prompt and completion must both be text or both be conversations', at, c('completion'));
      const v = row[c('label')];
      // a JSON boolean, or what a CSV holds for one
      const label =
        v === true || v === 'true' || v === 1 || v === '1'
          ? true
          : v === false || v === 'false' || v === 0 || v === '0'
            ? false
            : undefined;
      if (label === undefined)
        throw new BadRow(
          `field "${c('label')}" should be true (desirable) or false (undesirable), got ${JSON.stringify(v)}`,
          at,
          c('label'),
        );
      return { kind: 'unpaired-preference', prompt, completion, label };
    }
    case 'classification': {
      const t = text(row, c('text'), at);
      const v = row[c('label')];
      let label: number;
      if (typeof v === 'number' && Number.isInteger(v)) label = v;
      else if (typeof v === 'string' && labelNames?.includes(v)) label = labelNames.indexOf(v);
      else if (typeof v === 'string' && /^-?\d+$/.test(v))
        label = Number(v); // CSV
      else
        throw new BadRow(
          `field "${c('label')}" should be a class index${labelNames ? ` or one of ${labelNames.join(', ')}` : ''}, got ${JSON.stringify(v)}`,
          at,
          c('label'),
        );
      if (label < 0 || (labelNames && label >= labelNames.length))
        throw new BadRow(`label ${label} is outside 0..${(labelNames?.length ?? 1) - 1}`, at, c('label'));
      return { kind: 'classification', text: t, label };
    }
    default:
      throw new DataError(`unknown task format ${JSON.stringify(format)}`, { field: 'data.format' });
  }
}
