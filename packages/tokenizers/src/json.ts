// Shared helpers for reading tokenizer.json components: errors that name the component
// and the file, and regular expressions written for Rust's regex/Oniguruma.
import { FormatError } from '@anneal/core';

// tokenizer.json is a loosely typed document; components check the fields they use.
export type Json = any;

export function unsupported(kind: string, type: unknown, file: string, field: string): FormatError {
  return new FormatError(`${kind} ${JSON.stringify(type)} is not supported`, {
    file,
    field,
    hint: 'supported: see the README of @anneal/tokenizers; please report the tokenizer you need',
  });
}

/**
 * Translates a pattern from the Rust/Oniguruma dialect of tokenizer.json to a JS regex:
 * scoped case-insensitive groups `(?i:...)` (JS has no inline flags in Node 20) become
 * explicit letter classes, `\s` means Unicode White_Space as in Rust, and possessive
 * quantifiers (`?+`, `*+`, `++`, `}+`) lose the `+` (the patterns in use never need
 * backtracking into those atoms).
 */
/** Oniguruma's and Rust's `\s`: Unicode White_Space (JS's `\s` adds U+FEFF and lacks U+0085). */
export const WHITE_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

export function translateRegex(src: string): string {
  let out = '';
  let inClass = false;
  let caseless = 0; // depth of (?i: groups still open
  const open: boolean[] = []; // per open group: was it a (?i: group
  let afterQuantifier = false; // the previous token was a quantifier (so a '+' now is possessive)
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    const wasQuantifier: boolean = afterQuantifier;
    afterQuantifier = false;
    if (c === '\\') {
      // \p{..} / \P{..} / \x{..} are one token; other escapes are two characters
      const m = /^\\[pPx]\{[^}]*\}/.exec(src.slice(i));
      const esc = m ? m[0] : src.slice(i, i + 2);
      i += esc.length - 1;
      if (esc === '\\s') {
        out += inClass ? WHITE_SPACE : `[${WHITE_SPACE}]`;
        continue;
      }
      if (esc === '\\S' && !inClass) {
        out += `[^${WHITE_SPACE}]`;
        continue;
      }
      out += esc.startsWith('\\x{') ? '\\u' + esc.slice(2) : esc; // Oniguruma's \x{HHHH} is JS's \u{HHHH}
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      continue;
    }
    if (c === '(') {
      if (src.startsWith('(?i:', i)) {
        open.push(true);
        caseless++;
        out += '(?:';
        i += 3;
        continue;
      }
      open.push(false);
      out += c;
      continue;
    }
    if (c === ')') {
      if (open.pop()) caseless--;
      out += c;
      continue;
    }
    if (c === '+' && wasQuantifier) continue; // possessive: drop the '+'
    if (c === '?' || c === '*' || c === '+') {
      afterQuantifier = !wasQuantifier || c !== '?'; // a lazy '?' after a quantifier ends it
      out += c;
      continue;
    }
    if (c === '{') {
      const m = /^\{\d*(,\d*)?\}/.exec(src.slice(i));
      if (m) {
        out += m[0];
        i += m[0].length - 1;
        afterQuantifier = true;
        continue;
      }
    }
    if (caseless > 0 && /\p{L}/u.test(c) && c.toLowerCase() !== c.toUpperCase()) {
      out += `[${c.toLowerCase()}${c.toUpperCase()}]`;
      continue;
    }
    out += c;
  }
  return out;
}

/** A global regex for a `{String: s}` (literal) or `{Regex: r}` pattern. */
export function pattern(p: Json, file: string, field: string): RegExp {
  if (p && typeof p.String === 'string') return new RegExp(p.String.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'), 'gu');
  if (p && typeof p.Regex === 'string') {
    const js = translateRegex(p.Regex);
    try {
      return new RegExp(js, 'gu');
    } catch (e) {
      throw new FormatError(`regex ${JSON.stringify(p.Regex)} cannot be used: ${(e as Error).message}`, {
        file,
        field,
      });
    }
  }
  throw new FormatError(`expected {"String": ...} or {"Regex": ...}, got ${JSON.stringify(p)}`, { file, field });
}
