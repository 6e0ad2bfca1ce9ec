// Added tokens (special tokens like <|endoftext|> or [CLS], and user-added words): found
// in the text before the model runs, leftmost-longest, with the `tokenizers` options
// lstrip/rstrip (swallow neighbouring whitespace), single_word (only as a whole word) and
// normalized (matched in the normalized text rather than the raw one).

export interface AddedToken {
  id: number;
  content: string;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** A piece of text: either plain text [from, to) or an added token's id. */
export interface Segment {
  from: number;
  to: number;
  id?: number;
}

const WS = /\s/u;
const WORD = /[\p{L}\p{N}_]/u;

export class AddedTokenMatcher {
  private re: RegExp | undefined;
  private byContent = new Map<string, AddedToken>();

  constructor(tokens: AddedToken[]) {
    for (const t of tokens) this.byContent.set(t.content, t);
    if (tokens.length) {
      // Longest first: JS alternation takes the first alternative that matches at the
      // leftmost position, which makes this leftmost-longest.
      const alts = [...tokens]
        .sort((a, b) => b.content.length - a.content.length)
        .map((t) => t.content.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));
      this.re = new RegExp(alts.join('|'), 'gu');
    }
  }

  get size(): number {
    return this.byContent.size;
  }

  /** Splits `text` into plain segments and added-token segments. */
  split(text: string): Segment[] {
    if (!this.re) return [{ from: 0, to: text.length }];
    const out: Segment[] = [];
    let last = 0;
    for (const m of text.matchAll(this.re)) {
      const tok = this.byContent.get(m[0])!;
      let start = m.index;
      let stop = start + m[0].length;
      if (start < last) continue; // inside a previous match's rstrip
      if (tok.singleWord) {
        const before = start > 0 && WORD.test(String.fromCodePoint(text.codePointAt(start - 1)!));
        const after = stop < text.length && WORD.test(String.fromCodePoint(text.codePointAt(stop)!));
        if (before || after) continue;
      }
      if (tok.lstrip) while (start > last && WS.test(text[start - 1])) start--;
      if (tok.rstrip) while (stop < text.length && WS.test(text[stop])) stop++;
      if (start > last) out.push({ from: last, to: start });
      out.push({ from: start, to: stop, id: tok.id });
      last = stop;
    }
    if (last < text.length || out.length === 0) out.push({ from: last, to: text.length });
    return out;
  }
}
