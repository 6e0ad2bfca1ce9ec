// T5's span corruption: the noise mask has the paper's noise count and span count for many
// lengths and densities (a property test over seeds), starts with kept tokens, and input +
// target give back the sequence exactly; the lengths transformers' run_t5_mlm_flax computes
// (512 inputs at density 0.15, spans of 3: 568 raw tokens, 114 targets) by hand.
import { describe, expect, it } from 'vitest';
import { Rng } from '@anneal/core';
import { randomSpansNoiseMask, roundHalfEven, spanCorrupt, spanCorruptionLengths } from './index.js';

const spansOf = (mask: boolean[]) => mask.filter((m, i) => m && (i === 0 || !mask[i - 1])).length;

describe('span corruption', () => {
  it('rounds half to even, as Python and numpy do', () => {
    expect([0.5, 1.5, 2.5, -0.5, 2.4, 2.6, 3].map(roundHalfEven)).toEqual([0, 2, 2, -0, 2, 3, 3]);
  });

  it('masks round(n × density) tokens in round(noise / mean span) spans, kept tokens first, for many lengths', () => {
    for (const [density, mean] of [
      [0.15, 3],
      [0.5, 2],
      [0.3, 8],
    ])
      for (let n = 2; n <= 200; n += 7)
        for (let seed = 0; seed < 5; seed++) {
          const mask = randomSpansNoiseMask(n, density, mean, new Rng(seed));
          const noise = Math.min(Math.max(roundHalfEven(n * density), 1), n - 1);
          const spans = Math.max(roundHalfEven(noise / mean), 1);
          expect(mask.length).toBe(n);
          expect(mask.filter(Boolean).length, `n ${n} density ${density}`).toBe(noise);
          expect(spansOf(mask), `n ${n} density ${density}`).toBe(spans);
          expect(mask[0]).toBe(false);
        }
    // different seeds place the spans differently
    const a = randomSpansNoiseMask(100, 0.15, 3, new Rng(1)).join();
    expect(randomSpansNoiseMask(100, 0.15, 3, new Rng(2)).join()).not.toBe(a);
  });

  it('input and target give back the sequence exactly (sentinels in order, EOS last)', () => {
    const sentinel = (i: number) => 1000 - i;
    for (let seed = 0; seed < 50; seed++) {
      const rng = new Rng(seed);
      const ids = Array.from({ length: 10 + (seed % 40) }, (_, i) => 10 + ((i * 7 + seed) % 90));
      const mask = randomSpansNoiseMask(ids.length, 0.15, 3, rng);
      const { input, target } = spanCorrupt(ids, mask, sentinel, 1);
      expect(target.at(-1)).toBe(1);
      // put each target span back in place of its sentinel
      const spans = new Map<number, number[]>();
      let current = -1;
      for (const t of target.slice(0, -1))
        if (t > 900) spans.set((current = t), []);
        else spans.get(current)!.push(t);
      expect([...spans.keys()]).toEqual(Array.from({ length: spans.size }, (_, i) => sentinel(i)));
      expect(input.flatMap((t) => (t > 900 ? spans.get(t)! : [t]))).toEqual(ids);
      expect(input.length + target.length).toBe(ids.length + 2 * spans.size + 1);
    }
  });

  it("computes transformers' raw and target lengths", () => {
    expect(spanCorruptionLengths(512, 0.15, 3)).toEqual({ rawLength: 568, targetsLength: 114 });
    // and the raw length's corrupted input is exactly the asked length, EOS included
    for (const inputs of [32, 64, 100, 128]) {
      const { rawLength, targetsLength } = spanCorruptionLengths(inputs, 0.15, 3);
      const mask = randomSpansNoiseMask(rawLength, 0.15, 3, new Rng(inputs));
      const ids = Array.from({ length: rawLength }, (_, i) => i + 2);
      const { input, target } = spanCorrupt(ids, mask, (i) => 10_000 - i, 1);
      expect(input.length + 1).toBe(inputs);
      expect(target.length).toBe(targetsLength);
    }
  });
});
