// SentencePiece's precompiled normalization (the `Precompiled` normalizer of tokenizer.json,
// from a .model's normalizer_spec.precompiled_charsmap: T5, mT5, XLM-R, ALBERT...). The
// charsmap is a darts-clone double-array trie over UTF-8 byte strings whose values are offsets
// into a pool of NUL-terminated replacements, laid out as
//   [trie size in bytes: u32 LE][trie units: u32 LE × size/4][replacement pool].
// It is applied as the `tokenizers` library applies it: grapheme by grapheme, the whole
// grapheme's replacement when it is shorter than 6 bytes and the trie has one, else code point
// by code point. (SentencePiece itself takes the longest match over the byte stream; the two
// agree on ordinary text.)
import { FormatError } from '@anneal/core';
import type { Normalized } from './normalized.js';

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

// darts-clone's unit layout
const hasLeaf = (u: number) => ((u >>> 8) & 1) === 1;
const valueOf = (u: number) => u & 0x7fffffff;
const labelOf = (u: number) => (u & 0x800000ff) >>> 0;
const offsetOf = (u: number) => (u >>> 10) << ((u & (1 << 9)) >>> 6);

export class PrecompiledCharsmap {
  private readonly units: Uint32Array;
  private readonly pool: Uint8Array;
  private readonly cache = new Map<string, string | null>();

  /** Validates the layout (sizes, and every offset the trie can reach lies in the pool) before use. */
  constructor(blob: Uint8Array, where: { file: string; field: string }) {
    const bad = (why: string) =>
      new FormatError(`precompiled_charsmap: ${why}`, {
        ...where,
        hint: 'the charsmap is copied from a SentencePiece .model (normalizer_spec.precompiled_charsmap), base64-encoded',
      });
    if (blob.length < 4) throw bad(`${blob.length} bytes, too short for its header`);
    const size = new DataView(blob.buffer, blob.byteOffset, blob.length).getUint32(0, true);
    if (size % 4 !== 0 || size === 0 || 4 + size > blob.length)
      throw bad(
        `the trie size ${size} is not a positive multiple of 4 within the ${blob.length - 4} bytes that follow`,
      );
    this.units = new Uint32Array(size / 4);
    const view = new DataView(blob.buffer, blob.byteOffset + 4, size);
    for (let i = 0; i < this.units.length; i++) this.units[i] = view.getUint32(4 * i, true);
    this.pool = blob.subarray(4 + size);
  }

  /** Replacement offsets of every key that is a prefix of `bytes` (shortest first), as darts' commonPrefixSearch. */
  private prefixMatches(bytes: Uint8Array): number[] {
    const u = this.units;
    const found: number[] = [];
    let pos = offsetOf(u[0]);
    for (const c of bytes) {
      if (c === 0) break;
      pos ^= c;
      if (pos >= u.length) return found;
      const unit = u[pos];
      if (labelOf(unit) !== c) return found;
      pos ^= offsetOf(unit);
      if (hasLeaf(unit)) {
        if (pos >= u.length) return found;
        found.push(valueOf(u[pos]));
      }
    }
    return found;
  }

  /** The replacement of `chunk` (its first matching prefix's, as `tokenizers` takes it), or undefined. */
  transform(chunk: string): string | undefined {
    const hit = this.cache.get(chunk);
    if (hit !== undefined) return hit ?? undefined;
    const [start] = this.prefixMatches(utf8.encode(chunk));
    let out: string | null = null;
    if (start !== undefined && start < this.pool.length) {
      let end = start;
      while (end < this.pool.length && this.pool[end] !== 0) end++;
      try {
        out = fromUtf8.decode(this.pool.subarray(start, end));
      } catch {
        out = null; // not UTF-8: no replacement, as a malformed entry is skipped
      }
    }
    if (this.cache.size < 65536) this.cache.set(chunk, out);
    return out ?? undefined;
  }

  /** Normalizes n: each grapheme (under 6 UTF-8 bytes) replaced whole where the map has it, else each code point. */
  apply(n: Normalized): Normalized {
    const pieces: Array<[number, number, string | undefined]> = [];
    let changed = false;
    for (const { segment, index } of graphemes.segment(n.text)) {
      if (utf8Length(segment) < 6) {
        const rep = this.transform(segment);
        if (rep !== undefined) {
          pieces.push([index, index + segment.length, rep]);
          changed = true;
          continue;
        }
      }
      let i = index;
      for (const ch of segment) {
        const rep = this.transform(ch);
        pieces.push([i, i + ch.length, rep]);
        if (rep !== undefined) changed = true;
        i += ch.length;
      }
    }
    return changed ? n.rebuild(pieces) : n;
  }
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

/** The Precompiled normalizer of a tokenizer.json (`precompiled_charsmap` base64; null or empty: none). */
export function precompiledNormalizer(
  charsmap: unknown,
  file: string,
  field: string,
): ((n: Normalized) => Normalized) | undefined {
  if (charsmap === null || charsmap === undefined || charsmap === '') return undefined;
  if (typeof charsmap !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(charsmap))
    throw new FormatError('precompiled_charsmap is not a base64 string', {
      file,
      field: `${field}.precompiled_charsmap`,
    });
  const map = new PrecompiledCharsmap(Buffer.from(charsmap, 'base64'), {
    file,
    field: `${field}.precompiled_charsmap`,
  });
  return (n) => map.apply(n);
}
