// Perplexity against the model's own mean token loss (one window) and against scoring
// every token separately with the context the sliding window gives it; self-consistency
// majority votes on seeded samples.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, causalLmLoss } from '@anneal/modeling';
import { perplexity, selfConsistency, type TextTokenizer } from './index.js';

// character-level: ids are char codes below 128
const tok: TextTokenizer = {
  encode: (t) => Array.from(t, (c) => c.charCodeAt(0) % 128),
  decode: (ids) => String.fromCharCode(...ids),
};

describe('perplexity', () => {
  let model: Gpt2LMHeadModel;
  beforeAll(async () => {
    await useBackend('cpu', {});
    model = Gpt2LMHeadModel.init(
      { ...GPT2_DEFAULTS, vocabSize: 128, nPositions: 16, nLayer: 1, nHead: 2, nEmbd: 16, initializerRange: 0.3 },
      4,
    );
  });

  it('is exp of the mean token loss when one window holds the text', () => {
    const text = 'hello there';
    const ids = tok.encode(text);
    const loss = tf.tidy(
      () =>
        causalLmLoss(model.forward({ inputIds: tf.tensor2d([ids], [1, ids.length], 'int32') }).logits, [
          ids,
        ]).loss.dataSync()[0],
    );
    const r = perplexity(model, tok, [text]);
    expect(r.tokens).toBe(ids.length - 1);
    expect(Math.log(r.perplexity)).toBeCloseTo(loss, 5); // float32 loss: compare logs
  });

  it('with a sliding window equals scoring each token with the context its window gives', () => {
    const texts = ['abcdefghij', 'klmnopqrst'];
    const ids = tok.encode(texts.join('\n\n'));
    const [L, stride] = [8, 3];
    const r = perplexity(model, tok, texts, { maxLength: L, stride });
    // token j is first scored by the first window [b, b + L) with j < b + L, j >= 1, after the
    // previous window's end; its context is ids[b .. j-1]
    let nll = 0;
    let n = 0;
    let prevEnd = 0;
    for (let b = 0; b < ids.length; b += stride) {
      const end = Math.min(b + L, ids.length);
      for (let j = Math.max(prevEnd, b + 1); j < end; j++) {
        const ctx = ids.slice(b, j);
        nll -= (
          tf.tidy(() =>
            tf.logSoftmax(model.forward({ inputIds: tf.tensor2d([ctx], [1, ctx.length], 'int32') }).logits).arraySync(),
          ) as number[][][]
        )[0][ctx.length - 1][ids[j]];
        n++;
      }
      prevEnd = end;
      if (end === ids.length) break;
    }
    expect(r.tokens).toBe(n);
    expect(r.meanNll).toBeCloseTo(nll / n, 5);
  });

  it('self-consistency returns the majority answer of seeded samples', () => {
    const o = { samples: 9, maxNewTokens: 3, temperature: 1.5, seed: 5, extractAnswer: (c: string) => c[0] };
    const r = selfConsistency(model, tok, 'Q: ', o);
    expect(r.completions).toHaveLength(9);
    const counts = new Map<string, number>();
    for (const c of r.completions) counts.set(c[0], (counts.get(c[0]) ?? 0) + 1);
    expect(r.votes).toEqual(counts);
    expect(counts.get(r.answer!)).toBe(Math.max(...counts.values()));
    expect(selfConsistency(model, tok, 'Q: ', o).completions).toEqual(r.completions);
  });
});
