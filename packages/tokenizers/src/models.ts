// The three tokenization models of tokenizer.json: BPE (Sennrich et al. 2016; byte-level
// as in GPT-2/Llama-3, or SentencePiece-style with byte fallback as in Llama-2), WordPiece
// (BERT: greedy longest match) and Unigram (Kudo 2018: the most likely segmentation by
// Viterbi). Each turns one pre-tokenized word into tokens with offsets inside the word.
import { FormatError } from '@anneal/core';
import type { Json } from './json.js';
import { unsupported } from './json.js';

export interface Token {
  id: number;
  /** UTF-16 offsets inside the word. */
  start: number;
  end: number;
}

export interface Model {
  readonly type: 'BPE' | 'WordPiece' | 'Unigram';
  readonly vocab: Map<string, number>;
  tokenize(word: string): Token[];
  /** The model's part of tokenizer.json. */
  toJson(): Json;
}

const encoder = new TextEncoder();
const hex = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;

// ------------------------------------------------------------------------------- BPE

export interface BpeOptions {
  unkToken?: string | null;
  continuingSubwordPrefix?: string | null;
  endOfWordSuffix?: string | null;
  fuseUnk?: boolean;
  byteFallback?: boolean;
  ignoreMerges?: boolean;
}

/** A min-heap of candidate merges ordered by (rank, position), as in `tokenizers`. */
class MergeQueue {
  private rank: number[] = [];
  private pos: number[] = [];
  get size(): number {
    return this.rank.length;
  }
  private less(i: number, j: number): boolean {
    return this.rank[i] < this.rank[j] || (this.rank[i] === this.rank[j] && this.pos[i] < this.pos[j]);
  }
  private swap(i: number, j: number): void {
    [this.rank[i], this.rank[j]] = [this.rank[j], this.rank[i]];
    [this.pos[i], this.pos[j]] = [this.pos[j], this.pos[i]];
  }
  push(rank: number, pos: number): void {
    this.rank.push(rank);
    this.pos.push(pos);
    for (let i = this.rank.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  /** Pops the best candidate: [rank, pos]. */
  pop(): [number, number] {
    const top: [number, number] = [this.rank[0], this.pos[0]];
    const lastR = this.rank.pop()!;
    const lastP = this.pos.pop()!;
    if (this.rank.length) {
      this.rank[0] = lastR;
      this.pos[0] = lastP;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.rank.length && this.less(l, m)) m = l;
        if (r < this.rank.length && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

export class Bpe implements Model {
  readonly type = 'BPE' as const;
  readonly idToToken: string[] = [];
  /** (left id, right id) -> rank, and the id of the merged token. */
  private mergeRank = new Map<number, number>();
  private mergeId = new Map<number, number>();
  private stride: number;
  private cache = new Map<string, Token[]>();
  readonly o: Required<BpeOptions>;

  constructor(
    readonly vocab: Map<string, number>,
    readonly merges: Array<[string, string]>,
    o: BpeOptions = {},
    file = 'tokenizer.json',
  ) {
    this.o = {
      unkToken: o.unkToken ?? null,
      continuingSubwordPrefix: o.continuingSubwordPrefix ?? null,
      endOfWordSuffix: o.endOfWordSuffix ?? null,
      fuseUnk: o.fuseUnk ?? false,
      byteFallback: o.byteFallback ?? false,
      ignoreMerges: o.ignoreMerges ?? false,
    };
    let max = 0;
    for (const [tok, id] of vocab) {
      this.idToToken[id] = tok;
      if (id > max) max = id;
    }
    this.stride = max + 1;
    const prefixLen = this.o.continuingSubwordPrefix?.length ?? 0;
    merges.forEach(([a, b], rank) => {
      const ia = vocab.get(a);
      const ib = vocab.get(b);
      const merged = a + (prefixLen && b.startsWith(this.o.continuingSubwordPrefix!) ? b.slice(prefixLen) : b);
      const im = vocab.get(merged);
      if (ia === undefined || ib === undefined || im === undefined) {
        const missing = ia === undefined ? a : ib === undefined ? b : merged;
        throw new FormatError(
          `merge ${rank} ("${a} ${b}") uses ${JSON.stringify(missing)}, which is not in the vocabulary`,
          { file, field: `model.merges[${rank}]` },
        );
      }
      const key = ia * this.stride + ib;
      if (!this.mergeRank.has(key)) {
        this.mergeRank.set(key, rank);
        this.mergeId.set(key, im);
      }
    });
  }

  tokenize(word: string): Token[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const out = this.merge(word);
    if (this.cache.size >= 200_000) this.cache.clear();
    if (word.length < 256) this.cache.set(word, out);
    return out;
  }

  private merge(word: string): Token[] {
    const o = this.o;
    if (o.ignoreMerges) {
      const id = this.vocab.get(word);
      if (id !== undefined) return [{ id, start: 0, end: word.length }];
    }
    // Initial symbols: one per character (or its bytes, or unk).
    const ids: number[] = [];
    const starts: number[] = [];
    const ends: number[] = [];
    const unkId = o.unkToken !== null ? this.vocab.get(o.unkToken) : undefined;
    let lastWasUnk = false;
    let i = 0;
    const chars = Array.from(word);
    chars.forEach((ch, k) => {
      let s = ch;
      if (k > 0 && o.continuingSubwordPrefix) s = o.continuingSubwordPrefix + s;
      if (k === chars.length - 1 && o.endOfWordSuffix) s += o.endOfWordSuffix;
      const start = i;
      i += ch.length;
      const id = this.vocab.get(s);
      if (id !== undefined) {
        ids.push(id);
        starts.push(start);
        ends.push(i);
        lastWasUnk = false;
        return;
      }
      if (o.byteFallback) {
        const bytes = Array.from(encoder.encode(ch), (b) => this.vocab.get(hex(b)));
        if (bytes.every((b) => b !== undefined)) {
          for (const b of bytes) {
            ids.push(b!);
            starts.push(start);
            ends.push(i);
          }
          lastWasUnk = false;
          return;
        }
      }
      if (unkId === undefined) return; // no unk token: the character is dropped, as in `tokenizers`
      if (o.fuseUnk && lastWasUnk) ends[ends.length - 1] = i;
      else {
        ids.push(unkId);
        starts.push(start);
        ends.push(i);
      }
      lastWasUnk = true;
    });
    const n = ids.length;
    if (n < 2) return ids.map((id, k) => ({ id, start: starts[k], end: ends[k] }));

    // Merge the lowest-ranked adjacent pair first; a linked list over the symbols.
    const next = Int32Array.from({ length: n }, (_, k) => (k + 1 < n ? k + 1 : -1));
    const prev = Int32Array.from({ length: n }, (_, k) => k - 1);
    const alive = new Uint8Array(n).fill(1);
    const queue = new MergeQueue();
    const stride = this.stride;
    for (let k = 0; k + 1 < n; k++) {
      const r = this.mergeRank.get(ids[k] * stride + ids[k + 1]);
      if (r !== undefined) queue.push(r, k);
    }
    while (queue.size) {
      const [rank, pos] = queue.pop();
      if (!alive[pos]) continue;
      const right = next[pos];
      if (right < 0) continue;
      const key = ids[pos] * stride + ids[right];
      if (this.mergeRank.get(key) !== rank) continue; // stale candidate
      ids[pos] = this.mergeId.get(key)!;
      ends[pos] = ends[right];
      alive[right] = 0;
      next[pos] = next[right];
      if (next[right] >= 0) prev[next[right]] = pos;
      if (prev[pos] >= 0) {
        const r = this.mergeRank.get(ids[prev[pos]] * stride + ids[pos]);
        if (r !== undefined) queue.push(r, prev[pos]);
      }
      if (next[pos] >= 0) {
        const r = this.mergeRank.get(ids[pos] * stride + ids[next[pos]]);
        if (r !== undefined) queue.push(r, pos);
      }
    }
    const out: Token[] = [];
    for (let k = 0; k >= 0; k = next[k]) out.push({ id: ids[k], start: starts[k], end: ends[k] });
    return out;
  }

  toJson(): Json {
    return {
      type: 'BPE',
      dropout: null,
      unk_token: this.o.unkToken,
      continuing_subword_prefix: this.o.continuingSubwordPrefix,
      end_of_word_suffix: this.o.endOfWordSuffix,
      fuse_unk: this.o.fuseUnk,
      byte_fallback: this.o.byteFallback,
      ignore_merges: this.o.ignoreMerges,
      vocab: Object.fromEntries([...this.vocab].sort((a, b) => a[1] - b[1])),
      merges: this.merges.map(([a, b]) => [a, b]),
    };
  }
}

// ------------------------------------------------------------------------- WordPiece

export class WordPiece implements Model {
  readonly type = 'WordPiece' as const;
  constructor(
    readonly vocab: Map<string, number>,
    readonly unkToken = '[UNK]',
    readonly prefix = '##',
    readonly maxInputCharsPerWord = 100,
  ) {}

  tokenize(word: string): Token[] {
    const unk = (): Token[] => {
      const id = this.vocab.get(this.unkToken);
      if (id === undefined)
        throw new FormatError(`the unknown token ${JSON.stringify(this.unkToken)} is not in the WordPiece vocabulary`);
      return [{ id, start: 0, end: word.length }];
    };
    const chars = Array.from(word);
    if (chars.length > this.maxInputCharsPerWord) return unk();
    // UTF-16 offset of each character boundary
    const at = [0];
    for (const c of chars) at.push(at[at.length - 1] + c.length);
    const out: Token[] = [];
    let s = 0;
    while (s < chars.length) {
      let e = chars.length;
      let found: number | undefined;
      while (e > s) {
        const sub = (s > 0 ? this.prefix : '') + word.slice(at[s], at[e]);
        found = this.vocab.get(sub);
        if (found !== undefined) break;
        e--;
      }
      if (found === undefined) return unk();
      out.push({ id: found, start: at[s], end: at[e] });
      s = e;
    }
    return out;
  }

  toJson(): Json {
    return {
      type: 'WordPiece',
      unk_token: this.unkToken,
      continuing_subword_prefix: this.prefix,
      max_input_chars_per_word: this.maxInputCharsPerWord,
      vocab: Object.fromEntries([...this.vocab].sort((a, b) => a[1] - b[1])),
    };
  }
}

// --------------------------------------------------------------------------- Unigram

const UNK_PENALTY = 10;

export class Unigram implements Model {
  readonly type = 'Unigram' as const;
  readonly vocab = new Map<string, number>();
  private scores: number[];
  private maxLen = 0;
  private minScore = Infinity;

  constructor(
    readonly pieces: Array<[string, number]>,
    readonly unkId: number | null,
    readonly byteFallback = false,
  ) {
    this.scores = pieces.map(([, s]) => s);
    pieces.forEach(([p, s], id) => {
      if (!this.vocab.has(p)) this.vocab.set(p, id);
      this.maxLen = Math.max(this.maxLen, p.length);
      if (s < this.minScore) this.minScore = s;
    });
  }

  tokenize(word: string): Token[] {
    if (!word) return [];
    // Viterbi over character boundaries (UTF-16 indices of code point starts).
    const bounds: number[] = [];
    for (let i = 0; i < word.length;) {
      bounds.push(i);
      i += word.codePointAt(i)! > 0xffff ? 2 : 1;
    }
    bounds.push(word.length);
    const isBound = new Uint8Array(word.length + 1);
    for (const b of bounds) isBound[b] = 1;
    const best = new Float64Array(word.length + 1).fill(-Infinity);
    const from = new Int32Array(word.length + 1).fill(-1);
    const via = new Int32Array(word.length + 1).fill(-1);
    best[0] = 0;
    const unkScore = this.minScore - UNK_PENALTY;
    for (let k = 0; k + 1 < bounds.length; k++) {
      const s = bounds[k];
      if (best[s] === -Infinity) continue;
      let single = false;
      for (let e = s + 1; e <= Math.min(word.length, s + this.maxLen); e++) {
        if (!isBound[e]) continue;
        const id = this.vocab.get(word.slice(s, e));
        if (id === undefined) continue;
        if (e === bounds[k + 1]) single = true;
        const sc = best[s] + this.scores[id];
        if (sc > best[e]) {
          best[e] = sc;
          from[e] = s;
          via[e] = id;
        }
      }
      if (!single) {
        const e = bounds[k + 1];
        const sc = best[s] + unkScore;
        if (sc > best[e]) {
          best[e] = sc;
          from[e] = s;
          via[e] = -1; // unknown
        }
      }
    }
    const rev: Token[] = [];
    for (let e = word.length; e > 0; e = from[e]) rev.push({ id: via[e], start: from[e], end: e });
    rev.reverse();
    // Consecutive unknown characters fuse into one unk token; byte fallback splits them into bytes.
    const out: Token[] = [];
    for (const t of rev) {
      if (t.id >= 0) {
        out.push(t);
        continue;
      }
      if (this.byteFallback) {
        const bytes = Array.from(encoder.encode(word.slice(t.start, t.end)), (b) => this.vocab.get(hex(b)));
        if (bytes.every((b) => b !== undefined)) {
          for (const b of bytes) out.push({ id: b!, start: t.start, end: t.end });
          continue;
        }
      }
      if (this.unkId === null)
        throw new FormatError(`"${word.slice(t.start, t.end)}" cannot be tokenized: the Unigram model has no unk_id`);
      const last = out[out.length - 1];
      if (last && last.id === this.unkId && last.end === t.start) last.end = t.end;
      else out.push({ id: this.unkId, start: t.start, end: t.end });
    }
    return out;
  }

  toJson(): Json {
    return { type: 'Unigram', unk_id: this.unkId, vocab: this.pieces, byte_fallback: this.byteFallback };
  }
}

// -------------------------------------------------------------------------- builder

function parseMerges(raw: unknown, file: string): Array<[string, string]> {
  if (!Array.isArray(raw)) throw new FormatError('expected a list of merges', { file, field: 'model.merges' });
  return raw.map((m, i) => {
    // tokenizers < 0.20 writes "a b"; newer versions write ["a", "b"].
    if (typeof m === 'string') {
      const sp = m.indexOf(' ', 1);
      if (sp <= 0)
        throw new FormatError(`merge ${JSON.stringify(m)} is not "left right"`, { file, field: `model.merges[${i}]` });
      return [m.slice(0, sp), m.slice(sp + 1)] as [string, string];
    }
    if (Array.isArray(m) && m.length === 2 && m.every((x) => typeof x === 'string')) return m as [string, string];
    throw new FormatError(`merge ${JSON.stringify(m)} is neither "a b" nor ["a", "b"]`, {
      file,
      field: `model.merges[${i}]`,
    });
  });
}

/** Largest id a tokenizer may hold: ids index embedding rows (int32 on every backend). */
export const MAX_TOKEN_ID = 2 ** 31 - 2;

/** Is `id` usable as a token id (an integer in [0, 2^31 - 2])? */
export const isTokenId = (id: unknown): id is number =>
  Number.isInteger(id) && (id as number) >= 0 && (id as number) <= MAX_TOKEN_ID;

/** token -> id, every id a non-negative integer and no id given to two tokens. */
function vocabMap(raw: unknown, file: string): Map<string, number> {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new FormatError('expected an object of token -> id', { file, field: 'model.vocab' });
  const vocab = new Map<string, number>();
  const owner = new Map<number, string>();
  for (const [tok, id] of Object.entries(raw as Record<string, unknown>)) {
    const field = `model.vocab[${JSON.stringify(tok)}]`;
    if (!isTokenId(id))
      throw new FormatError(`id ${JSON.stringify(id)} is not a token id (an integer from 0 to ${MAX_TOKEN_ID})`, {
        file,
        field,
        hint: 'the file was edited or written by another tool',
      });
    const other = owner.get(id);
    if (other !== undefined)
      throw new FormatError(`id ${id} is given to both ${JSON.stringify(other)} and ${JSON.stringify(tok)}`, {
        file,
        field,
        hint: 'every token needs its own id, or decoding is ambiguous',
      });
    owner.set(id, tok);
    vocab.set(tok, id);
  }
  return vocab;
}

/** Unigram's [piece, score] list (the id is the position). */
function unigramPieces(raw: unknown[], unkId: unknown, file: string): Array<[string, number]> {
  raw.forEach((e, i) => {
    if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'number' || !Number.isFinite(e[1]))
      throw new FormatError(`expected [piece, score], got ${JSON.stringify(e)}`, { file, field: `model.vocab[${i}]` });
  });
  if (unkId !== null && unkId !== undefined && !(isTokenId(unkId) && unkId < raw.length))
    throw new FormatError(`unk_id ${JSON.stringify(unkId)} is not the position of a piece (0 to ${raw.length - 1})`, {
      file,
      field: 'model.unk_id',
    });
  return raw as Array<[string, number]>;
}

export function buildModel(j: Json, file: string): Model {
  if (!j) throw new FormatError('no model', { file, field: 'model' });
  const type =
    j.type ??
    (j.merges
      ? 'BPE'
      : j.continuing_subword_prefix !== undefined
        ? 'WordPiece'
        : Array.isArray(j.vocab)
          ? 'Unigram'
          : undefined);
  switch (type) {
    case 'BPE':
      if (j.dropout)
        throw new FormatError(`BPE dropout ${j.dropout} is not supported (it randomizes encoding)`, {
          file,
          field: 'model.dropout',
          hint: 'set it to null',
        });
      return new Bpe(
        vocabMap(j.vocab, file),
        parseMerges(j.merges, file),
        {
          unkToken: j.unk_token,
          continuingSubwordPrefix: j.continuing_subword_prefix || null,
          endOfWordSuffix: j.end_of_word_suffix || null,
          fuseUnk: j.fuse_unk,
          byteFallback: j.byte_fallback,
          ignoreMerges: j.ignore_merges,
        },
        file,
      );
    case 'WordPiece':
      return new WordPiece(
        vocabMap(j.vocab, file),
        j.unk_token ?? '[UNK]',
        j.continuing_subword_prefix ?? '##',
        j.max_input_chars_per_word ?? 100,
      );
    case 'Unigram':
      if (!Array.isArray(j.vocab))
        throw new FormatError('expected a list of [piece, score]', { file, field: 'model.vocab' });
      return new Unigram(unigramPieces(j.vocab, j.unk_id, file), j.unk_id ?? null, j.byte_fallback === true);
    default:
      throw unsupported('model', j.type, file, 'model.type');
  }
}
