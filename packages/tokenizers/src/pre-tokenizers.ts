// Pre-tokenizers of tokenizer.json: each splits a normalized piece into the words the
// model sees, as in the `tokenizers` library, keeping offsets.
import { BYTE_TO_CHAR, GPT2_PRETOKENIZE, toByteLevel } from './byte-level.js';
import { Normalized } from './normalized.js';
import { type Json, pattern, unsupported } from './json.js';

export type PreTokenizer = (n: Normalized, index: number) => Normalized[];
export type Behavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';
type Piece = [number, number, boolean]; // [from, to, isMatch]

/** Splits `n` at the given matches (pieces covering the text) by a `tokenizers` split behaviour. */
export function splitPieces(n: Normalized, matches: Piece[], behavior: Behavior): Normalized[] {
  let out: Array<[number, number, boolean]> = [];
  switch (behavior) {
    case 'Removed':
      out = matches.filter((m) => !m[2]);
      break;
    case 'Isolated':
      out = matches;
      break;
    case 'MergedWithPrevious': {
      let prev = false;
      for (const [a, b, m] of matches) {
        if (m && !prev && out.length) out[out.length - 1][1] = b;
        else out.push([a, b, false]);
        prev = m;
      }
      break;
    }
    case 'MergedWithNext': {
      let prev = false;
      for (let i = matches.length - 1; i >= 0; i--) {
        const [a, b, m] = matches[i];
        if (m && !prev && out.length) out[out.length - 1][0] = a;
        else out.push([a, b, false]);
        prev = m;
      }
      out.reverse();
      break;
    }
    case 'Contiguous': {
      let prev = false;
      for (const [a, b, m] of matches) {
        if (m === prev && out.length) out[out.length - 1][1] = b;
        else out.push([a, b, false]);
        prev = m;
      }
      break;
    }
    default:
      throw new Error(`unknown split behaviour ${String(behavior)}`);
  }
  return out.filter(([a, b]) => b > a).map(([a, b]) => n.slice(a, b));
}

/** Pieces of `text` at the matches of a global regex. */
export function regexPieces(text: string, re: RegExp, invert = false): Piece[] {
  const pieces: Piece[] = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    const end = m.index + m[0].length;
    if (end === m.index) continue;
    if (m.index > last) pieces.push([last, m.index, invert]);
    pieces.push([m.index, end, !invert]);
    last = end;
  }
  if (last < text.length) pieces.push([last, text.length, invert]);
  return pieces;
}

/** Pieces of `text` where each code point matching `test` is a match. */
export function charPieces(text: string, test: (ch: string) => boolean): Piece[] {
  const pieces: Piece[] = [];
  let last = 0;
  let i = 0;
  for (const ch of text) {
    if (test(ch)) {
      if (i > last) pieces.push([last, i, false]);
      pieces.push([i, i + ch.length, true]);
      last = i + ch.length;
    }
    i += ch.length;
  }
  if (last < text.length) pieces.push([last, text.length, false]);
  return pieces;
}

const encoder = new TextEncoder();

/** UTF-8 bytes as GPT-2's byte characters; each byte keeps its character's offsets. */
export function byteLevel(n: Normalized): Normalized {
  if (!n.tracked) return new Normalized(toByteLevel(n.text), null, null);
  const pieces: Array<[number, number, string | undefined]> = [];
  let i = 0;
  for (const ch of n.text) {
    let s = '';
    for (const b of encoder.encode(ch)) s += BYTE_TO_CHAR[b];
    pieces.push([i, i + ch.length, s === ch ? undefined : s]);
    i += ch.length;
  }
  return n.rebuild(pieces);
}

const WS = /\s/u;
const isWhitespace = (c: string) => WS.test(c);
const PUNCT = /\p{P}/u;
/** BERT's punctuation: ASCII punctuation (symbols included) or any Unicode P category. */
export const isPunctuation = (c: string) => {
  const cp = c.codePointAt(0)!;
  return (
    (cp >= 33 && cp <= 47) ||
    (cp >= 58 && cp <= 64) ||
    (cp >= 91 && cp <= 96) ||
    (cp >= 123 && cp <= 126) ||
    PUNCT.test(c)
  );
};
const NUMERIC = /[\p{Nd}\p{Nl}\p{No}]/u;
// Rust regex's \w is Unicode-aware; JS's is ASCII only.
const WHITESPACE_RE =
  /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]+|[^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}\s]+/gu;

function behaviorOf(j: Json, file: string, field: string, fallback: Behavior): Behavior {
  const b = j.behavior ?? fallback;
  if (!['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'].includes(b))
    throw unsupported('split behavior', b, file, `${field}.behavior`);
  return b;
}

export function buildPreTokenizer(
  j: Json | null | undefined,
  file: string,
  field = 'pre_tokenizer',
): PreTokenizer | undefined {
  if (!j) return undefined;
  switch (j.type) {
    case 'ByteLevel': {
      const prefix = j.add_prefix_space === true;
      const regex = j.use_regex !== false;
      return (n) => {
        if (prefix && !n.text.startsWith(' ')) n = n.prepend(' ');
        const words = regex ? splitPieces(n, regexPieces(n.text, GPT2_PRETOKENIZE), 'Isolated') : [n];
        return words.map(byteLevel);
      };
    }
    case 'Split': {
      const re = pattern(j.pattern, file, `${field}.pattern`);
      const behavior = behaviorOf(j, file, field, 'Isolated');
      const invert = j.invert === true;
      return (n) => splitPieces(n, regexPieces(n.text, re, invert), behavior);
    }
    case 'Metaspace': {
      const rep: string = j.replacement ?? '▁';
      const scheme: string = j.prepend_scheme ?? (j.add_prefix_space === false ? 'never' : 'always');
      const split = j.split !== false;
      return (n, index) => {
        n = n.replace(/ /g, rep);
        if (!n.text.startsWith(rep) && (scheme === 'always' || (scheme === 'first' && index === 0))) n = n.prepend(rep);
        return split
          ? splitPieces(
              n,
              charPieces(n.text, (c) => c === rep),
              'MergedWithNext',
            )
          : [n];
      };
    }
    case 'BertPreTokenizer':
      return (n) =>
        splitPieces(n, charPieces(n.text, isWhitespace), 'Removed').flatMap((w) =>
          splitPieces(w, charPieces(w.text, isPunctuation), 'Isolated'),
        );
    case 'Whitespace':
      return (n) => splitPieces(n, regexPieces(n.text, WHITESPACE_RE, true), 'Removed');
    case 'WhitespaceSplit':
      return (n) => splitPieces(n, charPieces(n.text, isWhitespace), 'Removed');
    case 'CharDelimiterSplit':
      return (n) =>
        splitPieces(
          n,
          charPieces(n.text, (c) => c === j.delimiter),
          'Removed',
        );
    case 'Digits': {
      const individual = j.individual_digits === true;
      return (n) =>
        splitPieces(
          n,
          charPieces(n.text, (c) => NUMERIC.test(c)),
          individual ? 'Isolated' : 'Contiguous',
        );
    }
    case 'Punctuation': {
      const behavior = behaviorOf(j, file, field, 'Isolated');
      return (n) => splitPieces(n, charPieces(n.text, isPunctuation), behavior);
    }
    case 'Sequence': {
      const list = (j.pretokenizers as Json[])
        .map((x, i) => buildPreTokenizer(x, file, `${field}.pretokenizers[${i}]`))
        .filter((f): f is PreTokenizer => f !== undefined);
      return (n, index) => list.reduce((words, f) => words.flatMap((w) => f(w, index)), [n]);
    }
    default:
      throw unsupported('pre_tokenizer', j.type, file, field);
  }
}
