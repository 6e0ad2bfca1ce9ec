// Decoders of tokenizer.json: token strings back to text, each a step of a chain as in
// the `tokenizers` library (a step maps the list of pieces to a new list; the result is
// their concatenation).
import { fromByteLevel } from './byte-level.js';
import { type Json, pattern, unsupported } from './json.js';

export type Decoder = (tokens: string[]) => string[];

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

/** transformers' clean_up_tokenization: no space before punctuation and contractions. */
export function cleanUpTokenization(s: string): string {
  return s
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

function byteLevelDecode(tokens: string[]): string[] {
  return [fromByteLevel(tokens.join(''))];
}

function byteFallback(tokens: string[]): string[] {
  const out: string[] = [];
  let pending: number[] = [];
  const flush = () => {
    if (!pending.length) return;
    // Invalid UTF-8 gives one U+FFFD per byte, as in `tokenizers`.
    try {
      out.push(new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(pending)));
    } catch {
      for (let i = 0; i < pending.length; i++) out.push('\ufffd');
    }
    pending = [];
  };
  for (const t of tokens) {
    const m = BYTE_TOKEN.exec(t);
    if (m) pending.push(parseInt(m[1], 16));
    else {
      flush();
      out.push(t);
    }
  }
  flush();
  return out;
}

export function buildDecoder(j: Json | null | undefined, file: string, field = 'decoder'): Decoder | undefined {
  if (!j) return undefined;
  switch (j.type) {
    case 'ByteLevel':
      return byteLevelDecode;
    case 'Metaspace': {
      const rep: string = j.replacement ?? '▁';
      const scheme: string = j.prepend_scheme ?? (j.add_prefix_space === false ? 'never' : 'always');
      return (tokens) =>
        tokens.map((t, i) => {
          const s = t.replaceAll(rep, ' ');
          return i === 0 && scheme !== 'never' && s.startsWith(' ') ? s.slice(1) : s;
        });
    }
    case 'WordPiece': {
      const prefix: string = j.prefix ?? '##';
      const cleanup = j.cleanup !== false;
      return (tokens) =>
        tokens.map((t, i) => {
          let s = i > 0 ? (t.startsWith(prefix) ? t.slice(prefix.length) : ' ' + t) : t;
          if (cleanup) s = cleanUpTokenization(s);
          return s;
        });
    }
    case 'ByteFallback':
      return byteFallback;
    case 'Fuse':
      return (tokens) => [tokens.join('')];
    case 'Strip': {
      const content: string = j.content;
      return (tokens) =>
        tokens.map((t) => {
          let a = 0;
          let b = t.length;
          for (let k = 0; k < j.start && t.startsWith(content, a); k++) a += content.length;
          for (let k = 0; k < j.stop && b - content.length >= a && t.endsWith(content, b); k++) b -= content.length;
          return t.slice(a, b);
        });
    }
    case 'Replace': {
      const re = pattern(j.pattern, file, `${field}.pattern`);
      return (tokens) => tokens.map((t) => t.replace(re, j.content));
    }
    case 'BPEDecoder': {
      const suffix: string = j.suffix ?? '</w>';
      return (tokens) => tokens.map((t, i) => t.replaceAll(suffix, i === tokens.length - 1 ? '' : ' '));
    }
    case 'Sequence': {
      const list = (j.decoders as Json[])
        .map((x, i) => buildDecoder(x, file, `${field}.decoders[${i}]`))
        .filter((f): f is Decoder => f !== undefined);
      return (tokens) => list.reduce((acc, f) => f(acc), tokens);
    }
    default:
      throw unsupported('decoder', j.type, file, field);
  }
}
