// A string being normalized and split, with the span of the original text that each of
// its UTF-16 units came from (the `tokenizers` library's NormalizedString). Offsets are
// JS string indices (UTF-16 units) into the original text, so `text.slice(start, end)`
// gives a token's source; Python's `tokenizers` reports code-point indices instead.
// Alignment is tracked only when asked for (offsets cost time on the hot path).

export class Normalized {
  constructor(
    public text: string,
    /** starts[i], ends[i]: the original span of unit i (null when offsets are not tracked). */
    public starts: Int32Array | null,
    public ends: Int32Array | null,
  ) {}

  static from(text: string, track: boolean, base = 0): Normalized {
    if (!track) return new Normalized(text, null, null);
    const starts = new Int32Array(text.length);
    const ends = new Int32Array(text.length);
    for (let i = 0; i < text.length; i++) {
      starts[i] = base + i;
      ends[i] = base + i + 1;
    }
    return new Normalized(text, starts, ends);
  }

  get tracked(): boolean {
    return this.starts !== null;
  }

  /** Original span of units [from, to); an empty range maps to the position before `from`. */
  span(from: number, to: number): [number, number] {
    const s = this.starts!;
    const e = this.ends!;
    if (to > from) return [s[from], e[to - 1]];
    if (from < s.length) return [s[from], s[from]];
    return s.length ? [e[s.length - 1], e[s.length - 1]] : [0, 0];
  }

  slice(from: number, to: number): Normalized {
    if (!this.starts) return new Normalized(this.text.slice(from, to), null, null);
    return new Normalized(this.text.slice(from, to), this.starts.slice(from, to), this.ends!.slice(from, to));
  }

  /**
   * Rebuilds the string from pieces covering it in order: [from, to, replacement]. A piece
   * whose replacement is undefined is kept as is (unit-to-unit alignment); otherwise every
   * unit of the replacement maps to the original span of [from, to).
   */
  rebuild(pieces: Array<[number, number, string | undefined]>): Normalized {
    let text = '';
    if (!this.starts) {
      for (const [from, to, rep] of pieces) text += rep ?? this.text.slice(from, to);
      return new Normalized(text, null, null);
    }
    const starts: number[] = [];
    const ends: number[] = [];
    for (const [from, to, rep] of pieces) {
      if (rep === undefined) {
        text += this.text.slice(from, to);
        for (let i = from; i < to; i++) {
          starts.push(this.starts[i]);
          ends.push(this.ends![i]);
        }
      } else {
        text += rep;
        const [s, e] = this.span(from, to);
        for (let i = 0; i < rep.length; i++) {
          starts.push(s);
          ends.push(e);
        }
      }
    }
    return new Normalized(text, Int32Array.from(starts), Int32Array.from(ends));
  }

  /** Applies f to each code point (f returns its replacement, possibly empty). */
  mapChars(f: (ch: string) => string): Normalized {
    const pieces: Array<[number, number, string | undefined]> = [];
    let i = 0;
    for (const ch of this.text) {
      const rep = f(ch);
      pieces.push([i, i + ch.length, rep === ch ? undefined : rep]);
      i += ch.length;
    }
    return this.rebuild(pieces);
  }

  /** Replaces every match of `re` (global) by `content`. */
  replace(re: RegExp, content: string): Normalized {
    const pieces: Array<[number, number, string | undefined]> = [];
    let last = 0;
    for (const m of this.text.matchAll(re)) {
      if (m[0].length === 0) continue;
      if (m.index > last) pieces.push([last, m.index, undefined]);
      pieces.push([m.index, m.index + m[0].length, content]);
      last = m.index + m[0].length;
    }
    if (last === 0 && pieces.length === 0) return this;
    if (last < this.text.length) pieces.push([last, this.text.length, undefined]);
    return this.rebuild(pieces);
  }

  prepend(s: string): Normalized {
    if (!this.text.length) return this;
    if (!this.starts) return new Normalized(s + this.text, null, null);
    // The prefix belongs to the first character, as in `tokenizers`.
    return this.rebuild([
      [0, 1, s + this.text[0]],
      [1, this.text.length, undefined],
    ]);
  }
}
