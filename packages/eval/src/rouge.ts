// ROUGE (Lin, 2004) as Google's rouge-score package computes it: lowercase, non
// alphanumerics to spaces, optional Porter stemming of tokens longer than 3 characters;
// rougeN from clipped n-gram overlap, rougeL from the longest common subsequence,
// rougeLsum from the union LCS of newline-separated sentences. Several references: the
// best F-measure per example (score_multi); a corpus: the mean over examples.
import { stemmer } from 'stemmer';

export type RougeType = 'rouge1' | 'rouge2' | 'rougeL' | 'rougeLsum' | `rouge${number}`;

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

// NLTK's PorterStemmer (mode NLTK_EXTENSIONS, which rouge-score uses) departs from the
// original algorithm (the `stemmer` package) in three ways applied here: a pool of
// irregular forms, "ies" -> "ie" in four-letter words, and y -> i only after a consonant
// that is not the word's first letter.
const IRREGULAR: Record<string, string> = {
  skies: 'sky',
  sky: 'sky',
  dying: 'die',
  lying: 'lie',
  tying: 'tie',
  news: 'news',
  innings: 'inning',
  inning: 'inning',
  outings: 'outing',
  outing: 'outing',
  cannings: 'canning',
  canning: 'canning',
  howe: 'howe',
  proceed: 'proceed',
  exceed: 'exceed',
  succeed: 'succeed',
};

export function porterStem(word: string): string {
  if (IRREGULAR[word]) return IRREGULAR[word];
  if (word.length === 4 && word.endsWith('ies')) return word.slice(0, -3) + 'ie';
  const s = stemmer(word);
  // Original Porter turns a final y into i after any vowel-containing stem; NLTK only after
  // a consonant that is not the first letter: undo the rest.
  if (s.endsWith('i') && !word.endsWith('i')) {
    const y = s.slice(0, -1) + 'y';
    const before = y[y.length - 2];
    const afterConsonant = before !== undefined && !'aeiou'.includes(before) && y.length > 2;
    if (!afterConsonant && (word.startsWith(y) || stemmer(y) === s)) return y;
  }
  return s;
}

export function rougeTokens(text: string, useStemmer = false): string[] {
  const tokens = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, ' ')
    .split(/\s+/)
    .filter(Boolean);
  return useStemmer ? tokens.map((t) => (t.length > 3 ? porterStem(t) : t)) : tokens;
}

const score = (hits: number, predLen: number, refLen: number): RougeScore => {
  const precision = hits / Math.max(predLen, 1);
  const recall = hits / Math.max(refLen, 1);
  return { precision, recall, fmeasure: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0 };
};

function ngrams(tokens: string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const g = tokens.slice(i, i + n).join(' ');
    m.set(g, (m.get(g) ?? 0) + 1);
  }
  return m;
}

function rougeN(target: string[], pred: string[], n: number): RougeScore {
  const t = ngrams(target, n);
  const p = ngrams(pred, n);
  let hits = 0;
  for (const [g, c] of p) hits += Math.min(c, t.get(g) ?? 0);
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  return score(hits, sum(p), sum(t));
}

function lcsTable(ref: string[], can: string[]): number[][] {
  const t = Array.from({ length: ref.length + 1 }, () => new Array<number>(can.length + 1).fill(0));
  for (let i = 1; i <= ref.length; i++)
    for (let j = 1; j <= can.length; j++)
      t[i][j] = ref[i - 1] === can[j - 1] ? t[i - 1][j - 1] + 1 : Math.max(t[i - 1][j], t[i][j - 1]);
  return t;
}

/** Indices in ref of one LCS, backtracked as rouge-score does (ties move left in can first... as _backtrack_norec). */
function lcsIndices(ref: string[], can: string[]): number[] {
  const t = lcsTable(ref, can);
  const out: number[] = [];
  let [i, j] = [ref.length, can.length];
  while (i > 0 && j > 0) {
    if (ref[i - 1] === can[j - 1]) {
      out.unshift(i - 1);
      i--;
      j--;
    } else if (t[i][j - 1] > t[i - 1][j]) j--;
    else i--;
  }
  return out;
}

function rougeLsum(targetSents: string[][], predSents: string[][]): RougeScore {
  const m = targetSents.reduce((s, x) => s + x.length, 0);
  const n = predSents.reduce((s, x) => s + x.length, 0);
  if (!m || !n) return { precision: 0, recall: 0, fmeasure: 0 };
  const countR = new Map<string, number>();
  const countC = new Map<string, number>();
  for (const s of targetSents) for (const t of s) countR.set(t, (countR.get(t) ?? 0) + 1);
  for (const s of predSents) for (const t of s) countC.set(t, (countC.get(t) ?? 0) + 1);
  let hits = 0;
  for (const r of targetSents) {
    const union = new Set<number>();
    for (const c of predSents) for (const i of lcsIndices(r, c)) union.add(i);
    for (const i of [...union].sort((a, b) => a - b)) {
      const tok = r[i];
      if ((countC.get(tok) ?? 0) > 0 && (countR.get(tok) ?? 0) > 0) {
        hits++;
        countC.set(tok, countC.get(tok)! - 1);
        countR.set(tok, countR.get(tok)! - 1);
      }
    }
  }
  return score(hits, n, m);
}

/** rouge-score's RougeScorer.score(target, prediction) for one pair. */
export function rougePair(
  target: string,
  prediction: string,
  types: RougeType[] = ['rouge1', 'rouge2', 'rougeL', 'rougeLsum'],
  useStemmer = false,
): Record<string, RougeScore> {
  const out: Record<string, RougeScore> = {};
  const t = rougeTokens(target, useStemmer);
  const p = rougeTokens(prediction, useStemmer);
  for (const type of types) {
    if (type === 'rougeL') {
      const lcs = lcsTable(t, p)[t.length][p.length];
      out[type] = score(lcs, p.length, t.length);
    } else if (type === 'rougeLsum') {
      const sents = (s: string) =>
        s
          .split('\n')
          .map((x) => rougeTokens(x, useStemmer))
          .filter((x) => x.length);
      out[type] = rougeLsum(sents(target), sents(prediction));
    } else {
      const n = Number(/^rouge(\d+)$/.exec(type)?.[1]);
      if (!n) throw new RangeError(`unknown ROUGE type ${type}`);
      out[type] = rougeN(t, p, n);
    }
  }
  return out;
}

/**
 * Mean scores over a corpus; references[i] is one reference or several (then the best
 * F-measure for that example counts, as rouge-score's score_multi).
 */
export function rouge(
  predictions: string[],
  references: Array<string | string[]>,
  o: { types?: RougeType[]; useStemmer?: boolean } = {},
): Record<string, RougeScore> {
  if (predictions.length !== references.length || !predictions.length)
    throw new RangeError('rouge: needs equally many predictions and references');
  const types = o.types ?? ['rouge1', 'rouge2', 'rougeL', 'rougeLsum'];
  const sums: Record<string, RougeScore> = Object.fromEntries(
    types.map((t) => [t, { precision: 0, recall: 0, fmeasure: 0 }]),
  );
  predictions.forEach((p, i) => {
    const refs = [references[i]].flat();
    const scores = refs.map((r) => rougePair(r, p, types, o.useStemmer));
    for (const t of types) {
      const best = scores.reduce((a, b) => (b[t].fmeasure > a[t].fmeasure ? b : a));
      for (const k of ['precision', 'recall', 'fmeasure'] as const) sums[t][k] += best[t][k];
    }
  });
  for (const t of types) for (const k of ['precision', 'recall', 'fmeasure'] as const) sums[t][k] /= predictions.length;
  return sums;
}
