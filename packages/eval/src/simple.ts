// Small metrics: exact match, distinct-n (Li et al., 2016), character entropy, and
// classification accuracy / precision / recall / F1 as scikit-learn defines them
// (micro, macro and weighted averages; a class with no predictions has precision 0).

/** Share of predictions equal to their reference (optionally after trimming and lowercasing). */
export function exactMatch(predictions: string[], references: string[], o: { normalize?: boolean } = {}): number {
  if (predictions.length !== references.length || !predictions.length)
    throw new RangeError('exactMatch: needs equally many predictions and references');
  const f = (s: string) => (o.normalize ? s.trim().toLowerCase().replace(/\s+/g, ' ') : s);
  return predictions.filter((p, i) => f(p) === f(references[i])).length / predictions.length;
}

/** Distinct n-grams / all n-grams over whitespace tokens of all texts. */
export function distinctN(texts: string[], n: number): number {
  const seen = new Set<string>();
  let total = 0;
  for (const t of texts) {
    const w = t.split(/\s+/).filter(Boolean);
    for (let i = 0; i + n <= w.length; i++) {
      seen.add(w.slice(i, i + n).join('\u0000'));
      total++;
    }
  }
  return total ? seen.size / total : 0;
}

/** Shannon entropy of the character distribution, in bits per character. */
export function charEntropy(text: string): number {
  const counts = new Map<string, number>();
  let n = 0;
  for (const c of text) {
    counts.set(c, (counts.get(c) ?? 0) + 1);
    n++;
  }
  let h = 0;
  for (const k of counts.values()) h -= (k / n) * Math.log2(k / n);
  return h;
}

export function accuracy(predictions: number[], labels: number[]): number {
  if (predictions.length !== labels.length || !labels.length)
    throw new RangeError('accuracy: needs equally many predictions and labels');
  return predictions.filter((p, i) => p === labels[i]).length / labels.length;
}

export type Average = 'micro' | 'macro' | 'weighted';

interface ClassCounts {
  tp: number;
  fp: number;
  fn: number;
  support: number;
}

function perClass(predictions: number[], labels: number[]): Map<number, ClassCounts> {
  if (predictions.length !== labels.length) throw new RangeError('needs equally many predictions and labels');
  const m = new Map<number, ClassCounts>();
  const get = (c: number) => m.get(c) ?? (m.set(c, { tp: 0, fp: 0, fn: 0, support: 0 }), m.get(c)!);
  labels.forEach((l, i) => {
    const p = predictions[i];
    get(l).support++;
    if (p === l) get(l).tp++;
    else {
      get(p).fp++;
      get(l).fn++;
    }
  });
  return m;
}

const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);

function averaged(
  predictions: number[],
  labels: number[],
  average: Average,
  f: (c: ClassCounts) => number,
  micro: (tp: number, fp: number, fn: number) => number,
): number {
  const m = perClass(predictions, labels);
  if (average === 'micro') {
    let [tp, fp, fn] = [0, 0, 0];
    for (const c of m.values()) [tp, fp, fn] = [tp + c.tp, fp + c.fp, fn + c.fn];
    return micro(tp, fp, fn);
  }
  const classes = [...m.values()];
  if (average === 'macro') return classes.reduce((s, c) => s + f(c), 0) / classes.length;
  const total = classes.reduce((s, c) => s + c.support, 0);
  return classes.reduce((s, c) => s + f(c) * c.support, 0) / total;
}

export function precision(predictions: number[], labels: number[], average: Average = 'macro'): number {
  return averaged(
    predictions,
    labels,
    average,
    (c) => ratio(c.tp, c.tp + c.fp),
    (tp, fp) => ratio(tp, tp + fp),
  );
}

export function recall(predictions: number[], labels: number[], average: Average = 'macro'): number {
  return averaged(
    predictions,
    labels,
    average,
    (c) => ratio(c.tp, c.tp + c.fn),
    (tp, _fp, fn) => ratio(tp, tp + fn),
  );
}

export function f1(predictions: number[], labels: number[], average: Average = 'macro'): number {
  const f = (tp: number, fp: number, fn: number) => ratio(2 * tp, 2 * tp + fp + fn);
  return averaged(predictions, labels, average, (c) => f(c.tp, c.fp, c.fn), f);
}

/**
 * How often a reward model prefers completions A to completions B of the same prompts
 * (ties count half): the win rate of A.
 */
export function winRate(scoresA: number[], scoresB: number[]): number {
  if (scoresA.length !== scoresB.length || !scoresA.length)
    throw new RangeError('winRate: needs equally many scores for A and B');
  return scoresA.reduce((s, a, i) => s + (a > scoresB[i] ? 1 : a === scoresB[i] ? 0.5 : 0), 0) / scoresA.length;
}
