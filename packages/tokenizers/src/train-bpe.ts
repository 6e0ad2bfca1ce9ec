// Training BPE vocabularies as the `tokenizers` library's BpeTrainer does: count the
// pre-tokenized words, start from their characters (plus an initial alphabet), then
// repeatedly merge the most frequent adjacent pair (ties: the lowest pair of ids) until
// the vocabulary is full or no pair reaches minFrequency. A lazily updated max-heap over
// pair counts and an index of the words holding each pair keep this near-linear.
// Two tokenizers are built on it: byte-level BPE (GPT-2's pipeline) and WordPiece (BERT's).
import { BYTE_TO_CHAR } from './byte-level.js';
import { defaultConfig, fromTokenizerJson } from './load.js';
import { Bpe, WordPiece } from './models.js';
import { Normalized } from './normalized.js';
import { buildNormalizer } from './normalizers.js';
import { buildPreTokenizer } from './pre-tokenizers.js';
import type { Tokenizer } from './tokenizer.js';

export interface TrainOptions {
  vocabSize: number;
  /** A pair seen fewer times than this is never merged (default 2). */
  minFrequency?: number;
  /** Added first, with ids 0, 1, ... and never split. */
  specialTokens?: string[];
  /** Characters always in the vocabulary (byte-level: all 256 byte characters). */
  initialAlphabet?: string[];
  /** Keep at most this many distinct characters (the most frequent). */
  limitAlphabet?: number;
  /** Called now and then with what has been done. */
  onProgress?: (p: { phase: 'count' | 'merge'; done: number; total?: number }) => void;
}

export type TextSource = Iterable<string> | AsyncIterable<string>;

interface BpeCore {
  vocab: Map<string, number>;
  merges: Array<[string, string]>;
}

/** A max-heap of (count, left, right): higher count first, then the lower pair of ids. */
class PairHeap {
  private items: Array<[number, number, number]> = [];
  get size(): number {
    return this.items.length;
  }
  private better(x: [number, number, number], y: [number, number, number]): boolean {
    return x[0] !== y[0] ? x[0] > y[0] : x[1] !== y[1] ? x[1] < y[1] : x[2] < y[2];
  }
  push(item: [number, number, number]): void {
    const h = this.items;
    h.push(item);
    for (let i = h.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!this.better(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }
  pop(): [number, number, number] {
    const h = this.items;
    const top = h[0];
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.better(h[l], h[m])) m = l;
        if (r < h.length && this.better(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

const KEY = 1 << 21; // pair key = left * KEY + right (vocabularies below 2M)

/** BpeTrainer over word counts; `prefix` marks non-initial characters (WordPiece's "##"). */
export function trainBpeCore(wordCounts: Map<string, number>, o: TrainOptions, prefix = ''): BpeCore {
  const minFrequency = o.minFrequency ?? 2;
  const tokens: string[] = [];
  const ids = new Map<string, number>();
  const add = (t: string) => {
    if (!ids.has(t)) {
      ids.set(t, tokens.length);
      tokens.push(t);
    }
    return ids.get(t)!;
  };
  for (const s of o.specialTokens ?? []) add(s);

  // Alphabet: every character of the corpus (the most frequent limitAlphabet of them) and
  // the initial alphabet, in code point order.
  const charCounts = new Map<string, number>();
  for (const [w, c] of wordCounts) for (const ch of w) charCounts.set(ch, (charCounts.get(ch) ?? 0) + c);
  for (const ch of o.initialAlphabet ?? []) charCounts.set(ch, Infinity);
  let alphabet = [...charCounts.keys()];
  if (o.limitAlphabet !== undefined && alphabet.length > o.limitAlphabet) {
    alphabet = alphabet.sort((a, b) => charCounts.get(b)! - charCounts.get(a)!).slice(0, o.limitAlphabet);
  }
  const kept = new Set(alphabet);
  for (const ch of alphabet.sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!)) add(ch);

  // Words as symbol ids; characters outside the alphabet are dropped, as in `tokenizers`.
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [w, c] of wordCounts) {
    const syms: number[] = [];
    let first = true;
    for (const ch of w) {
      if (!kept.has(ch)) continue;
      syms.push(add(first || !prefix ? ch : prefix + ch));
      first = false;
    }
    words.push(syms);
    counts.push(c);
  }

  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  words.forEach((w, wi) => {
    for (let i = 0; i + 1 < w.length; i++) {
      const k = w[i] * KEY + w[i + 1];
      pairCount.set(k, (pairCount.get(k) ?? 0) + counts[wi]);
      let s = where.get(k);
      if (!s) where.set(k, (s = new Set()));
      s.add(wi);
    }
  });
  const heap = new PairHeap();
  for (const [k, c] of pairCount) if (c > 0) heap.push([c, Math.floor(k / KEY), k % KEY]);

  const merges: Array<[string, string]> = [];
  while (tokens.length < o.vocabSize && heap.size) {
    const top = heap.pop();
    const k = top[1] * KEY + top[2];
    const now = pairCount.get(k) ?? 0;
    if (top[0] !== now) {
      if (now > 0) heap.push([now, top[1], top[2]]);
      continue;
    }
    if (now < 1 || now < minFrequency) break;
    const [a, b] = [top[1], top[2]];
    const right = tokens[b];
    const merged = add(tokens[a] + (prefix && right.startsWith(prefix) ? right.slice(prefix.length) : right));
    merges.push([tokens[a], right]);
    // Each word holding the pair: take its pairs out, merge, put the new pairs in.
    const grown = new Set<number>();
    for (const wi of where.get(k) ?? []) {
      const w = words[wi];
      const c = counts[wi];
      let hit = false;
      for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) hit = true;
      if (!hit) continue;
      for (let i = 0; i + 1 < w.length; i++) {
        const kk = w[i] * KEY + w[i + 1];
        pairCount.set(kk, pairCount.get(kk)! - c);
      }
      const out: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(w[i]);
      }
      words[wi] = out;
      for (let i = 0; i + 1 < out.length; i++) {
        const kk = out[i] * KEY + out[i + 1];
        pairCount.set(kk, (pairCount.get(kk) ?? 0) + c);
        if (out[i] === merged || out[i + 1] === merged) {
          let s = where.get(kk);
          if (!s) where.set(kk, (s = new Set()));
          s.add(wi);
          grown.add(kk);
        }
      }
    }
    pairCount.delete(k);
    where.delete(k);
    for (const kk of grown) {
      const cnt = pairCount.get(kk) ?? 0;
      if (cnt > 0) heap.push([cnt, Math.floor(kk / KEY), kk % KEY]);
    }
    if (merges.length % 500 === 0) o.onProgress?.({ phase: 'merge', done: tokens.length, total: o.vocabSize });
  }
  return { vocab: ids, merges };
}

/** Counts the words `split` makes of each text of the source. */
async function countWords(
  source: TextSource,
  split: (text: string) => string[],
  o: TrainOptions,
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let done = 0;
  for await (const text of source as AsyncIterable<string>) {
    for (const w of split(text)) counts.set(w, (counts.get(w) ?? 0) + 1);
    done += text.length;
    o.onProgress?.({ phase: 'count', done });
  }
  return counts;
}

export interface TrainTokenizerOptions extends TrainOptions {
  /** Special-token roles for tokenizer_config.json (e.g. eosToken: '<|endoftext|>'). */
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
  unkToken?: string;
  modelMaxLength?: number;
}

function configOf(o: TrainTokenizerOptions) {
  return {
    ...defaultConfig(),
    bosToken: o.bosToken,
    eosToken: o.eosToken,
    padToken: o.padToken,
    unkToken: o.unkToken,
    modelMaxLength: o.modelMaxLength ?? 1e30,
  };
}

const special = (content: string, id: number) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
});

/** Byte-level BPE (GPT-2's pipeline): words by GPT-2's regex, all 256 bytes in the alphabet. */
export async function trainByteLevelBpe(source: TextSource, o: TrainTokenizerOptions): Promise<Tokenizer> {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const pre = buildPreTokenizer(byteLevel, 'trainer')!;
  const counts = await countWords(source, (t) => pre(Normalized.from(t, false), 0).map((w) => w.text), o);
  const { vocab, merges } = trainBpeCore(counts, {
    ...o,
    initialAlphabet: [...BYTE_TO_CHAR, ...(o.initialAlphabet ?? [])],
  });
  const json = {
    added_tokens: (o.specialTokens ?? []).map((s) => special(s, vocab.get(s)!)),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: new Bpe(vocab, merges).toJson(),
  };
  return fromTokenizerJson(json, 'trained tokenizer.json', configOf(o));
}

/** WordPiece (BERT's pipeline: BertNormalizer, BertPreTokenizer, "##" continuations, [CLS]/[SEP]). */
export async function trainWordPiece(
  source: TextSource,
  o: TrainTokenizerOptions & { lowercase?: boolean },
): Promise<Tokenizer> {
  const specials = o.specialTokens ?? ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const normalizerJson = {
    type: 'BertNormalizer',
    clean_text: true,
    handle_chinese_chars: true,
    strip_accents: null,
    lowercase: o.lowercase !== false,
  };
  const norm = buildNormalizer(normalizerJson, 'trainer')!;
  const pre = buildPreTokenizer({ type: 'BertPreTokenizer' }, 'trainer')!;
  const counts = await countWords(source, (t) => pre(norm(Normalized.from(t, false)), 0).map((w) => w.text), o);
  const { vocab } = trainBpeCore(counts, { ...o, specialTokens: specials }, '##');
  const unk = o.unkToken ?? '[UNK]';
  const [cls, sep] = ['[CLS]', '[SEP]'];
  const post =
    vocab.has(cls) && vocab.has(sep)
      ? { type: 'BertProcessing', sep: [sep, vocab.get(sep)], cls: [cls, vocab.get(cls)] }
      : null;
  const json = {
    added_tokens: specials.map((s) => special(s, vocab.get(s)!)),
    normalizer: normalizerJson,
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: post,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: new WordPiece(vocab, unk).toJson(),
  };
  const has = (t: string) => (vocab.has(t) ? t : undefined);
  return fromTokenizerJson(json, 'trained tokenizer.json', {
    ...configOf({ ...o, unkToken: unk, padToken: o.padToken ?? has('[PAD]') }),
    clsToken: has(cls),
    sepToken: has(sep),
    maskToken: has('[MASK]'),
    tokenizerClass: 'BertTokenizerFast',
  });
}
