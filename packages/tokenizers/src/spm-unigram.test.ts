// T5's tokenizer from a SentencePiece Unigram model, against Google's SentencePiece itself:
// fixtures/spm-unigram/spiece.model was trained by sentencepiece 0.1.97 as T5's was (pad 0,
// eos 1, unk 2, the nmt_nfkc rule compiled into the model), and expected.json holds the ids
// SentencePiece gives each text (tools/tokenizers/make_spm_fixtures.py). Ours converts the
// model as transformers' T5Converter does and applies the precompiled charsmap as `tokenizers`
// does; @huggingface/tokenizers, given the same tokenizer.json, checks the rest of the pipeline.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { PrecompiledCharsmap, fromTokenizerJson, loadT5Spm, loadTokenizerSync, readSpmModel } from './index.js';
import { defaultConfig } from './load.js';
import { t5TokenizerJsonFromSpm } from './spm-model.js';
import { Normalized } from './normalized.js';

const DIR = fileURLToPath(new URL('../fixtures/spm-unigram/', import.meta.url));
const MODEL = join(DIR, 'spiece.model');
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as {
  vocab_size: number;
  cases: Array<{ text: string; ids: number[]; pieces: string[] }>;
};
// T5's special tokens written as text: the Hugging Face tokenizer matches them as added tokens
// (so does ours); SentencePiece reads them as characters
const writesSpecialTokens = (t: string) => /<\/s>|<unk>|<pad>/.test(t);

describe('T5 tokenizer from spiece.model against SentencePiece', () => {
  const tok = loadT5Spm(MODEL);

  it('reads the model: pieces, ids of pad/eos/unk, the precompiled charsmap; 100 sentinels after the pieces', () => {
    const m = readSpmModel(MODEL);
    expect(m.pieces).toHaveLength(expected.vocab_size);
    expect([m.pieces[0].piece, m.pieces[1].piece, m.pieces[2].piece]).toEqual(['<pad>', '</s>', '<unk>']);
    expect(m.trainer_spec.unk_id).toBe(2);
    expect(m.normalizer_spec.precompiled_charsmap.length).toBeGreaterThan(1000);
    expect(tok.vocabSize).toBe(expected.vocab_size + 100);
    // as T5TokenizerFast: <extra_id_0> is the last id, <extra_id_99> the first after the pieces
    expect(tok.tokenToId('<extra_id_0>')).toBe(expected.vocab_size + 99);
    expect(tok.tokenToId('<extra_id_99>')).toBe(expected.vocab_size);
    expect([tok.eosTokenId, tok.padTokenId]).toEqual([1, 0]);
  });

  it(`gives SentencePiece's ids, then </s>, on ${expected.cases.length} texts (all but those writing special tokens)`, () => {
    const cases = expected.cases.filter((c) => !writesSpecialTokens(c.text));
    expect(cases.length).toBeGreaterThan(450);
    for (const c of cases) expect(tok.encode(c.text), JSON.stringify(c.text)).toEqual([...c.ids, 1]);
  });

  it('matches sentinels and </s> written in text as the added tokens they are', () => {
    const ids = tok.encode('The <extra_id_0> walks in <extra_id_1> park');
    expect(ids.filter((i) => i >= expected.vocab_size)).toEqual([
      tok.tokenToId('<extra_id_0>'),
      tok.tokenToId('<extra_id_1>'),
    ]);
    expect(tok.encode('a</s>b').filter((i) => i === 1)).toHaveLength(2); // the written one and the appended one
  });

  it('decodes back to the normalized text', () => {
    for (const text of ['Call me Ishmael.', 'Ｆｕｌｌｗｉｄｔｈ ＡＢＣ', 'ﬁnal  two   spaces'])
      expect(tok.decode(tok.encode(text), { skipSpecialTokens: true })).toBe(
        text.normalize('NFKC').replace(/ {2,}/g, ' '),
      );
  });

  it('loads from a folder holding only spiece.model (as google/t5-v1_1-* repos), extra_ids from tokenizer_config.json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'anneal-spm-'));
    copyFileSync(MODEL, join(dir, 'spiece.model'));
    expect(loadTokenizerSync(dir).encode('Call me Ishmael.')).toEqual(tok.encode('Call me Ishmael.'));
    writeFileSync(
      join(dir, 'tokenizer_config.json'),
      JSON.stringify({ extra_ids: 10, tokenizer_class: 'T5Tokenizer' }),
    );
    expect(loadTokenizerSync(dir).vocabSize).toBe(expected.vocab_size + 10);
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ tokenizer_class: 'LlamaTokenizer' }));
    expect(() => loadTokenizerSync(dir)).toThrow(/tokenizer_class LlamaTokenizer: only T5's spiece.model/);
    writeFileSync(join(dir, 'spiece.model'), 'not a model');
    expect(() => loadT5Spm(join(dir, 'spiece.model'))).toThrow(/not a SentencePiece model|no pieces/);
  });

  it('agrees with @huggingface/tokenizers on the same tokenizer.json where its NFKC stands in for the charsmap', () => {
    const json = t5TokenizerJsonFromSpm(MODEL);
    const ours = fromTokenizerJson(json, 'tokenizer.json', defaultConfig());
    const ref = new HfTokenizer(json as never, {});
    // its Precompiled is String.normalize('NFKC') plus a few rules: compare where NFKC is the charsmap's answer
    const plain = expected.cases
      .map((c) => c.text)
      .filter((t) => t === t.normalize('NFKC') && /^[\x20-\x7e]*$/.test(t));
    expect(plain.length).toBeGreaterThan(250);
    for (const t of plain) expect(ours.encode(t), JSON.stringify(t)).toEqual(ref.encode(t).ids);
  });
});

describe('the precompiled charsmap', () => {
  const charsmap = readSpmModel(MODEL).normalizer_spec.precompiled_charsmap;
  const map = new PrecompiledCharsmap(charsmap, { file: 'spiece.model', field: 'precompiled_charsmap' });
  const norm = (s: string) => map.apply(Normalized.from(s, true));

  it("rewrites as nmt_nfkc does: NFKC forms, whitespace to ' ', control characters removed", () => {
    expect(norm('Ｆｕｌｌ ﬁ ① ½').text).toBe('Full fi 1 1⁄2');
    expect(norm('a\u00a0b\tc\u3000d').text).toBe('a b c d');
    expect(norm('x\u0001\u0002y\u007f').text).toBe('xy');
    expect(norm('plain ascii stays').text).toBe('plain ascii stays');
  });

  it('keeps each output unit aligned to the characters it came from', () => {
    const n = norm('aﬁb');
    expect(n.text).toBe('afib');
    expect([n.span(1, 3), n.span(3, 4)]).toEqual([
      [1, 2],
      [2, 3],
    ]);
  });

  it('refuses a charsmap whose header does not fit it, by name', () => {
    const where = { file: 'tokenizer.json', field: 'normalizer.precompiled_charsmap' };
    expect(() => new PrecompiledCharsmap(new Uint8Array([1, 2]), where)).toThrow(/too short for its header/);
    const lying = Uint8Array.from(charsmap);
    new DataView(lying.buffer).setUint32(0, charsmap.length * 2, true);
    expect(() => new PrecompiledCharsmap(lying, where)).toThrow(/trie size .* within the/);
    expect(() =>
      fromTokenizerJson(
        {
          model: { type: 'Unigram', unk_id: 0, vocab: [['<unk>', 0]] },
          normalizer: { type: 'Precompiled', precompiled_charsmap: '***' },
        },
        'tokenizer.json',
        defaultConfig(),
      ),
    ).toThrow(/not a base64 string/);
  });
});
