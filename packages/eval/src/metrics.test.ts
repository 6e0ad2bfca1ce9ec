// Metrics against their reference implementations: NLTK's values (fixtures/nltk.json, made
// by tools/eval/make_nltk_fixtures.py with Debian's python3-nltk), and the published or
// hand-computed examples of sacreBLEU, rouge-score, jiwer and scikit-learn.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  accuracy,
  bleu,
  cer,
  charEntropy,
  distinctN,
  exactMatch,
  f1,
  levenshtein,
  loadWordNet,
  meteor,
  precision,
  recall,
  rouge,
  rougePair,
  rougeTokens,
  sacreBleu,
  sentenceBleu,
  tokenize13a,
  wer,
  winRate,
  wordnetDir,
} from './index.js';

const NLTK = JSON.parse(readFileSync(new URL('../fixtures/nltk.json', import.meta.url), 'utf8'));
const refs: string[][][] = NLTK.pairs.map((p: { references: string[] }) => p.references.map((r) => r.split(' ')));
const hyps: string[][] = NLTK.pairs.map((p: { hypothesis: string }) => p.hypothesis.split(' '));

describe('edit distance, WER, CER', () => {
  it('levenshtein: kitten/sitting = 3, and on token lists', () => {
    expect(levenshtein('kitten', 'sitting')).toBe(3);
    expect(levenshtein('', 'abc')).toBe(3);
    expect(levenshtein(['a', 'b', 'c'], ['a', 'c'])).toBe(1);
    expect(levenshtein('🐳ab', 'ab')).toBe(1); // code points, not UTF-16 units
  });
  it('WER and CER as jiwer defines them (corpus-level edits / reference length)', () => {
    // jiwer README: wer("hello world", "hello duck") = 0.5
    expect(wer('hello world', 'hello duck')).toBe(0.5);
    // two sentences: 1 substitution of 2 words + 1 deletion of 3 words -> 2 / 5
    expect(wer(['hello world', 'a b c'], ['hello duck', 'a c'])).toBe(0.4);
    expect(wer('  hello   world ', 'hello world')).toBe(0);
    // cer: "kitten" vs "sitting" = 3 / 6
    expect(cer('kitten', 'sitting')).toBe(0.5);
    expect(cer('ab cd', 'abcd')).toBe(0.2); // the space counts
  });
});

describe('BLEU', () => {
  it('corpus_bleu equals NLTK for smoothing methods 0-4 and other weights', () => {
    for (const [k, want] of Object.entries(NLTK.corpus_bleu as Record<string, number>))
      expect(bleu(refs, hyps, { smoothing: Number(k) as 0 })).toBeCloseTo(want, 12);
    expect(bleu(refs, hyps, { weights: [0.5, 0.5] })).toBeCloseTo(NLTK.corpus_bleu_bigram, 12);
  });
  it('sentence_bleu equals NLTK on every pair and smoothing method', () => {
    for (const [k, wants] of Object.entries(NLTK.sentence_bleu as Record<string, number[]>)) {
      wants.forEach((want, i) =>
        expect(sentenceBleu(refs[i], hyps[i], { smoothing: Number(k) as 0 }), `method ${k}, pair ${i}`).toBeCloseTo(
          want,
          12,
        ),
      );
    }
  });
  it("sacreBLEU: the 13a tokenizer and the 'exp' smoothed corpus score (hand-checked)", () => {
    expect(tokenize13a('Hello, world! It costs $3.50-ish (really).')).toEqual([
      'Hello',
      ',',
      'world',
      '!',
      'It',
      'costs',
      '$',
      '3.50',
      '-',
      'ish',
      '(',
      'really',
      ')',
      '.',
    ]);
    // Identical sentences: 100. One sentence, hyp "the cat sat" vs ref "the cat sat down":
    // precisions 3/3, 2/2, 1/1, 0/0 -> the loop stops at the empty 4-gram total, so the 4th
    // precision stays 0 and the score is exp(-9999999999/4) ~ 0, as sacreBLEU reports.
    expect(sacreBleu(['the cat sat on the mat .'], [['the cat sat on the mat .']]).score).toBeCloseTo(100, 10);
    const s = sacreBleu(['the cat sat on a mat'], [['the cat sat on the mat']]);
    // 1-grams 5/6, 2-grams 3/5, 3-grams 2/4 (the cat sat, cat sat on), 4-grams 1/3; bp 1
    expect(s.precisions.map((p) => +p.toFixed(6))).toEqual([(100 * 5) / 6, 60, 50, 100 / 3].map((p) => +p.toFixed(6)));
    expect(s.score).toBeCloseTo(100 * Math.pow((5 / 6) * 0.6 * 0.5 * (1 / 3), 1 / 4), 10);
    // zero counts are smoothed: 100 / (2^k * total) for the k-th zero; bigrams share "a b"
    const z = sacreBleu(['a b c d'], [['a b x d']]);
    expect(z.precisions).toEqual([75, 100 / 3, 100 / (2 * 2), 100 / (4 * 1)]);
  });
});

describe('ROUGE (rouge-score)', () => {
  it('tokenizes like rouge-score and computes rouge1/2/L (hand-checked)', () => {
    expect(rougeTokens('The quick, brown FOX!')).toEqual(['the', 'quick', 'brown', 'fox']);
    // rouge-score README example: target "The quick brown fox jumps over the lazy dog",
    // prediction "The quick brown dog jumps on the log."
    const s = rougePair('The quick brown fox jumps over the lazy dog', 'The quick brown dog jumps on the log.', [
      'rouge1',
      'rougeL',
    ]);
    expect(s.rouge1.precision).toBeCloseTo(0.75, 12);
    expect(s.rouge1.recall).toBeCloseTo(0.6666666666666666, 12);
    expect(s.rouge1.fmeasure).toBeCloseTo(0.7058823529411765, 12);
    expect(s.rougeL.precision).toBeCloseTo(0.625, 12);
    expect(s.rougeL.recall).toBeCloseTo(0.5555555555555556, 12);
    expect(s.rougeL.fmeasure).toBeCloseTo(0.5882352941176471, 12);
    const two = rougePair('a b c d', 'a b d c', ['rouge2']);
    expect(two.rouge2.fmeasure).toBeCloseTo(1 / 3, 12); // bigrams ab,bc,cd vs ab,bd,dc: 1 shared
  });
  it('rougeLsum takes the union LCS over sentences; several references take the best', () => {
    // target sentences [a b c], [d e]; prediction [a x c d], [e]: union LCS of [a b c] = {a, c};
    // of [d e] = {d, e}: 4 hits, P = 4/5, R = 4/5
    const s = rougePair('a b c\nd e', 'a x c d\ne', ['rougeLsum']);
    expect(s.rougeLsum.precision).toBeCloseTo(0.8, 12);
    expect(s.rougeLsum.recall).toBeCloseTo(0.8, 12);
    const multi = rouge(['a b c'], [['x y z', 'a b c']], { types: ['rouge1'] });
    expect(multi.rouge1.fmeasure).toBe(1);
  });
  it("stems like NLTK's Porter stemmer on its fixture words (rouge-score's useStemmer)", () => {
    const porter = NLTK.porter as Record<string, string>;
    const mismatches = Object.entries(porter).filter(
      ([w, s]) => w.length > 3 && /^[a-z0-9]+$/.test(w) && rougeTokens(w, true)[0] !== s,
    );
    expect(mismatches, JSON.stringify(mismatches)).toEqual([]);
  });
});

describe('simple metrics (scikit-learn definitions, hand-checked)', () => {
  it('exact match, distinct-n, character entropy, win rate', () => {
    expect(exactMatch(['Paris', 'london '], ['Paris', 'London'])).toBe(0.5);
    expect(exactMatch(['Paris', 'london '], ['Paris', 'London'], { normalize: true })).toBe(1);
    expect(distinctN(['a b a b', 'a b'], 2)).toBe(2 / 4); // bigrams ab, ba, ab, ab: 2 distinct of 4
    expect(charEntropy('aabb')).toBe(1);
    expect(charEntropy('abcd')).toBe(2);
    expect(winRate([1, 2, 3, 4], [0, 2, 5, 1])).toBe(0.625);
  });
  it('accuracy and micro/macro/weighted precision, recall, F1', () => {
    // y_true = [0, 1, 2, 0, 1, 2], y_pred = [0, 2, 1, 0, 0, 1] (scikit-learn's f1_score example)
    const t = [0, 1, 2, 0, 1, 2];
    const p = [0, 2, 1, 0, 0, 1];
    expect(accuracy(p, t)).toBeCloseTo(1 / 3, 12);
    expect(f1(p, t, 'macro')).toBeCloseTo(0.26666666666666666, 12);
    expect(f1(p, t, 'micro')).toBeCloseTo(0.3333333333333333, 12);
    expect(f1(p, t, 'weighted')).toBeCloseTo(0.26666666666666666, 12);
    expect(precision(p, t, 'macro')).toBeCloseTo(0.2222222222222222, 12);
    expect(recall(p, t, 'macro')).toBeCloseTo(0.3333333333333333, 12);
  });
});

// METEOR needs WordNet (Debian's wordnet-base): required in CI, skipped elsewhere without it.
const hasWordNet = wordnetDir() !== undefined;
const requireWordNet = process.env.CI === 'true';
if (!hasWordNet && !requireWordNet)
  console.warn('METEOR tests skipped: WordNet is not installed (apt-get install wordnet-base)');
(hasWordNet || requireWordNet ? describe : describe.skip)('METEOR (NLTK meteor_score with WordNet 3.0)', () => {
  it('equals NLTK on every fixture pair (exact, stem and synonym stages, best reference)', () => {
    const pairs = NLTK.pairs as Array<{ references: string[]; hypothesis: string }>;
    const { scores } = meteor(
      pairs.map((p) => p.hypothesis),
      pairs.map((p) => p.references),
    );
    scores.forEach((s, i) => expect(s, pairs[i].hypothesis).toBeCloseTo(NLTK.meteor[i], 10));
  });
  it('finds synonyms through morphy (plural and verb forms)', () => {
    const wn = loadWordNet();
    expect(wn.morphy('dogs', 'n')).toEqual(['dog']);
    expect(wn.morphy('running', 'v')).toEqual(['run']);
    expect(wn.synonyms('quick').has('speedy')).toBe(true);
  });
});
