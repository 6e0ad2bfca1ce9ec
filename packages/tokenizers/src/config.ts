// transformers' side files next to tokenizer.json: tokenizer_config.json (special tokens,
// add_bos_token, model_max_length, chat_template, padding side, ...) and
// special_tokens_map.json. Special tokens may be written as strings or as AddedToken
// objects ({"content": ...}).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '@anneal/core';
import type { Json } from './json.js';

export interface TokenizerConfig {
  tokenizerClass?: string;
  bosToken?: string;
  eosToken?: string;
  unkToken?: string;
  padToken?: string;
  sepToken?: string;
  clsToken?: string;
  maskToken?: string;
  addBosToken?: boolean;
  addEosToken?: boolean;
  /** transformers' VERY_LARGE_INTEGER when a config leaves it out. */
  modelMaxLength: number;
  paddingSide: 'left' | 'right';
  truncationSide: 'left' | 'right';
  cleanUpTokenizationSpaces: boolean;
  doLowerCase?: boolean;
  /** A template, or named templates ({name, template}[] in the file). */
  chatTemplate?: string | Record<string, string>;
  /** Where chatTemplate came from (tokenizer_config.json, or a run config's tokenizer.chatTemplate), for errors. */
  chatTemplateSource?: { file: string; field: string };
  /** Everything else in tokenizer_config.json, written back on save. */
  raw: Json;
}

export const VERY_LARGE_INTEGER = 1e30;

export function readJson(file: string): Json {
  if (!existsSync(file)) throw new FormatError('file not found', { file });
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new FormatError(`not valid JSON: ${(e as Error).message}`, { file });
  }
}

const tokenString = (v: Json): string | undefined =>
  typeof v === 'string' ? v : v && typeof v.content === 'string' ? v.content : undefined;

/** Reads tokenizer_config.json and special_tokens_map.json from `dir` (each optional). */
export function readTokenizerConfig(dir: string): TokenizerConfig {
  const cfgFile = join(dir, 'tokenizer_config.json');
  const mapFile = join(dir, 'special_tokens_map.json');
  const raw: Json = existsSync(cfgFile) ? readJson(cfgFile) : {};
  const map: Json = existsSync(mapFile) ? readJson(mapFile) : {};
  const tok = (k: string) => tokenString(raw[k]) ?? tokenString(map[k]);
  let chatTemplate: TokenizerConfig['chatTemplate'] = raw.chat_template;
  if (Array.isArray(chatTemplate))
    chatTemplate = Object.fromEntries((chatTemplate as Json[]).map((t) => [t.name, t.template]));
  const side = (v: Json, field: string): 'left' | 'right' => {
    if (v === undefined || v === null) return 'right';
    if (v !== 'left' && v !== 'right')
      throw new FormatError(`expected "left" or "right", got ${JSON.stringify(v)}`, { file: cfgFile, field });
    return v;
  };
  return {
    tokenizerClass: raw.tokenizer_class,
    bosToken: tok('bos_token'),
    eosToken: tok('eos_token'),
    unkToken: tok('unk_token'),
    padToken: tok('pad_token'),
    sepToken: tok('sep_token'),
    clsToken: tok('cls_token'),
    maskToken: tok('mask_token'),
    addBosToken: raw.add_bos_token,
    addEosToken: raw.add_eos_token,
    modelMaxLength:
      typeof raw.model_max_length === 'number' && raw.model_max_length < VERY_LARGE_INTEGER
        ? raw.model_max_length
        : VERY_LARGE_INTEGER,
    paddingSide: side(raw.padding_side, 'padding_side'),
    truncationSide: side(raw.truncation_side, 'truncation_side'),
    cleanUpTokenizationSpaces: raw.clean_up_tokenization_spaces === true,
    doLowerCase: raw.do_lower_case,
    chatTemplate: chatTemplate ?? undefined,
    ...(chatTemplate != null && { chatTemplateSource: { file: cfgFile, field: 'chat_template' } }),
    raw,
  };
}
