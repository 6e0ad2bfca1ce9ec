// Tokenizing formats, packing and collating, on a character-level tokenizer so every
// expected id can be read off the text by hand.
import { describe, expect, it } from 'vitest';
import { Rng, deriveSeed } from '@anneal/core';
import {
  BadRow,
  IGNORE,
  TooLong,
  collateCausal,
  collateMlm,
  collatePreference,
  packBestFit,
  packGreedy,
  splitSharedPrompt,
  toExample,
  tokenizeExample,
  type ChatMessage,
  type DataTokenizer,
} from './index.js';

const EOS = 1;
const BOS = 2;
// ids: characters by code point; BOS is added by encode() unless addSpecialTokens is false.
const tok: DataTokenizer = {
  encode: (t, o) => [...(o?.addSpecialTokens === false ? [] : [BOS]), ...Array.from(t, (c) => c.codePointAt(0)!)],
  encodeChat: (msgs: ChatMessage[]) => {
    const ids: number[] = [];
    const mask: number[] = [];
    for (const m of msgs) {
      const part = Array.from(`<${m.role}>${m.content}`, (c) => c.codePointAt(0)!).concat(EOS);
      ids.push(...part);
      mask.push(...part.map(() => (m.role === 'assistant' ? 1 : 0)));
    }
    return { ids, assistantMask: mask };
  },
  applyChatTemplate: (msgs: ChatMessage[], o) => [
    ...tok.encodeChat(msgs).ids,
    ...(o.addGenerationPrompt ? Array.from('<assistant>', (c) => c.codePointAt(0)!) : []),
  ],
  eosTokenId: EOS,
};
const ids = (s: string) => Array.from(s, (c) => c.codePointAt(0)!);
const at = { file: 'data.jsonl', line: 7 };

describe('formats and tokenization', () => {
  it('masks the prompt of a prompt-completion pair and appends EOS', () => {
    const t = tokenizeExample(toExample({ prompt: 'ab', completion: 'cd' }, at, 'prompt-completion'), tok);
    expect(t.kind).toBe('sequence');
    if (t.kind !== 'sequence') return;
    expect(Array.from(t.inputIds)).toEqual([BOS, ...ids('ab'), ...ids('cd'), EOS]);
    expect(Array.from(t.lossMask)).toEqual([0, 0, 0, 1, 1, 1]);
    const all = tokenizeExample(toExample({ prompt: 'ab', completion: 'cd' }, at, 'prompt-completion'), tok, {
      completionOnlyLoss: false,
    });
    expect(Array.from((all as { lossMask: Uint8Array }).lossMask)).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('masks everything but assistant turns with assistantOnlyLoss', () => {
    const msgs = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'yo' },
    ];
    const t = tokenizeExample(toExample({ messages: msgs }, at, 'conversational'), tok, {
      assistantOnlyLoss: true,
    }) as { lossMask: Uint8Array; inputIds: Int32Array };
    const learned = Array.from(t.inputIds).filter((_, i) => t.lossMask[i]);
    expect(learned).toEqual([...ids('<assistant>yo'), EOS]);
  });

  it('truncates from either end, or reports the length', () => {
    const ex = toExample({ text: 'abcdef' }, at, 'text');
    expect(() => tokenizeExample(ex, tok, { maxLength: 4 })).toThrow(TooLong);
    expect(Array.from((tokenizeExample(ex, tok, { maxLength: 4 }, true) as { inputIds: Int32Array }).inputIds)).toEqual(
      [BOS, ...ids('abc')],
    );
    // BOS a b c d e f EOS, last 4 kept
    expect(
      Array.from(
        (tokenizeExample(ex, tok, { maxLength: 4, truncation: 'keep_end' }, true) as { inputIds: Int32Array }).inputIds,
      ),
    ).toEqual([...ids('def'), EOS]);
  });

  it('splits the prompt chosen and rejected share (TRL extract_prompt), text or conversation', () => {
    expect(splitSharedPrompt('The sky is blue', 'The sky is green')).toEqual({
      prompt: 'The sky is ',
      chosen: 'blue',
      rejected: 'green',
    });
    const u = { role: 'user', content: 'q' };
    expect(
      splitSharedPrompt([u, { role: 'assistant', content: 'a' }], [u, { role: 'assistant', content: 'b' }]),
    ).toEqual({
      prompt: [u],
      chosen: [{ role: 'assistant', content: 'a' }],
      rejected: [{ role: 'assistant', content: 'b' }],
    });
    const t = tokenizeExample(
      toExample({ chosen: 'The sky is blue', rejected: 'The sky is green' }, at, 'preference'),
      tok,
    );
    expect(t.kind === 'preference' && [Array.from(t.prompt), Array.from(t.chosen), Array.from(t.rejected)]).toEqual([
      [BOS, ...ids('The sky is ')],
      [...ids('blue'), EOS],
      [...ids('green'), EOS],
    ]);
  });

  it('preference truncation as TRL: the prompt keeps maxPromptLength (start or end), the responses maxLength - maxPromptLength', () => {
    const ex = toExample({ prompt: 'abcdef', chosen: 'ghijk', rejected: 'lm' }, at, 'preference');
    // prompt BOS a b c d e f (7), chosen g h i j k EOS (6), rejected l m EOS (3): 13 > 8
    expect(() => tokenizeExample(ex, tok, { maxLength: 8, maxPromptLength: 3 })).toThrow(TooLong);
    const end = tokenizeExample(ex, tok, { maxLength: 8, maxPromptLength: 3, truncation: 'keep_end' }, true);
    expect(
      end.kind === 'preference' && [Array.from(end.prompt), Array.from(end.chosen), Array.from(end.rejected)],
    ).toEqual([ids('def'), ids('ghijk'), [...ids('lm'), EOS]]);
    const start = tokenizeExample(ex, tok, { maxLength: 8, maxPromptLength: 3, truncation: 'keep_start' }, true);
    expect(start.kind === 'preference' && Array.from(start.prompt)).toEqual([BOS, ...ids('ab')]);
    // short enough after the prompt alone: responses untouched
    const fits = tokenizeExample(
      toExample({ prompt: 'abcdef', chosen: 'g', rejected: 'h' }, at, 'preference'),
      tok,
      { maxLength: 6, maxPromptLength: 4, truncation: 'keep_end' },
      true,
    );
    expect(fits.kind === 'preference' && [Array.from(fits.prompt), Array.from(fits.chosen)]).toEqual([
      ids('cdef'),
      [...ids('g'), EOS],
    ]);
  });

  it('reads a preference margin column when mapped, and names the row when it is not a number', () => {
    const t = tokenizeExample(
      toExample({ prompt: 'p', chosen: 'a', rejected: 'b', gap: 1.5 }, at, 'preference', { margin: 'gap' }),
      tok,
    );
    expect(t.kind === 'preference' && t.margin).toBe(1.5);
    expect(() =>
      toExample({ prompt: 'p', chosen: 'a', rejected: 'b', gap: 'big' }, at, 'preference', { margin: 'gap' }),
    ).toThrow(/^line 7: field "gap" should be a finite number/);
    expect(toExample({ prompt: 'p', chosen: 'a', rejected: 'b', gap: 2 }, at, 'preference')).not.toHaveProperty(
      'margin',
    );
  });

  it('names the file, line and field of a bad row', () => {
    const get = (row: object, f: Parameters<typeof toExample>[2], labels?: string[]) => {
      try {
        toExample(row as Record<string, unknown>, at, f, { text: 'body' }, labels);
      } catch (e) {
        return e as BadRow;
      }
      throw new Error('no error');
    };
    const e = get({ title: 'x' }, 'text');
    expect(e).toBeInstanceOf(BadRow);
    expect([e.file, e.field, e.message]).toEqual(['data.jsonl', 'body', 'line 7: missing field "body"']);
    expect(get({ body: 3 }, 'text').message).toMatch(/should be text, got number/);
    expect(get({ body: '  ' }, 'text').message).toMatch(/is empty/);
    expect(get({ body: 'ok', label: 'meh' }, 'classification', ['neg', 'pos']).message).toMatch(
      /one of neg, pos, got "meh"/,
    );
    expect(toExample({ body: 'ok', label: 'pos' }, at, 'classification', { text: 'body' }, ['neg', 'pos'])).toEqual({
      kind: 'classification',
      text: 'ok',
      label: 1,
    });
  });
});

describe('packing', () => {
  const seq = (n: number, v: number) => ({ inputIds: new Int32Array(n).fill(v), lossMask: new Uint8Array(n).fill(1) });

  it('greedy: concatenates with EOS and cuts blocks', () => {
    const p = packGreedy([seq(3, 5), seq(2, 6)], 3, EOS); // 5 5 5 E 6 6 E -> 2 blocks of 3
    expect(p.rows).toBe(2);
    expect(Array.from(p.inputIds)).toEqual([5, 5, 5, EOS, 6, 6]);
  });

  it('best-fit decreasing keeps documents whole, fills rows, restarts positions per document', () => {
    // lengths 5,4,3,3,1 in blocks of 8: [5,3] and [4,3,1] -> 2 full rows
    const docs = [seq(3, 30), seq(5, 50), seq(1, 10), seq(4, 40), seq(3, 31)];
    const p = packBestFit(docs, 8, 0);
    expect(p.rows).toBe(2);
    expect(p.efficiency).toBe(1);
    expect(Array.from(p.inputIds)).toEqual([50, 50, 50, 50, 50, 30, 30, 30, 40, 40, 40, 40, 31, 31, 31, 10]);
    expect(Array.from(p.positionIds.subarray(0, 8))).toEqual([0, 1, 2, 3, 4, 0, 1, 2]);
    expect(Array.from(p.documentIds.subarray(8))).toEqual([1, 1, 1, 1, 2, 2, 2, 3]);
    const loose = packBestFit([seq(6, 1), seq(6, 2)], 8, 0);
    expect(loose.rows).toBe(2);
    expect(loose.efficiency).toBe(12 / 16);
    expect(Array.from(loose.documentIds.subarray(0, 8))).toEqual([1, 1, 1, 1, 1, 1, 0, 0]);
  });
});

describe('collators', () => {
  it('causal: pads (right or left, to a multiple) with -100 labels on padding and masked tokens', () => {
    const a = { inputIds: Int32Array.from([7, 8, 9]), lossMask: Uint8Array.from([0, 1, 1]) };
    const b = { inputIds: Int32Array.from([4]), lossMask: Uint8Array.from([1]) };
    const r = collateCausal([a, b], { padId: 0, padToMultipleOf: 4 });
    expect(r.length).toBe(4);
    expect(Array.from(r.inputIds)).toEqual([7, 8, 9, 0, 4, 0, 0, 0]);
    expect(Array.from(r.attentionMask)).toEqual([1, 1, 1, 0, 1, 0, 0, 0]);
    expect(Array.from(r.labels)).toEqual([IGNORE, 8, 9, IGNORE, 4, IGNORE, IGNORE, IGNORE]);
    const left = collateCausal([a, b], { padId: 0, side: 'left' });
    expect(Array.from(left.inputIds)).toEqual([7, 8, 9, 0, 0, 4]);
  });

  it('MLM: ~15% of non-special tokens chosen, 80/10/10 [MASK]/random/kept, labels only there', () => {
    const rows = Array.from({ length: 200 }, (_, r) =>
      Int32Array.from({ length: 100 }, (_, i) => (i === 0 ? 101 : 1000 + ((r * 100 + i) % 500))),
    );
    const b = collateMlm(rows, {
      padId: 0,
      maskTokenId: 103,
      vocabSize: 2000,
      specialIds: new Set([101]),
      rng: new Rng(1),
    });
    let chosen = 0;
    let masked = 0;
    let kept = 0;
    for (let i = 0; i < b.labels.length; i++) {
      if (b.labels[i] === IGNORE) continue;
      chosen++;
      expect(rows[Math.floor(i / 100)][i % 100]).toBe(b.labels[i]);
      if (b.inputIds[i] === 103) masked++;
      else if (b.inputIds[i] === b.labels[i]) kept++;
    }
    const n = 200 * 99;
    expect(Math.abs(chosen / n - 0.15)).toBeLessThan(0.01);
    expect(Math.abs(masked / chosen - 0.8)).toBeLessThan(0.03);
    expect(Math.abs(kept / chosen - 0.1)).toBeLessThan(0.03);
    for (let r = 0; r < 200; r++) expect(b.labels[r * 100]).toBe(IGNORE); // [CLS] never chosen
  });

  it('MLM with a generator per row masks a row the same however the batch is split (data parallel)', () => {
    const rows = Array.from({ length: 6 }, (_, r) =>
      Int32Array.from({ length: 40 }, (_, i) => 200 + ((r * 7 + i) % 90)),
    );
    const keys = [17, 3, 250, 8, 41, 99]; // the rows' dataset indices
    const o = { padId: 0, maskTokenId: 103, vocabSize: 300, specialIds: new Set<number>(), probability: 0.3 };
    const perRow = (at: number[]) => (b: number) => new Rng(deriveSeed(5, at[b]));
    const whole = collateMlm(rows, { ...o, rng: perRow(keys) });
    const halves = [0, 3].map((k) => collateMlm(rows.slice(k, k + 3), { ...o, rng: perRow(keys.slice(k, k + 3)) }));
    expect(Array.from(halves[0].inputIds).concat(Array.from(halves[1].inputIds))).toEqual(Array.from(whole.inputIds));
    expect(Array.from(halves[0].labels).concat(Array.from(halves[1].labels))).toEqual(Array.from(whole.labels));
    expect(whole.labels.filter((l) => l !== IGNORE).length).toBeGreaterThan(30); // something was masked
    // one shared generator would not: the second half's masks depend on the first half's draws
    const shared = collateMlm(rows, { ...o, rng: new Rng(5) });
    const sharedHalf = collateMlm(rows.slice(3), { ...o, rng: new Rng(5) });
    expect(Array.from(sharedHalf.labels)).not.toEqual(Array.from(shared.labels.slice(3 * 40)));
  });

  it('MLM whole-word masking chooses a word and its continuation pieces together', () => {
    const rows = Array.from({ length: 50 }, () => Int32Array.from([5, 6, 6, 5, 6, 5, 5, 6, 6, 6]));
    const b = collateMlm(rows, {
      padId: 0,
      maskTokenId: 103,
      vocabSize: 10,
      specialIds: new Set(),
      continuesWord: (id) => id === 6,
      rng: new Rng(2),
      probability: 0.5,
    });
    for (let r = 0; r < 50; r++)
      for (let i = 1; i < 10; i++)
        if (rows[r][i] === 6) expect(b.labels[r * 10 + i] !== IGNORE).toBe(b.labels[r * 10 + i - 1] !== IGNORE);
  });

  it('preference: all chosen rows, then all rejected rows, labels on the responses only', () => {
    const pair = (p: number[], c: number[], r: number[]) => ({
      prompt: Int32Array.from(p),
      chosen: Int32Array.from(c),
      rejected: Int32Array.from(r),
    });
    const b = collatePreference([pair([1, 2], [3], [4, 4]), pair([5], [6, 6], [7])], { padId: 0 });
    expect(b.batchSize).toBe(4);
    expect(b.length).toBe(4);
    expect(Array.from(b.inputIds)).toEqual([1, 2, 3, 0, 5, 6, 6, 0, 1, 2, 4, 4, 5, 7, 0, 0]);
    const I = IGNORE;
    expect(Array.from(b.labels)).toEqual([I, I, 3, I, I, 6, 6, I, I, I, 4, 4, I, 7, I, I]);
  });
});
