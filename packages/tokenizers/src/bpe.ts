// A byte-level BPE tokenizer (GPT-2 style): pre-tokenize with GPT-2's regex, map bytes
// to characters, then apply merges in rank order (Sennrich et al., 2016).
import { FormatError } from '@anneal/core';
import { fromByteLevel, pretokenize, toByteLevel } from './byte-level.js';

export interface SpecialToken {
  id: number;
  content: string;
}

export class ByteLevelBpe {
  /** token string -> id */
  readonly vocab: Map<string, number>;
  /** id -> token string */
  readonly idToToken: string[];
  /** "a b" -> rank (lower merges first) */
  readonly ranks: Map<string, number>;
  readonly merges: Array<[string, string]>;
  readonly specialTokens: SpecialToken[];
  private cache = new Map<string, number[]>();
  private specialSplit: RegExp | undefined;

  constructor(vocab: Map<string, number>, merges: Array<[string, string]>, specialTokens: SpecialToken[] = []) {
    this.vocab = vocab;
    this.merges = merges;
    this.ranks = new Map(merges.map(([a, b], i) => [`${a} ${b}`, i]));
    this.specialTokens = specialTokens;
    this.idToToken = [];
    for (const [tok, id] of vocab) this.idToToken[id] = tok;
    for (const s of specialTokens) this.idToToken[s.id] = s.content;
    if (specialTokens.length) {
      const esc = specialTokens.map((s) => s.content.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      this.specialSplit = new RegExp(`(${esc.join('|')})`);
    }
  }

  get vocabSize(): number {
    return this.idToToken.length;
  }

  tokenId(token: string): number | undefined {
    return this.specialTokens.find((s) => s.content === token)?.id ?? this.vocab.get(token);
  }

  /** BPE on one pre-token (already in byte-level characters). */
  private bpe(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    let parts = Array.from(word);
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const r = this.ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      // Merge every occurrence of the best pair, left to right.
      const [a, b] = [parts[best], parts[best + 1]];
      const next: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (i < parts.length - 1 && parts[i] === a && parts[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(parts[i]);
      }
      parts = next;
    }
    const ids = parts.map((p) => {
      const id = this.vocab.get(p);
      if (id === undefined) throw new FormatError(`token ${JSON.stringify(p)} produced by the merges is not in the vocabulary`);
      return id;
    });
    if (this.cache.size < 100_000) this.cache.set(word, ids);
    return ids;
  }

  /** Text to token ids. Special tokens written in the text are matched first. */
  encode(text: string): number[] {
    const out: number[] = [];
    const pieces = this.specialSplit ? text.split(this.specialSplit) : [text];
    for (const piece of pieces) {
      if (!piece) continue;
      const special = this.specialTokens.find((s) => s.content === piece);
      if (special) {
        out.push(special.id);
        continue;
      }
      for (const word of pretokenize(piece)) out.push(...this.bpe(toByteLevel(word)));
    }
    return out;
  }

  decode(ids: ArrayLike<number>, { skipSpecialTokens = false } = {}): string {
    let text = '';
    let chars = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const special = this.specialTokens.find((s) => s.id === id);
      if (special) {
        text += fromByteLevel(chars);
        chars = '';
        if (!skipSpecialTokens) text += special.content;
        continue;
      }
      const tok = this.idToToken[id];
      if (tok === undefined) throw new FormatError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      chars += tok;
    }
    return text + fromByteLevel(chars);
  }
}
