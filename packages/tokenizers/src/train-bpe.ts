// Trains a byte-level BPE vocabulary on a corpus, as Hugging Face's BpeTrainer does
// with the ByteLevel pre-tokenizer: the alphabet is all 256 byte characters, special
// tokens take the first ids, then the most frequent adjacent pair is merged until the
// vocabulary is full. Ties are broken by the merged string, so training is deterministic.
import { BYTE_TO_CHAR, pretokenize, toByteLevel } from './byte-level.js';
import { ByteLevelBpe, type SpecialToken } from './bpe.js';

export interface TrainBpeOptions {
  vocabSize: number;
  /** Pairs seen fewer times than this are never merged. */
  minFrequency?: number;
  specialTokens?: string[];
}

export function trainByteLevelBpe(texts: Iterable<string>, o: TrainBpeOptions): ByteLevelBpe {
  const specials = o.specialTokens ?? [];
  const minFrequency = o.minFrequency ?? 2;
  // Symbol table: specials, then the byte alphabet (sorted, as HF does), then merges.
  const symbols: string[] = [...specials, ...[...BYTE_TO_CHAR].sort()];
  const symbolId = new Map(symbols.map((s, i) => [s, i]));

  // Unique pre-tokens with their counts.
  const wordCounts = new Map<string, number>();
  for (const text of texts) {
    for (const w of pretokenize(text)) {
      const bl = toByteLevel(w);
      wordCounts.set(bl, (wordCounts.get(bl) ?? 0) + 1);
    }
  }
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [w, c] of wordCounts) {
    words.push(Array.from(w, (ch) => symbolId.get(ch)!));
    counts.push(c);
  }

  // Pair statistics: pair key -> count, and pair key -> words containing it.
  const key = (a: number, b: number) => a * 1_048_576 + b;
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (wi: number, sign: number) => {
    const w = words[wi];
    for (let i = 0; i < w.length - 1; i++) {
      const k = key(w[i], w[i + 1]);
      pairCount.set(k, (pairCount.get(k) ?? 0) + sign * counts[wi]);
      if (sign > 0) {
        let s = pairWords.get(k);
        if (!s) pairWords.set(k, (s = new Set()));
        s.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1);

  const merges: Array<[string, string]> = [];
  while (symbols.length < o.vocabSize) {
    let bestKey = -1;
    let bestCount = 0;
    let bestStr = '';
    for (const [k, c] of pairCount) {
      if (c <= 0 || c < minFrequency || c < bestCount) continue;
      const s = symbols[Math.floor(k / 1_048_576)] + symbols[k % 1_048_576];
      if (c > bestCount || s < bestStr) {
        bestKey = k;
        bestCount = c;
        bestStr = s;
      }
    }
    if (bestKey < 0) break;
    const a = Math.floor(bestKey / 1_048_576);
    const b = bestKey % 1_048_576;
    const merged = symbols.length;
    symbols.push(bestStr);
    merges.push([symbols[a], symbols[b]]);
    for (const wi of pairWords.get(bestKey) ?? []) {
      const w = words[wi];
      addPairs(wi, -1);
      const next: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i < w.length - 1 && w[i] === a && w[i + 1] === b) {
          next.push(merged);
          i++;
        } else next.push(w[i]);
      }
      words[wi] = next;
      addPairs(wi, 1);
    }
    pairCount.delete(bestKey);
    pairWords.delete(bestKey);
  }

  const vocab = new Map(symbols.map((s, i) => [s, i]));
  const specialTokens: SpecialToken[] = specials.map((content, id) => ({ id, content }));
  return new ByteLevelBpe(vocab, merges, specialTokens);
}
