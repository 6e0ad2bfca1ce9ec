// Components of the pipeline on small hand-made tokenizer.json files, checked against
// @huggingface/tokenizers (an independent implementation) and hand-derived values.
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { FormatError } from '@anneal/core';
import { fromTokenizerJson, readTokenizerConfig, type Tokenizer } from './index.js';
import { translateRegex } from './json.js';
import { conformanceCorpus } from './test-corpus.js';

const CONFIG = readTokenizerConfig('/nonexistent-dir');

/** A word-level-ish BPE vocabulary big enough for the texts below: every char + a few merges. */
function charVocab(extra: string[] = []): Record<string, number> {
  const chars = new Set<string>();
  for (const t of conformanceCorpus()) for (const c of t) chars.add(c);
  const all = ['<unk>', '[CLS]', '[SEP]', '<s>', '</s>', ...[...chars].sort(), ...extra];
  return Object.fromEntries([...new Set(all)].map((t, i) => [t, i]));
}

function both(json: object): [Tokenizer, HfTokenizer] {
  const full = {
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    added_tokens: [],
    ...json,
  };
  return [fromTokenizerJson(full, 'test.json', CONFIG), new HfTokenizer(full, {})];
}

const bpe = (extra: string[] = [], merges: string[] = []) => ({
  type: 'BPE',
  vocab: charVocab(extra),
  merges,
  unk_token: '<unk>',
  fuse_unk: false,
  byte_fallback: false,
});

describe('pre-tokenizers and normalizers agree with @huggingface/tokenizers', () => {
  const cases: Array<[string, object]> = [
    ['Whitespace', { pre_tokenizer: { type: 'Whitespace' } }],
    ['WhitespaceSplit', { pre_tokenizer: { type: 'WhitespaceSplit' } }],
    ['BertPreTokenizer', { pre_tokenizer: { type: 'BertPreTokenizer' } }],
    ['Digits (individual)', { pre_tokenizer: { type: 'Digits', individual_digits: true } }],
    ['Digits (contiguous)', { pre_tokenizer: { type: 'Digits', individual_digits: false } }],
    ['Punctuation', { pre_tokenizer: { type: 'Punctuation', behavior: 'Isolated' } }],
    [
      'Split Removed',
      { pre_tokenizer: { type: 'Split', pattern: { Regex: '\\s+' }, behavior: 'Removed', invert: false } },
    ],
    [
      'Split MergedWithPrevious',
      { pre_tokenizer: { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithPrevious', invert: false } },
    ],
    [
      'Split MergedWithNext',
      { pre_tokenizer: { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithNext', invert: false } },
    ],
    [
      'Split Contiguous',
      { pre_tokenizer: { type: 'Split', pattern: { Regex: '[aeiou]' }, behavior: 'Contiguous', invert: false } },
    ],
    [
      'Split inverted',
      { pre_tokenizer: { type: 'Split', pattern: { Regex: '\\p{L}+' }, behavior: 'Removed', invert: true } },
    ],
    [
      'Sequence of pre-tokenizers',
      {
        pre_tokenizer: {
          type: 'Sequence',
          pretokenizers: [
            { type: 'WhitespaceSplit' },
            { type: 'Digits', individual_digits: true },
            { type: 'Punctuation' },
          ],
        },
      },
    ],
    [
      'Lowercase + StripAccents after NFD',
      {
        normalizer: {
          type: 'Sequence',
          normalizers: [{ type: 'NFD' }, { type: 'StripAccents' }, { type: 'Lowercase' }],
        },
        pre_tokenizer: { type: 'WhitespaceSplit' },
      },
    ],
    ['NFKC', { normalizer: { type: 'NFKC' }, pre_tokenizer: { type: 'WhitespaceSplit' } }],
    [
      'BertNormalizer',
      {
        normalizer: {
          type: 'BertNormalizer',
          clean_text: true,
          handle_chinese_chars: true,
          strip_accents: null,
          lowercase: true,
        },
        pre_tokenizer: { type: 'BertPreTokenizer' },
      },
    ],
    [
      'Replace + Prepend (SentencePiece style)',
      {
        normalizer: {
          type: 'Sequence',
          normalizers: [
            { type: 'Prepend', prepend: '▁' },
            { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
          ],
        },
      },
    ],
    ['Strip', { normalizer: { type: 'Strip', strip_left: true, strip_right: true } }],
  ];
  it.each(cases)('%s', (_, parts) => {
    const json = {
      version: '1.0',
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      model: bpe(['▁']),
      ...parts,
    };
    const [ours, ref] = both(json);
    for (const text of conformanceCorpus()) {
      if (/[\u0300-\u036f]/.test(text) && (parts as { normalizer?: { type: string } }).normalizer?.type === 'NFKC')
        continue;
      expect(ours.encode(text), JSON.stringify(text)).toEqual(ref.encode(text).ids);
    }
  });

  it('Metaspace with prepend_scheme always and first', () => {
    for (const scheme of ['always', 'first', 'never']) {
      const json = {
        version: '1.0',
        added_tokens: [
          {
            id: 1,
            content: '[CLS]',
            special: true,
            normalized: false,
            lstrip: false,
            rstrip: false,
            single_word: false,
          },
        ],
        pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: scheme, split: true },
        model: bpe(['▁']),
      };
      const [ours, ref] = both(json);
      for (const text of ['Hello world', ' lead', 'a [CLS] b', 'x  y'])
        expect(ours.encode(text), `${scheme} ${text}`).toEqual(ref.encode(text).ids);
    }
  });
});

describe('Unigram (Viterbi) against hand-computed segmentations and @huggingface/tokenizers', () => {
  // log-probabilities: the best path maximizes the sum.
  const vocab: Array<[string, number]> = [
    ['<unk>', 0],
    ['▁', -2],
    ['a', -3],
    ['b', -3],
    ['ab', -2.5],
    ['abc', -7],
    ['c', -3],
    ['bc', -3.5],
    ['▁ab', -4],
    ['<0x41>', -5],
  ];
  const json = {
    version: '1.0',
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: 0, vocab, byte_fallback: false },
  };
  const [ours, ref] = both(json);

  it('picks the most likely segmentation', () => {
    // "▁abc": ▁ab + c = -4 - 3 = -7; ▁ + abc = -2 - 7 = -9; ▁ + ab + c = -2 - 2.5 - 3 = -7.5; ▁ + a + bc = -8.5
    expect(ours.encode('abc')).toEqual([8, 6]);
    // "▁bab": ▁ + b + ab = -2 - 3 - 2.5 = -7.5 beats ▁ + b + a + b = -11
    expect(ours.encode('bab')).toEqual([1, 3, 4]);
  });

  it('falls back to byte tokens for an unknown character when byte_fallback is set', () => {
    const fb = fromTokenizerJson({ ...json, model: { ...json.model, byte_fallback: true } }, 'test.json', CONFIG);
    // "A" is not a piece, but its byte <0x41> is; "x" has no byte token either: <unk>
    expect(fb.encode('aAb')).toEqual([1, 2, 9, 3]);
    expect(fb.encode('axb')).toEqual([1, 2, 0, 3]);
  });

  it('fuses unknown characters into one <unk>, and agrees with the reference', () => {
    expect(ours.encode('axyzb')).toEqual([1, 2, 0, 3]);
    for (const t of ['abc', 'bab', 'axyzb', 'ab ab c', 'cab bc', 'zz', ''])
      expect(ours.encode(t), t).toEqual(ref.encode(t).ids);
  });
});

describe('added tokens', () => {
  const added = (content: string, id: number, o: object = {}) => ({
    id,
    content,
    special: false,
    normalized: false,
    lstrip: false,
    rstrip: false,
    single_word: false,
    ...o,
  });
  const extra = ['<mask>', 'hi'];
  const base = { version: '1.0', pre_tokenizer: { type: 'WhitespaceSplit' }, model: bpe(extra) };
  const vocab = (base.model as { vocab: Record<string, number> }).vocab;

  it('lstrip/rstrip swallow the whitespace around the token (as @huggingface/tokenizers)', () => {
    const json = {
      ...base,
      added_tokens: [added('<mask>', vocab['<mask>'], { lstrip: true, rstrip: true, special: true })],
    };
    const [ours, ref] = both(json);
    for (const t of ['a <mask> b', 'a<mask>b', 'a   <mask>   b', '<mask>'])
      expect(ours.encode(t), t).toEqual(ref.encode(t).ids);
    expect(ours.encodeFull('a <mask> b').offsets[1]).toEqual([1, 9]); // ' <mask> ' with both spaces
  });

  it('a normalized added token is found in the normalized text (as @huggingface/tokenizers)', () => {
    const json = {
      ...base,
      normalizer: { type: 'Lowercase' },
      added_tokens: [added('hi', vocab.hi, { normalized: true })],
    };
    const [ours, ref] = both(json);
    for (const t of ['HI there', 'oh Hi', 'this']) expect(ours.encode(t), t).toEqual(ref.encode(t).ids);
    expect(ours.encode('HI')).toEqual([vocab.hi]);
  });

  it('single_word matches only a whole word (hand-checked; the JS reference ignores the flag)', () => {
    const json = { ...base, added_tokens: [added('hi', vocab.hi, { single_word: true })] };
    const ours = fromTokenizerJson(
      { normalizer: null, post_processor: null, decoder: null, ...json },
      'test.json',
      CONFIG,
    );
    const [h, i, t, s] = ['h', 'i', 't', 's'].map((c) => vocab[c]);
    expect(ours.encode('this hi')).toEqual([t, h, i, s, vocab.hi]);
    expect(ours.encode('hi, hiking')).toEqual([vocab.hi, vocab[','], h, i, vocab.k, i, vocab.n, vocab.g]);
  });

  it('Split invert with Isolated keeps the non-matches as their own words (hand-checked)', () => {
    const json = {
      normalizer: null,
      post_processor: null,
      decoder: null,
      added_tokens: [],
      pre_tokenizer: { type: 'Split', pattern: { String: ' ' }, behavior: 'Isolated', invert: true },
      model: bpe(['ab'], ['a b']),
    };
    const ours = fromTokenizerJson(json, 'test.json', CONFIG);
    const v = json.model.vocab;
    // pieces "ab", " ", "ab" (all kept); merges apply inside each piece
    expect(ours.encode('ab ab')).toEqual([v.ab, v[' '], v.ab]);
  });
});

describe('post-processors and batches', () => {
  const json = {
    version: '1.0',
    added_tokens: ['[CLS]', '[SEP]', '<unk>'].map((c) => ({
      id: charVocab()[c],
      content: c,
      special: true,
      normalized: false,
      lstrip: false,
      rstrip: false,
      single_word: false,
    })),
    normalizer: null,
    decoder: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    post_processor: {
      type: 'BertProcessing',
      sep: ['[SEP]', charVocab()['[SEP]']],
      cls: ['[CLS]', charVocab()['[CLS]']],
    },
    model: bpe(),
  };
  const tok = fromTokenizerJson(json, 'test.json', { ...CONFIG, padToken: '<unk>' });
  const ref = new HfTokenizer(json, {});
  const [CLS, SEP] = [charVocab()['[CLS]'], charVocab()['[SEP]']];

  it('adds [CLS] A [SEP] B [SEP] with type ids 0 then 1 (as the reference)', () => {
    const e = tok.encodeFull('ab c', 'd');
    expect(e.ids).toEqual(ref.encode('ab c', { text_pair: 'd' }).ids);
    expect(e.ids[0]).toBe(CLS);
    expect(e.typeIds).toEqual([0, 0, 0, 0, 0, 1, 1]);
    expect(e.specialTokensMask).toEqual([1, 0, 0, 0, 1, 0, 1]);
  });

  it('pads to the longest (right or left) and truncates longest-first, counting special tokens', () => {
    const b = tok.encodeBatch(['a b', 'abcd'], { padding: 'longest' });
    expect(b.inputIds[0].length).toBe(b.inputIds[1].length);
    expect(b.attentionMask).toEqual([
      [1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 1, 1],
    ]);
    const left = tok.encodeBatch(['a b', 'abcd'], { padding: 'longest', paddingSide: 'left' });
    expect(left.attentionMask![0]).toEqual([0, 0, 1, 1, 1, 1]);
    const t = tok.encodeBatch(['abcdef'], { pairs: ['xy'], truncation: true, maxLength: 7 });
    // 3 special tokens leave 4: longest first takes from A (6 -> 2) ... until 2 + 2
    expect(t.inputIds[0]).toEqual([
      CLS,
      ...tok.encode('ab', { addSpecialTokens: false }),
      SEP,
      ...tok.encode('xy', { addSpecialTokens: false }),
      SEP,
    ]);
    expect(() => tok.encodeBatch(['a'], { truncation: true })).toThrow(/model_max_length/);
  });
});

describe('RobertaProcessing and the BPE decoder', () => {
  it('adds <s> A </s></s> B </s> as @huggingface/tokenizers does', () => {
    const v = charVocab();
    const json = {
      added_tokens: ['<s>', '</s>'].map((c) => ({
        id: v[c],
        content: c,
        special: true,
        normalized: false,
        lstrip: false,
        rstrip: false,
        single_word: false,
      })),
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      post_processor: {
        type: 'RobertaProcessing',
        sep: ['</s>', v['</s>']],
        cls: ['<s>', v['<s>']],
        trim_offsets: true,
        add_prefix_space: true,
      },
      decoder: { type: 'BPEDecoder', suffix: '</w>' },
      model: { ...bpe(['Ġ', 'Ġa', 'Ġb'], ['Ġ a', 'Ġ b']), unk_token: '<unk>' },
    };
    const [ours, ref] = both(json);
    expect(ours.encode('a b')).toEqual(ref.encode('a b').ids);
    expect(ours.encodeFull('a b', 'b a').ids).toEqual(ref.encode('a b', { text_pair: 'b a' }).ids);
    expect(ours.encodeFull('a b').ids[0]).toBe(v['<s>']);
  });

  it('BPEDecoder turns the end-of-word suffix into spaces (hand-checked)', () => {
    const json = {
      model: { type: 'BPE', vocab: { hel: 0, 'lo</w>': 1, wor: 2, 'ld</w>': 3 }, merges: [] },
      decoder: { type: 'BPEDecoder', suffix: '</w>' },
    };
    const tok = fromTokenizerJson(json, 'test.json', CONFIG);
    expect(tok.decode([0, 1, 2, 3])).toBe('hello world');
  });
});

describe('errors and regex translation', () => {
  it('names the unsupported component, the file and the field', () => {
    const json = { version: '1.0', normalizer: { type: 'ByteLevel' }, model: bpe() };
    let err: unknown;
    try {
      fromTokenizerJson(json, '/x/tokenizer.json', CONFIG);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).message).toMatch(/normalizer "ByteLevel" is not supported/);
    expect((err as FormatError).file).toBe('/x/tokenizer.json');
    expect((err as FormatError).field).toBe('normalizer');
  });

  it('refuses ids that would encode to wrong ids: negative, fractional, 2^31, duplicate, clashing added tokens; merges of unknown tokens', () => {
    const described = (f: () => unknown) => {
      try {
        f();
        return 'loaded';
      } catch (e) {
        return e instanceof FormatError ? e.describe() : `not a named error: ${String(e)}`;
      }
    };
    const base = {
      version: '1.0',
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      added_tokens: [],
    };
    const load =
      (model: object, added: object[] = []) =>
      () =>
        fromTokenizerJson({ ...base, model, added_tokens: added }, '/x/tokenizer.json', CONFIG);
    const vocab = { '<unk>': 0, a: 1, b: 2, ab: 3 };
    const withId = (id: unknown) => load({ ...bpe(), vocab: { ...vocab, b: id }, merges: [] });
    expect(described(withId(-1))).toMatch(/model\.vocab\["b"\]: id -1 is not a token id/);
    expect(described(withId(1.5))).toMatch(/id 1\.5 is not a token id/);
    expect(described(withId(2 ** 31))).toMatch(/id 2147483648 is not a token id/);
    expect(described(withId('2'))).toMatch(/id "2" is not a token id/);
    expect(described(withId(1))).toMatch(/id 1 is given to both "a" and "b"/);
    expect(described(load({ ...bpe(), vocab, merges: ['a c'] }))).toMatch(
      /model\.merges\[0\].*"c", which is not in the vocabulary/,
    );
    const added = (id: unknown, content = '<pad>') => ({
      id,
      content,
      special: true,
      normalized: false,
      lstrip: false,
      rstrip: false,
      single_word: false,
    });
    expect(described(load({ ...bpe(), vocab, merges: [] }, [added(-3)]))).toMatch(
      /added_tokens\[0\]\.id: id -3 is not a token id/,
    );
    expect(described(load({ ...bpe(), vocab, merges: [] }, [added(4), added(4, '<eos>')]))).toMatch(
      /id 4 is given to both "<pad>" and "<eos>"/,
    );
    expect(described(load({ ...bpe(), vocab, merges: [] }, [added(2)]))).toMatch(
      /id 2 of added token "<pad>" is "b" in the model's vocabulary/,
    );
    expect(load({ ...bpe(), vocab, merges: [] }, [added(1, 'a')])).not.toThrow(); // an added token over its own vocabulary entry, as transformers writes them
    expect(
      described(
        load({
          type: 'Unigram',
          unk_id: 9,
          vocab: [
            ['<unk>', 0],
            ['a', -1],
          ],
        }),
      ),
    ).toMatch(/unk_id 9 is not the position of a piece/);
  });

  it('turns scoped case-insensitive groups and possessive quantifiers into JS', () => {
    expect(translateRegex("(?i:'s|'t)|\\p{L}+|\\p{N}{1,3}")).toBe("(?:'[sS]|'[tT])|\\p{L}+|\\p{N}{1,3}");
    expect(translateRegex(' ?\\p{L}++|a*+b?+')).toBe(' ?\\p{L}+|a*b?');
  });
});
