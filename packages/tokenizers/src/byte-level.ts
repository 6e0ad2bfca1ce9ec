// GPT-2's byte-level alphabet: every byte 0..255 is mapped to a printable unicode
// character so that BPE can work on strings without whitespace/control characters.
// Printable latin-1 bytes map to themselves; the rest to U+0100 onwards, in order.

function buildByteToChar(): string[] {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b); // '!'..'~'
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b); // '¡'..'¬'
  for (let b = 0xae; b <= 0xff; b++) keep.push(b); // '®'..'ÿ'
  const map = new Array<string>(256);
  for (const b of keep) map[b] = String.fromCharCode(b);
  let next = 256;
  for (let b = 0; b < 256; b++) if (map[b] === undefined) map[b] = String.fromCharCode(next++);
  return map;
}

export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** GPT-2's pre-tokenization regex (contractions, letters, digits, other, whitespace). */
export const GPT2_PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

/** UTF-8 bytes of `text`, each mapped to its byte-level character. */
export function toByteLevel(text: string): string {
  let out = '';
  for (const b of encoder.encode(text)) out += BYTE_TO_CHAR[b];
  return out;
}

/** Inverse of toByteLevel; invalid UTF-8 becomes U+FFFD as in the HF decoder. */
export function fromByteLevel(chars: string): string {
  const bytes: number[] = [];
  for (const ch of chars) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b !== undefined) bytes.push(b);
    else bytes.push(...encoder.encode(ch));
  }
  return decoder.decode(new Uint8Array(bytes));
}

export function pretokenize(text: string): string[] {
  return text.match(GPT2_PRETOKENIZE) ?? [];
}
