// BLEU (Papineni et al., 2002) two ways, each matching its reference implementation:
// - `bleu` as NLTK's corpus_bleu / sentence_bleu (token lists, weights, SmoothingFunction
//   methods 0-4, score in 0..1);
// - `sacreBleu` as sacreBLEU's default corpus BLEU (13a tokenization, 'exp' smoothing,
//   score in 0..100).
// Both clip n-gram counts by the largest count in any reference and take the brevity
// penalty against the closest reference length (ties: the shorter).

type Tokens = readonly string[];

function ngramCounts(tokens: Tokens, n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const g = tokens.slice(i, i + n).join('\u0000');
    m.set(g, (m.get(g) ?? 0) + 1);
  }
  return m;
}

/** Clipped n-gram matches and the hypothesis n-gram count. */
function matches(refs: readonly Tokens[], hyp: Tokens, n: number): [number, number] {
  const counts = ngramCounts(hyp, n);
  const maxRef = new Map<string, number>();
  for (const r of refs) for (const [g, c] of ngramCounts(r, n)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, c));
  let clipped = 0;
  let total = 0;
  for (const [g, c] of counts) {
    clipped += Math.min(c, maxRef.get(g) ?? 0);
    total += c;
  }
  return [clipped, total];
}

const closestRefLength = (refs: readonly Tokens[], hypLen: number) =>
  refs
    .map((r) => r.length)
    .reduce((best, l) =>
      Math.abs(l - hypLen) < Math.abs(best - hypLen) || (Math.abs(l - hypLen) === Math.abs(best - hypLen) && l < best)
        ? l
        : best,
    );

export interface BleuOptions {
  /** Default [0.25, 0.25, 0.25, 0.25]. */
  weights?: number[];
  /** NLTK SmoothingFunction method number (0 = none). */
  smoothing?: 0 | 1 | 2 | 3 | 4;
}

const FLOAT_MIN = 2.2250738585072014e-308; // Python's sys.float_info.min, NLTK method0's stand-in for 0

/** NLTK corpus_bleu(list_of_references, hypotheses): references[i] are the references of hypotheses[i]. */
export function bleu(
  references: readonly (readonly Tokens[])[],
  hypotheses: readonly Tokens[],
  o: BleuOptions = {},
): number {
  if (references.length !== hypotheses.length)
    throw new RangeError(`bleu: ${references.length} reference sets but ${hypotheses.length} hypotheses`);
  const weights = o.weights ?? [0.25, 0.25, 0.25, 0.25];
  const num = new Array<number>(weights.length).fill(0);
  const den = new Array<number>(weights.length).fill(0);
  let hypLen = 0;
  let refLen = 0;
  hypotheses.forEach((h, k) => {
    for (let n = 1; n <= weights.length; n++) {
      const [c, t] = matches(references[k], h, n);
      num[n - 1] += c;
      den[n - 1] += Math.max(1, t); // NLTK: denominator at least 1 per sentence
    }
    hypLen += h.length;
    refLen += closestRefLength(references[k], h.length);
  });
  if (num[0] === 0) return 0;
  const bp = hypLen > refLen ? 1 : hypLen === 0 ? 0 : Math.exp(1 - refLen / hypLen);
  let p = num.map((x, i) => x / den[i]);
  switch (o.smoothing ?? 0) {
    case 0:
      p = p.map((x) => (x === 0 ? FLOAT_MIN : x));
      break;
    case 1:
      p = p.map((x, i) => (num[i] === 0 ? 0.1 / den[i] : x));
      break;
    case 2:
      p = p.map((x, i) => (i === 0 ? x : (num[i] + 1) / (den[i] + 1)));
      break;
    case 3: {
      let inv = 1;
      p = p.map((x, i) => (num[i] === 0 ? 1 / (Math.pow(2, inv++) * den[i]) : x));
      break;
    }
    case 4: {
      let inv = 1;
      const k = 5;
      p = p.map((x, i) =>
        num[i] === 0 && hypLen > 1 ? 1 / ((Math.pow(2, inv++) * k) / Math.log(hypLen)) / den[i] : x,
      );
      break;
    }
  }
  return bp * Math.exp(weights.reduce((s, w, i) => s + w * Math.log(p[i]), 0));
}

/** NLTK sentence_bleu(references, hypothesis). */
export function sentenceBleu(references: readonly Tokens[], hypothesis: Tokens, o: BleuOptions = {}): number {
  return bleu([references], [hypothesis], o);
}

// sacreBLEU's 13a tokenizer (mteval-v13a.pl's rules).
const RULES_13A: Array<[RegExp, string]> = [
  [/([{-~[-` -&(-+:-@/])/g, ' $1 '],
  [/([^0-9])([.,])/g, '$1 $2 '],
  [/([.,])([^0-9])/g, ' $1 $2'],
  [/([0-9])(-)/g, '$1 $2 '],
];

export function tokenize13a(line: string): string[] {
  if (line === '') return [];
  let s = line.replaceAll('<skipped>', '').replaceAll('-\n', '').replaceAll('\n', ' ');
  if (s.includes('&'))
    s = s.replaceAll('&quot;', '"').replaceAll('&amp;', '&').replaceAll('&lt;', '<').replaceAll('&gt;', '>');
  s = ` ${s} `;
  for (const [re, rep] of RULES_13A) s = s.replace(re, rep);
  return s.split(/\s+/).filter(Boolean);
}

/**
 * sacreBLEU corpus_bleu(hypotheses, [references per stream]) with its defaults: 13a
 * tokenization, case-sensitive, 'exp' smoothing, max order 4; 0..100.
 * references[j][i] is the j-th reference of hypothesis i (sacreBLEU's layout).
 */
export function sacreBleu(
  hypotheses: string[],
  references: string[][],
  o: { lowercase?: boolean } = {},
): { score: number; precisions: number[]; bp: number; sysLen: number; refLen: number } {
  const prep = (s: string) => tokenize13a(o.lowercase ? s.toLowerCase() : s);
  const correct = [0, 0, 0, 0];
  const total = [0, 0, 0, 0];
  let sysLen = 0;
  let refLen = 0;
  hypotheses.forEach((h, i) => {
    const hyp = prep(h);
    const refs = references.map((stream) => prep(stream[i]));
    for (let n = 1; n <= 4; n++) {
      const [c, t] = matches(refs, hyp, n);
      correct[n - 1] += c;
      total[n - 1] += t;
    }
    sysLen += hyp.length;
    refLen += closestRefLength(refs, hyp.length);
  });
  const precisions = [0, 0, 0, 0];
  const bp = sysLen < refLen ? (sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0) : 1;
  if (!correct.some((c) => c > 0)) return { score: 0, precisions, bp, sysLen, refLen };
  let smooth = 1;
  for (let n = 0; n < 4; n++) {
    if (total[n] === 0) break;
    if (correct[n] === 0) {
      smooth *= 2;
      precisions[n] = 100 / (smooth * total[n]);
    } else precisions[n] = (100 * correct[n]) / total[n];
  }
  const log = (p: number) => (p === 0 ? -9999999999 : Math.log(p));
  return { score: bp * Math.exp(precisions.reduce((s, p) => s + log(p), 0) / 4), precisions, bp, sysLen, refLen };
}
