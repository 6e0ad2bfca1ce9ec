// METEOR (Banerjee & Lavie, 2005) as NLTK's meteor_score computes it: words aligned in
// three stages (exact, Porter stem, WordNet synonym), each matching from the end of the
// sentences; F-mean with alpha 0.9; a fragmentation penalty gamma * (chunks/matches)^beta;
// several references: the best score.
import { porterStem } from './rouge.js';
import { loadWordNet, type WordNet } from './wordnet.js';

type Enum = Array<[number, string]>;

/** NLTK's _match_enums: from the back, each hypothesis word takes the last equal reference word. */
function matchEnums(hyp: Enum, ref: Enum, same: (h: string, r: string) => boolean): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = hyp.length - 1; i >= 0; i--) {
    for (let j = ref.length - 1; j >= 0; j--) {
      if (same(hyp[i][1], ref[j][1])) {
        out.push([hyp[i][0], ref[j][0]]);
        hyp.splice(i, 1);
        ref.splice(j, 1);
        break;
      }
    }
  }
  return out;
}

function chunks(matches: Array<[number, number]>): number {
  let n = 1;
  for (let i = 0; i + 1 < matches.length; i++)
    if (!(matches[i + 1][0] === matches[i][0] + 1 && matches[i + 1][1] === matches[i][1] + 1)) n++;
  return n;
}

export interface MeteorOptions {
  alpha?: number;
  beta?: number;
  gamma?: number;
  /** Use WordNet synonyms (needs Debian's wordnet-base); default true. */
  synonyms?: boolean;
}

/** NLTK single_meteor_score(reference, hypothesis) on whitespace-tokenized, lowercased words. */
export function singleMeteor(reference: string[], hypothesis: string[], o: MeteorOptions = {}, wn?: WordNet): number {
  const [alpha, beta, gamma] = [o.alpha ?? 0.9, o.beta ?? 3, o.gamma ?? 0.5];
  let hyp: Enum = hypothesis.map((w, i) => [i, w.toLowerCase()]);
  let ref: Enum = reference.map((w, i) => [i, w.toLowerCase()]);
  const [hypLen, refLen] = [hyp.length, ref.length];
  const exact = matchEnums(hyp, ref, (h, r) => h === r);
  // NLTK keeps the stemmed words for the synonym stage.
  hyp = hyp.map(([i, w]) => [i, porterStem(w)]);
  ref = ref.map(([i, w]) => [i, porterStem(w)]);
  const stem = matchEnums(hyp, ref, (h, r) => h === r);
  const syn: Array<[number, number]> = [];
  if (o.synonyms !== false) {
    const net = wn ?? loadWordNet();
    for (let i = hyp.length - 1; i >= 0; i--) {
      const syns = new Set([...net.synonyms(hyp[i][1])].filter((l) => !l.includes('_')));
      syns.add(hyp[i][1]);
      for (let j = ref.length - 1; j >= 0; j--) {
        if (syns.has(ref[j][1])) {
          syn.push([hyp[i][0], ref[j][0]]);
          hyp.splice(i, 1);
          ref.splice(j, 1);
          break;
        }
      }
    }
  }
  const matches = [...exact, ...stem, ...syn].sort((a, b) => a[0] - b[0]);
  const m = matches.length;
  if (!m || !hypLen || !refLen) return 0;
  const precision = m / hypLen;
  const recall = m / refLen;
  const fmean = (precision * recall) / (alpha * precision + (1 - alpha) * recall);
  const penalty = gamma * Math.pow(chunks(matches) / m, beta);
  return (1 - penalty) * fmean;
}

/**
 * NLTK meteor_score per prediction: references[i] are the references of predictions[i]
 * (strings, split on whitespace); the best reference counts. Returns each score and the mean.
 */
export function meteor(
  predictions: string[],
  references: Array<string | string[]>,
  o: MeteorOptions = {},
): { scores: number[]; mean: number } {
  if (predictions.length !== references.length || !predictions.length)
    throw new RangeError('meteor: needs equally many predictions and references');
  const wn = o.synonyms === false ? undefined : loadWordNet();
  const split = (s: string) => s.split(/\s+/).filter(Boolean);
  const scores = predictions.map((p, i) =>
    Math.max(...[references[i]].flat().map((r) => singleMeteor(split(r), split(p), o, wn))),
  );
  return { scores, mean: scores.reduce((a, b) => a + b, 0) / scores.length };
}
