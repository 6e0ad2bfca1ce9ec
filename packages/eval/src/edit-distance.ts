// Edit distances and the error rates built on them, with jiwer's definitions: WER is
// (substitutions + deletions + insertions) / reference words over the whole corpus, after
// jiwer's default transform (collapse and strip spaces, split on spaces); CER the same
// over characters (spaces included, ends stripped).

/** Levenshtein distance between two strings (by code point) or two token lists. */
export function levenshtein<T>(a: string | readonly T[], b: string | readonly T[]): number {
  const x = typeof a === 'string' ? Array.from(a) : a;
  const y = typeof b === 'string' ? Array.from(b) : b;
  if (x.length < y.length) return levenshtein(y as readonly unknown[], x as readonly unknown[]);
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[y.length];
}

const words = (s: string) => s.replace(/ +/g, ' ').trim().split(' ').filter(Boolean);
const chars = (s: string) => Array.from(s.trim());

function errorRate(references: string[], hypotheses: string[], split: (s: string) => string[], what: string): number {
  if (references.length !== hypotheses.length)
    throw new RangeError(`${what}: ${references.length} references but ${hypotheses.length} hypotheses`);
  let edits = 0;
  let total = 0;
  references.forEach((r, i) => {
    const ref = split(r);
    if (!ref.length) throw new RangeError(`${what}: reference ${i} is empty`);
    edits += levenshtein(ref, split(hypotheses[i]));
    total += ref.length;
  });
  return edits / total;
}

/** Word error rate over a corpus (jiwer.wer(reference, hypothesis)). */
export function wer(references: string | string[], hypotheses: string | string[]): number {
  return errorRate([references].flat(), [hypotheses].flat(), words, 'wer');
}

/** Character error rate over a corpus (jiwer.cer(reference, hypothesis)). */
export function cer(references: string | string[], hypotheses: string | string[]): number {
  return errorRate([references].flat(), [hypotheses].flat(), chars, 'cer');
}
