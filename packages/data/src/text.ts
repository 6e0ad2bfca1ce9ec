// Plain-text corpora for causal language modelling: read a file, tokenize it once,
// cut the token stream into fixed-length blocks (as transformers' run_clm "group_texts"),
// and hold out the tail as a validation split.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { DataError } from '@anneal/core';

/** Anything that turns text into token ids (the tokenizers package provides one). */
export interface TextEncoder {
  encode(text: string): number[];
}

export function readTextFile(path: string, field = 'data.train'): string {
  if (!existsSync(path))
    throw new DataError('dataset file not found', {
      file: path,
      field,
      hint: 'paths are relative to the current directory',
    });
  if (!statSync(path).isFile()) throw new DataError('expected a text file, found a folder', { file: path, field });
  const text = readFileSync(path, 'utf8');
  if (text.trim() === '') throw new DataError('dataset file is empty', { file: path, field });
  return text;
}

/** Non-overlapping blocks of `blockSize` tokens over a token stream (the remainder is dropped). */
export class TokenBlocks {
  readonly numBlocks: number;

  constructor(
    readonly tokens: Int32Array,
    readonly blockSize: number,
  ) {
    this.numBlocks = Math.floor(tokens.length / blockSize);
  }

  block(i: number): Int32Array {
    if (i < 0 || i >= this.numBlocks) throw new RangeError(`block ${i} out of range [0, ${this.numBlocks})`);
    return this.tokens.subarray(i * this.blockSize, (i + 1) * this.blockSize);
  }

  /** Rows `indices` stacked into one [indices.length * blockSize] array. */
  batch(indices: ArrayLike<number>): Int32Array {
    const out = new Int32Array(indices.length * this.blockSize);
    for (let r = 0; r < indices.length; r++) out.set(this.block(indices[r]), r * this.blockSize);
    return out;
  }
}

export interface TextSplits {
  train: TokenBlocks;
  val: TokenBlocks;
}

/** Tokenizes `text` and splits the stream: the last `valFraction` of tokens is validation. */
export function tokenizeAndSplit(
  text: string,
  tok: TextEncoder,
  o: { blockSize: number; valFraction: number; file?: string },
): TextSplits {
  const tokens = Int32Array.from(tok.encode(text));
  const nVal = Math.floor(tokens.length * o.valFraction);
  const train = new TokenBlocks(tokens.subarray(0, tokens.length - nVal), o.blockSize);
  const val = new TokenBlocks(tokens.subarray(tokens.length - nVal), o.blockSize);
  if (train.numBlocks < 1) {
    throw new DataError(`${tokens.length - nVal} training tokens do not fill one block of ${o.blockSize}`, {
      file: o.file,
      field: 'data.blockSize',
      hint: 'use a smaller data.blockSize or a larger dataset',
    });
  }
  if (o.valFraction > 0 && val.numBlocks < 1) {
    throw new DataError(`${nVal} validation tokens do not fill one block of ${o.blockSize}`, {
      file: o.file,
      field: 'data.valFraction',
      hint: 'raise data.valFraction or lower data.blockSize',
    });
  }
  return { train, val };
}

/** Entropy (nats per token) of the unigram distribution of `tokens`: the loss of a model that ignores context. */
export function unigramEntropy(tokens: Int32Array): number {
  const counts = new Map<number, number>();
  for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
  let h = 0;
  for (const c of counts.values()) {
    const p = c / tokens.length;
    h -= p * Math.log(p);
  }
  return h;
}
