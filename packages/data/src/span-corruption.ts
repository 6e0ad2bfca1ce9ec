// T5's span corruption (Raffel et al. 2020, §3.1.4; the paper's random_spans_noise_mask, as
// transformers' run_t5_mlm_flax.py ports it): about noiseDensity of a sequence's tokens, in
// spans of meanNoiseSpanLength on average, are cut out. The input keeps the rest with each
// cut span replaced by a sentinel (<extra_id_0>, <extra_id_1>, …); the target is each cut
// span after its sentinel, then EOS. Input and target together give back the sequence.
import type { Rng } from '@anneal/core';

/** Rounding half to even, as Python's round and numpy's np.round (the reference code uses both). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Splits numItems into numSegments non-empty segments at random; their lengths in order. */
function randomSegmentation(numItems: number, numSegments: number, rng: Rng): number[] {
  // the first item of each segment but the first: numSegments − 1 of the numItems − 1 gaps, shuffled in
  const gaps = Int32Array.from({ length: numItems - 1 }, (_, i) => (i < numSegments - 1 ? 1 : 0));
  rng.shuffle(gaps);
  const lengths = [1];
  for (const g of gaps) {
    if (g) lengths.push(1);
    else lengths[lengths.length - 1]++;
  }
  return lengths;
}

/**
 * The noise mask of a sequence of `length` tokens: round(length × noiseDensity) noise tokens
 * (at least 1, at most length − 1) in round(noise / meanNoiseSpanLength) spans (at least 1),
 * spans and the gaps between them of random lengths, the sequence starting with a gap.
 */
export function randomSpansNoiseMask(
  length: number,
  noiseDensity: number,
  meanNoiseSpanLength: number,
  rng: Rng,
): boolean[] {
  const orig = length;
  length = Math.max(length, 2);
  const numNoise = Math.min(Math.max(roundHalfEven(length * noiseDensity), 1), length - 1);
  const numSpans = Math.max(roundHalfEven(numNoise / meanNoiseSpanLength), 1);
  const noiseLengths = randomSegmentation(numNoise, numSpans, rng);
  const keepLengths = randomSegmentation(length - numNoise, numSpans, rng);
  const mask: boolean[] = [];
  for (let s = 0; s < numSpans; s++) {
    for (let i = 0; i < keepLengths[s]; i++) mask.push(false);
    for (let i = 0; i < noiseLengths[s]; i++) mask.push(true);
  }
  return mask.slice(0, orig);
}

/**
 * Input and target of a corrupted sequence: noise spans become sentinel(0), sentinel(1), … in
 * the input; the target is sentinel(k) then span k, for each span, then `eos` (when given).
 */
export function spanCorrupt(
  ids: ArrayLike<number>,
  mask: boolean[],
  sentinel: (i: number) => number,
  eos?: number,
): { input: number[]; target: number[] } {
  const input: number[] = [];
  const target: number[] = [];
  let span = -1;
  for (let i = 0; i < ids.length; i++) {
    if (!mask[i]) input.push(ids[i]);
    else {
      if (i === 0 || !mask[i - 1]) {
        span++;
        input.push(sentinel(span));
        target.push(sentinel(span));
      }
      target.push(ids[i]);
    }
  }
  if (eos !== undefined) target.push(eos);
  return { input, target };
}

/**
 * transformers' compute_input_and_target_lengths: the raw sequence length whose corrupted
 * input is at most inputsLength tokens (EOS included), and the target's length for it.
 */
export function spanCorruptionLengths(
  inputsLength: number,
  noiseDensity: number,
  meanNoiseSpanLength: number,
): { rawLength: number; targetsLength: number } {
  const lengths = (tokens: number) => {
    const noise = roundHalfEven(tokens * noiseDensity);
    const spans = roundHalfEven(noise / meanNoiseSpanLength);
    // inputs: the kept tokens, a sentinel per span, EOS; targets: the cut tokens, a sentinel per span, EOS
    return { inputs: tokens - noise + spans + 1, targets: noise + spans + 1 };
  };
  let tokens = inputsLength;
  while (lengths(tokens + 1).inputs <= inputsLength) tokens++;
  const { inputs, targets } = lengths(tokens);
  // transformers' "minor hack": at density 0.5 the targets are made no longer than the inputs
  if (noiseDensity === 0.5 && targets > inputs) return { rawLength: tokens - 1, targetsLength: targets - 1 };
  return { rawLength: tokens, targetsLength: targets };
}
