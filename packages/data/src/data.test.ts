import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError } from '@anneal/core';
import { ShuffledSampler, TokenBlocks, readTextFile, tokenizeAndSplit, unigramEntropy } from './index.js';

describe('ShuffledSampler', () => {
  it('visits every item once per epoch, in a new order each epoch', () => {
    const s = new ShuffledSampler(10, 7);
    const e0 = Array.from(s.next(10)).sort((a, b) => a - b);
    expect(e0).toEqual([...Array(10).keys()]);
    const s2 = new ShuffledSampler(10, 7);
    const first = Array.from(s2.next(10));
    const second = Array.from(s2.next(10));
    expect(second).not.toEqual(first);
    expect(s2.getState()).toEqual({ epoch: 1, position: 10 });
  });

  it('resumes from (epoch, position) with exactly the same batches', () => {
    const a = new ShuffledSampler(7, 3);
    const batches = Array.from({ length: 6 }, () => Array.from(a.next(3)));
    const b = new ShuffledSampler(7, 3);
    b.next(3);
    b.next(3);
    const resumed = new ShuffledSampler(7, 3, b.getState());
    expect(Array.from({ length: 4 }, () => Array.from(resumed.next(3)))).toEqual(batches.slice(2));
  });
});

describe('text corpora', () => {
  const tok = { encode: (t: string) => Array.from(t, (c) => c.charCodeAt(0)) };

  it('cuts blocks and holds out the tail for validation', () => {
    const { train, val } = tokenizeAndSplit('abcdefghijklmnopqrst', tok, { blockSize: 4, valFraction: 0.2 });
    expect(train.numBlocks).toBe(4);
    expect(Array.from(train.block(1))).toEqual(Array.from('efgh', (c) => c.charCodeAt(0)));
    expect(Array.from(val.block(0))).toEqual(Array.from('qrst', (c) => c.charCodeAt(0)));
    expect(Array.from(train.batch([3, 0]))).toEqual(Array.from('mnopabcd', (c) => c.charCodeAt(0)));
  });

  it('reports a block size larger than the data with the field to change', () => {
    expect(() => tokenizeAndSplit('abc', tok, { blockSize: 8, valFraction: 0 })).toThrow(DataError);
    try {
      tokenizeAndSplit('abc', tok, { blockSize: 8, valFraction: 0, file: 'x.txt' });
    } catch (e: any) {
      expect(e.field).toBe('data.blockSize');
      expect(e.file).toBe('x.txt');
    }
  });

  it('names a missing or empty file', () => {
    expect(() => readTextFile('/nonexistent/corpus.txt')).toThrow(/dataset file not found/);
    const f = join(mkdtempSync(join(tmpdir(), 'anneal-data-')), 'empty.txt');
    writeFileSync(f, '  \n');
    expect(() => readTextFile(f)).toThrow(/empty/);
  });

  it('computes unigram entropy (hand-checked)', () => {
    // p = {1/2, 1/4, 1/4}: H = 1.5 bits = 1.5 ln 2 nats.
    expect(unigramEntropy(Int32Array.from([0, 0, 1, 2]))).toBeCloseTo(1.5 * Math.LN2, 12);
    expect(new TokenBlocks(Int32Array.from([1, 2, 3]), 2).numBlocks).toBe(1);
  });
});
