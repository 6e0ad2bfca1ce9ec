// Normalizers of tokenizer.json, each as in the `tokenizers` library (Rust), with offsets
// tracked through every change.
import { Normalized } from './normalized.js';
import { type Json, pattern, unsupported } from './json.js';
import { precompiledNormalizer } from './precompiled.js';

export type Normalizer = (n: Normalized) => Normalized;

const MN = /\p{Mn}/u;
const MARK = /\p{M}/u;
const MARK_ALL = /\p{M}/gu;
// Rust's char::is_control for BERT: categories Cc, Cf, Cn, Co, Cs, except \t \n \r.
const CONTROL = /[\p{Cc}\p{Cf}\p{Cn}\p{Co}\p{Cs}]/u;
const WHITESPACE = /\s/u;

export function isCjk(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** Unicode normalization; with offsets, per run of a base character and its marks. */
export function unicodeForm(n: Normalized, form: 'NFC' | 'NFD' | 'NFKC' | 'NFKD'): Normalized {
  const whole = n.text.normalize(form);
  if (whole === n.text) return n;
  if (!n.tracked) return new Normalized(whole, null, null);
  const pieces: Array<[number, number, string | undefined]> = [];
  let start = 0;
  let i = 0;
  for (const ch of n.text) {
    if (i > start && !/\p{M}/u.test(ch)) {
      pieces.push([start, i, undefined]);
      start = i;
    }
    i += ch.length;
  }
  pieces.push([start, i, undefined]);
  for (const p of pieces) {
    const seg = n.text.slice(p[0], p[1]);
    const norm = seg.normalize(form);
    if (norm !== seg) p[2] = norm;
  }
  // Composition can cross runs (e.g. decomposed Hangul); then map the whole string at once.
  if (pieces.map((p) => p[2] ?? n.text.slice(p[0], p[1])).join('') !== whole)
    return n.rebuild([[0, n.text.length, whole]]);
  return n.rebuild(pieces);
}

/** Rust's char::to_lowercase, one code point at a time (no final-sigma rule). */
export function lowercase(n: Normalized): Normalized {
  if (!n.tracked && !n.text.includes('Σ')) return new Normalized(n.text.toLowerCase(), null, null);
  return n.mapChars((c) => c.toLowerCase());
}

/** StripAccents removes every combining mark (Rust's is_combining_mark: Mn, Mc, Me). */
export function stripAccents(n: Normalized): Normalized {
  if (!MARK.test(n.text)) return n;
  if (!n.tracked) return new Normalized(n.text.replace(MARK_ALL, ''), null, null);
  return n.mapChars((c) => (MARK.test(c) ? '' : c));
}

/** BERT strips nonspacing marks only (Mn), as the original BERT code does. */
function stripNonspacingMarks(n: Normalized): Normalized {
  return MN.test(n.text) ? n.mapChars((c) => (MN.test(c) ? '' : c)) : n;
}

function bertNormalizer(j: Json): Normalizer {
  const clean = j.clean_text !== false;
  const chinese = j.handle_chinese_chars !== false;
  const lower = j.lowercase !== false;
  const strip = j.strip_accents ?? lower;
  return (n) => {
    if (clean)
      n = n.mapChars((c) =>
        c === '\0' || c === '\ufffd' || (CONTROL.test(c) && c !== '\t' && c !== '\n' && c !== '\r')
          ? ''
          : WHITESPACE.test(c)
            ? ' '
            : c,
      );
    if (chinese) n = n.mapChars((c) => (isCjk(c.codePointAt(0)!) ? ` ${c} ` : c));
    if (strip) n = stripNonspacingMarks(unicodeForm(n, 'NFD'));
    if (lower) n = lowercase(n);
    return n;
  };
}

export function buildNormalizer(
  j: Json | null | undefined,
  file: string,
  field = 'normalizer',
): Normalizer | undefined {
  if (!j) return undefined;
  switch (j.type) {
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
      return (n) => unicodeForm(n, j.type);
    case 'Lowercase':
      return lowercase;
    case 'StripAccents':
      return stripAccents;
    case 'BertNormalizer':
      return bertNormalizer(j);
    case 'Replace': {
      const re = pattern(j.pattern, file, `${field}.pattern`);
      return (n) => n.replace(re, j.content);
    }
    case 'Prepend':
      return (n) => n.prepend(j.prepend);
    case 'Strip': {
      const left = j.strip_left !== false;
      const right = j.strip_right !== false;
      return (n) => {
        const t = n.text;
        let a = 0;
        let b = t.length;
        if (left) while (a < b && WHITESPACE.test(t[a])) a++;
        if (right) while (b > a && WHITESPACE.test(t[b - 1])) b--;
        return a === 0 && b === t.length ? n : n.slice(a, b);
      };
    }
    case 'Precompiled':
      // an empty charsmap (some converted tokenizers) normalizes nothing
      return precompiledNormalizer(j.precompiled_charsmap, file, field) ?? ((n) => n);
    case 'Sequence': {
      const list = (j.normalizers as Json[])
        .map((x, i) => buildNormalizer(x, file, `${field}.normalizers[${i}]`))
        .filter((f): f is Normalizer => f !== undefined);
      return (n) => list.reduce((acc, f) => f(acc), n);
    }
    default:
      throw unsupported('normalizer', j.type, file, field);
  }
}
