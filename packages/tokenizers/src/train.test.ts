// Training: hand-checked merges, special tokens, round trips, and trained tokenizers that
// save to files @huggingface/tokenizers loads to the same ids.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { Bpe, TrainTokenizerConfigSchema, loadTokenizerSync, trainByteLevelBpe, trainWordPiece } from './index.js';
import { conformanceCorpus } from './test-corpus.js';

const MOBY = readFileSync(new URL('../../../datasets/moby-dick/moby-dick.txt', import.meta.url), 'utf8');

describe('trainByteLevelBpe', () => {
  it('merges the most frequent pair first (hand-checked)', async () => {
    // Words: "ab" x1, "Ġab" x2, "abc" x1. Pair counts: (a,b)=4, (Ġ,a)=2, (b,c)=1 -> "a b";
    // then (Ġ,ab)=2, (ab,c)=1 -> "Ġ ab"; nothing else reaches minFrequency 2.
    const tok = await trainByteLevelBpe(['ab ab ab', 'abc'], { vocabSize: 300, minFrequency: 2 });
    expect((tok.model as Bpe).merges).toEqual([
      ['a', 'b'],
      ['Ġ', 'ab'],
    ]);
    expect(tok.vocabSize).toBe(258);
    expect(tok.encode('ab ab')).toEqual([tok.tokenToId('ab'), tok.tokenToId('Ġab')]);
  });

  it('breaks ties by the lowest pair of ids, as tokenizers does', async () => {
    // "ab" and "cd" both occur twice; (a,b) has the lower ids
    const tok = await trainByteLevelBpe(['ab cd', 'ab cd'], { vocabSize: 257 });
    expect((tok.model as Bpe).merges).toEqual([['a', 'b']]);
  });

  it('puts special tokens first and never splits them', async () => {
    const tok = await trainByteLevelBpe(['hello world'], { vocabSize: 270, specialTokens: ['<|endoftext|>'] });
    expect(tok.tokenToId('<|endoftext|>')).toBe(0);
    const ids = tok.encode('hi<|endoftext|>there');
    expect(ids).toContain(0);
    expect(tok.decode(ids)).toBe('hi<|endoftext|>there');
  });

  it('round-trips every corpus string, including bytes never seen in training', async () => {
    const tok = await trainByteLevelBpe(['the cat sat on the mat'], { vocabSize: 280 });
    for (const t of conformanceCorpus()) expect(tok.decode(tok.encode(t))).toBe(t);
  });

  it('saves files that load back, here and in @huggingface/tokenizers, to identical ids', async () => {
    const text = MOBY.slice(0, 50_000);
    const progress: string[] = [];
    const tok = await trainByteLevelBpe([text], {
      vocabSize: 600,
      specialTokens: ['<|endoftext|>'],
      eosToken: '<|endoftext|>',
      modelMaxLength: 128,
      onProgress: (p) => progress.push(p.phase),
    });
    expect(progress).toContain('count');
    const dir = mkdtempSync(join(tmpdir(), 'anneal-tok-'));
    tok.save(dir);
    const back = loadTokenizerSync(dir);
    expect(back.encode(text)).toEqual(tok.encode(text));
    expect(back.eosTokenId).toBe(0);
    const ref = new HfTokenizer(
      JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')),
      JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')),
    );
    for (const t of conformanceCorpus()) expect(ref.encode(t).ids, t).toEqual(tok.encode(t));
    const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    expect(cfg).toMatchObject({
      eos_token: '<|endoftext|>',
      model_max_length: 128,
      tokenizer_class: 'PreTrainedTokenizerFast',
    });
  });

  it('reads an async iterator of strings', async () => {
    async function* lines() {
      yield 'ab ab';
      yield 'ab';
    }
    const tok = await trainByteLevelBpe(lines(), { vocabSize: 257 });
    expect((tok.model as Bpe).merges).toEqual([['a', 'b']]);
  });
});

describe('trainWordPiece', () => {
  it('learns "##" continuations and encodes as a WordPiece tokenizer (checked by @huggingface/tokenizers)', async () => {
    const tok = await trainWordPiece([MOBY.slice(0, 100_000)], { vocabSize: 800, limitAlphabet: 100 });
    expect(tok.tokenToId('[UNK]')).toBe(1);
    expect([...tok.model.vocab.keys()].some((t) => t.startsWith('##'))).toBe(true);
    const ids = tok.encode('The whale, the WHALE!');
    expect(ids[0]).toBe(tok.clsTokenId);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('the whale, the whale!');
    const dir = mkdtempSync(join(tmpdir(), 'anneal-wp-'));
    tok.save(dir);
    const ref = new HfTokenizer(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), {});
    for (const t of ['Call me Ishmael.', 'Some years ago, never mind how long', 'Zebra-crossing 42'])
      expect(loadTokenizerSync(dir).encode(t), t).toEqual(ref.encode(t).ids);
  });
});

describe('TrainTokenizerConfigSchema', () => {
  const base = { files: ['a.txt'], vocabSize: 100, output: 'out' };
  it('the resolved options are the ones the saved tokenizer has: lowercase only for WordPiece (default true), refused for a BPE', () => {
    expect(TrainTokenizerConfigSchema.parse({ ...base, kind: 'byte-level-bpe' })).not.toHaveProperty('lowercase');
    expect(TrainTokenizerConfigSchema.parse({ ...base, kind: 'wordpiece' }).lowercase).toBe(true);
    expect(TrainTokenizerConfigSchema.parse({ ...base, kind: 'wordpiece', lowercase: false }).lowercase).toBe(false);
    const bad = TrainTokenizerConfigSchema.safeParse({ ...base, kind: 'byte-level-bpe', lowercase: true });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]).toMatchObject({
      path: ['lowercase'],
      message: expect.stringMatching(/wordpiece only/),
    });
  });
});
