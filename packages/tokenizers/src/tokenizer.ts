// A Hugging Face tokenizer: the `tokenizers` pipeline (added tokens -> normalizer ->
// pre-tokenizer -> model -> post-processor; decoder for the way back), plus what
// transformers adds on top (special-token names, padding and truncation, chat templates).
import { ConfigError, FormatError } from '@anneal/core';
import { AddedTokenMatcher, type AddedToken } from './added-tokens.js';
import type { TokenizerConfig } from './config.js';
import { cleanUpTokenization, type Decoder } from './decoders.js';
import type { Json } from './json.js';
import type { Model } from './models.js';
import { Normalized } from './normalized.js';
import type { Normalizer } from './normalizers.js';
import { concat, emptyEncoding, type Encoding, type PostProcessor } from './post-processors.js';
import type { PreTokenizer } from './pre-tokenizers.js';
import { saveTokenizerDir } from './save.js';
import { encodeChat, renderChatTemplate, type ChatMessage, type ChatTemplateOptions } from './chat.js';

export interface TokenizerParts {
  model: Model;
  normalizer?: Normalizer;
  preTokenizer?: PreTokenizer;
  postProcessor?: PostProcessor;
  decoder?: Decoder;
  addedTokens: AddedToken[];
  config: TokenizerConfig;
  /** The tokenizer.json components as read (normalizer, pre_tokenizer, ...), for save(). */
  json: Json;
}

export interface EncodeOptions {
  /** Add the post-processor's special tokens (BOS, [CLS]/[SEP], ...). Default true. */
  addSpecialTokens?: boolean;
}

export interface BatchOptions extends EncodeOptions {
  /** Second sequences of pairs (BERT's sentence B), one per text. */
  pairs?: string[];
  padding?: false | 'longest' | 'max_length';
  paddingSide?: 'left' | 'right';
  truncation?: boolean;
  /** Length for truncation and max_length padding (default: model_max_length). */
  maxLength?: number;
  returnOffsets?: boolean;
  returnSpecialTokensMask?: boolean;
  /** Default true. */
  returnAttentionMask?: boolean;
}

export interface BatchEncoding {
  inputIds: number[][];
  attentionMask?: number[][];
  tokenTypeIds: number[][];
  offsets?: Array<Array<[number, number]>>;
  specialTokensMask?: number[][];
}

export class Tokenizer {
  readonly model: Model;
  readonly config: TokenizerConfig;
  readonly addedTokens: AddedToken[];
  private parts: TokenizerParts;
  private raw: AddedTokenMatcher;
  private normalizedAdded: AddedTokenMatcher;
  private addedById = new Map<number, AddedToken>();
  private addedByContent = new Map<string, AddedToken>();
  private idToTokenCache: string[] = [];

  constructor(parts: TokenizerParts) {
    this.parts = parts;
    this.model = parts.model;
    this.config = parts.config;
    this.addedTokens = parts.addedTokens;
    for (const t of parts.addedTokens) {
      this.addedById.set(t.id, t);
      this.addedByContent.set(t.content, t);
    }
    this.raw = new AddedTokenMatcher(parts.addedTokens.filter((t) => !t.normalized || !parts.normalizer));
    this.normalizedAdded = new AddedTokenMatcher(parts.addedTokens.filter((t) => t.normalized && parts.normalizer));
    for (const [tok, id] of this.model.vocab) this.idToTokenCache[id] = tok;
    for (const t of parts.addedTokens) this.idToTokenCache[t.id] = t.content;
  }

  /** The tokenizer.json components as loaded (for save). */
  get json(): Json {
    return this.parts.json;
  }

  // ---- vocabulary

  /** Number of ids (model vocabulary and added tokens), as len(tokenizer) in transformers. */
  get vocabSize(): number {
    return this.idToTokenCache.length;
  }

  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.model.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.idToTokenCache[id];
  }

  private specialId(token: string | undefined): number | undefined {
    return token === undefined ? undefined : this.tokenToId(token);
  }
  get bosTokenId(): number | undefined {
    return this.specialId(this.config.bosToken);
  }
  get eosTokenId(): number | undefined {
    return this.specialId(this.config.eosToken);
  }
  get padTokenId(): number | undefined {
    return this.specialId(this.config.padToken);
  }
  get unkTokenId(): number | undefined {
    return this.specialId(this.config.unkToken);
  }
  get sepTokenId(): number | undefined {
    return this.specialId(this.config.sepToken);
  }
  get clsTokenId(): number | undefined {
    return this.specialId(this.config.clsToken);
  }
  get maskTokenId(): number | undefined {
    return this.specialId(this.config.maskToken);
  }

  isSpecial(id: number): boolean {
    return this.addedById.get(id)?.special === true;
  }

  // ---- encoding

  /** Token ids of `text` (with the post-processor's special tokens unless told not to). */
  encode(text: string, o: EncodeOptions = {}): number[] {
    const e = this.encodeRaw(text, false);
    if (!this.parts.postProcessor) return e.ids;
    return this.parts.postProcessor(e, undefined, o.addSpecialTokens ?? true).ids;
  }

  /** One sequence (or a pair) with type ids, offsets, special-token mask. */
  encodeFull(
    text: string,
    pair?: string,
    o: EncodeOptions & { maxLength?: number; truncationSide?: 'left' | 'right' } = {},
  ): Encoding {
    const add = o.addSpecialTokens ?? true;
    let a = this.encodeRaw(text, true);
    let b = pair === undefined ? undefined : this.encodeRaw(pair, true);
    if (o.maxLength !== undefined)
      [a, b] = this.truncate(
        a,
        b,
        o.maxLength - this.numSpecialTokens(b !== undefined, add),
        o.truncationSide ?? this.config.truncationSide,
      );
    if (!this.parts.postProcessor) return concat(a, b);
    return this.parts.postProcessor(a, b, add);
  }

  /** How many tokens the post-processor adds to a single sequence or a pair. */
  numSpecialTokens(pair: boolean, add = true): number {
    if (!this.parts.postProcessor || !add) return 0;
    return this.parts.postProcessor(emptyEncoding(), pair ? emptyEncoding() : undefined, true).ids.length;
  }

  /** Longest-first truncation to `room` tokens in total, as transformers does for pairs. */
  private truncate(
    a: Encoding,
    b: Encoding | undefined,
    room: number,
    side: 'left' | 'right',
  ): [Encoding, Encoding | undefined] {
    if (room < 0)
      throw new ConfigError(`maxLength is smaller than the ${-room} special tokens the tokenizer adds`, {
        field: 'maxLength',
      });
    let la = a.ids.length;
    let lb = b?.ids.length ?? 0;
    while (la + lb > room) {
      if (la >= lb) la--;
      else lb--;
    }
    const cut = (e: Encoding, n: number): Encoding => {
      if (n >= e.ids.length) return e;
      const [s, t] = side === 'right' ? [0, n] : [e.ids.length - n, e.ids.length];
      return {
        ids: e.ids.slice(s, t),
        typeIds: e.typeIds.slice(s, t),
        specialTokensMask: e.specialTokensMask.slice(s, t),
        offsets: e.offsets.slice(s, t),
        sequenceIds: e.sequenceIds.slice(s, t),
      };
    };
    return [cut(a, la), b && cut(b, lb)];
  }

  /** Several texts (or pairs), truncated and padded into rectangular arrays. */
  encodeBatch(texts: string[], o: BatchOptions = {}): BatchEncoding {
    if (o.pairs && o.pairs.length !== texts.length)
      throw new ConfigError(`pairs has ${o.pairs.length} entries for ${texts.length} texts`, { field: 'pairs' });
    const maxLength =
      o.maxLength ?? (o.truncation || o.padding === 'max_length' ? this.config.modelMaxLength : undefined);
    if ((o.truncation || o.padding === 'max_length') && (maxLength === undefined || maxLength >= 1e29)) {
      throw new ConfigError(
        'truncation or max_length padding needs a length, and this tokenizer has no model_max_length',
        { field: 'maxLength', hint: 'pass maxLength' },
      );
    }
    const encs = texts.map((t, i) =>
      this.encodeFull(t, o.pairs?.[i], {
        addSpecialTokens: o.addSpecialTokens,
        maxLength: o.truncation ? maxLength : undefined,
      }),
    );
    let width = 0;
    if (o.padding === 'longest') width = Math.max(0, ...encs.map((e) => e.ids.length));
    if (o.padding === 'max_length') width = maxLength!;
    const padId = this.padTokenId;
    if (o.padding && padId === undefined)
      throw new ConfigError('padding needs a pad token, and this tokenizer has none', {
        field: 'padding',
        hint: 'set pad_token in tokenizer_config.json (often the EOS token), or pass padding: false',
      });
    const side = o.paddingSide ?? this.config.paddingSide;
    const pad = <T>(row: T[], value: T): T[] => {
      const n = Math.max(0, width - row.length);
      if (!n) return row;
      const fill = new Array<T>(n).fill(value);
      return side === 'left' ? [...fill, ...row] : [...row, ...fill];
    };
    const out: BatchEncoding = {
      inputIds: encs.map((e) => pad(e.ids, padId!)),
      tokenTypeIds: encs.map((e) => pad(e.typeIds, 0)),
    };
    if (o.returnAttentionMask !== false)
      out.attentionMask = encs.map((e) =>
        pad(
          e.ids.map(() => 1),
          0,
        ),
      );
    if (o.returnOffsets) out.offsets = encs.map((e) => pad<[number, number]>(e.offsets, [0, 0]));
    if (o.returnSpecialTokensMask) out.specialTokensMask = encs.map((e) => pad(e.specialTokensMask, 1));
    return out;
  }

  /** Added tokens, normalizer, pre-tokenizer and model over one text; offsets if `track`. */
  private encodeRaw(text: string, track: boolean): Encoding {
    const e = emptyEncoding();
    const addToken = (id: number, from: number, to: number, special: boolean) => {
      e.ids.push(id);
      if (!track) return;
      e.typeIds.push(0);
      e.specialTokensMask.push(special ? 1 : 0);
      e.offsets.push([from, to]);
      e.sequenceIds.push(0);
    };
    let index = 0;
    for (const seg of this.raw.split(text)) {
      if (seg.id !== undefined) {
        addToken(seg.id, seg.from, seg.to, this.isSpecial(seg.id));
        index++;
        continue;
      }
      let n = Normalized.from(text.slice(seg.from, seg.to), track, seg.from);
      if (this.parts.normalizer) n = this.parts.normalizer(n);
      for (const sub of this.normalizedAdded.split(n.text)) {
        if (sub.id !== undefined) {
          const [s, t] = track ? n.span(sub.from, sub.to) : [0, 0];
          addToken(sub.id, s, t, this.isSpecial(sub.id));
          index++;
          continue;
        }
        const piece = sub.from === 0 && sub.to === n.text.length ? n : n.slice(sub.from, sub.to);
        const words = this.parts.preTokenizer ? this.parts.preTokenizer(piece, index) : [piece];
        index++;
        for (const w of words) {
          for (const t of this.model.tokenize(w.text)) {
            if (track) {
              const [s, u] = w.span(t.start, t.end);
              addToken(t.id, s, u, false);
            } else e.ids.push(t.id);
          }
        }
      }
    }
    return e;
  }

  /**
   * Renders a conversation with the tokenizer's chat template (transformers'
   * apply_chat_template): the text, or with tokenize its ids (no special tokens added
   * beyond what the template writes, so no double BOS).
   */
  applyChatTemplate(messages: ChatMessage[], o: ChatTemplateOptions & { tokenize: true }): number[];
  applyChatTemplate(messages: ChatMessage[], o?: ChatTemplateOptions & { tokenize?: false }): string;
  applyChatTemplate(messages: ChatMessage[], o: ChatTemplateOptions & { tokenize?: boolean } = {}): string | number[] {
    const text = renderChatTemplate(this, messages, o);
    return o.tokenize ? this.encode(text, { addSpecialTokens: false }) : text;
  }

  /** Ids of a rendered conversation and a mask of the assistant's tokens (for assistant-only loss). */
  encodeChat(
    messages: ChatMessage[],
    o: ChatTemplateOptions = {},
  ): { ids: number[]; assistantMask: number[]; text: string } {
    return encodeChat(this, messages, o);
  }

  /** Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into `dir`. */
  save(dir: string): void {
    saveTokenizerDir(this, dir);
  }

  // ---- decoding

  decode(ids: ArrayLike<number>, o: { skipSpecialTokens?: boolean; cleanUpTokenizationSpaces?: boolean } = {}): string {
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (o.skipSpecialTokens && this.isSpecial(id)) continue;
      const t = this.idToTokenCache[id];
      if (t === undefined) throw new FormatError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      tokens.push(t);
    }
    const text = this.parts.decoder ? this.parts.decoder(tokens).join('') : tokens.join(' ');
    return (o.cleanUpTokenizationSpaces ?? this.config.cleanUpTokenizationSpaces) ? cleanUpTokenization(text) : text;
  }
}
