// Saving a tokenizer as the Hugging Face libraries expect it: tokenizer.json (the
// `tokenizers` format), tokenizer_config.json and special_tokens_map.json (transformers).
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileDurable } from '@anneal/core';
import type { AddedToken } from './added-tokens.js';
import type { Json } from './json.js';
import type { Tokenizer } from './tokenizer.js';

export function addedTokenJson(t: AddedToken): Json {
  return {
    id: t.id,
    content: t.content,
    single_word: t.singleWord,
    lstrip: t.lstrip,
    rstrip: t.rstrip,
    normalized: t.normalized,
    special: t.special,
  };
}

/** tokenizer.json as the `tokenizers` library writes it. */
export function tokenizerJson(tok: Tokenizer): Json {
  const j = tok.json;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: tok.addedTokens.map(addedTokenJson),
    normalizer: j.normalizer,
    pre_tokenizer: j.pre_tokenizer,
    post_processor: j.post_processor,
    decoder: j.decoder,
    model: tok.model.toJson(),
  };
}

/** tokenizer_config.json and special_tokens_map.json as transformers writes them. */
export function tokenizerConfigJson(tok: Tokenizer): { config: Json; specials: Json } {
  const c = tok.config;
  const specials: Json = {};
  for (const [k, v] of [
    ['bos_token', c.bosToken],
    ['eos_token', c.eosToken],
    ['unk_token', c.unkToken],
    ['pad_token', c.padToken],
    ['sep_token', c.sepToken],
    ['cls_token', c.clsToken],
    ['mask_token', c.maskToken],
  ] as const)
    if (v !== undefined) specials[k] = v;
  const config: Json = {
    ...c.raw,
    tokenizer_class: c.tokenizerClass ?? 'PreTrainedTokenizerFast',
    model_max_length: c.modelMaxLength,
    padding_side: c.paddingSide,
    clean_up_tokenization_spaces: c.cleanUpTokenizationSpaces,
    ...(c.addBosToken !== undefined && { add_bos_token: c.addBosToken }),
    ...(c.addEosToken !== undefined && { add_eos_token: c.addEosToken }),
    added_tokens_decoder: Object.fromEntries(
      tok.addedTokens.map((t) => [
        String(t.id),
        {
          content: t.content,
          lstrip: t.lstrip,
          normalized: t.normalized,
          rstrip: t.rstrip,
          single_word: t.singleWord,
          special: t.special,
        },
      ]),
    ),
    ...specials,
  };
  if (c.chatTemplate !== undefined)
    config.chat_template =
      typeof c.chatTemplate === 'string'
        ? c.chatTemplate
        : Object.entries(c.chatTemplate).map(([name, template]) => ({ name, template }));
  return { config, specials };
}

/**
 * What identifies a tokenizer's output for the tokenization cache: everything its files say
 * (tokenizer.json, and tokenizer_config.json with its chat template, special tokens and
 * add_bos/add_eos), so an edited template or EOS never reuses tokens cached under the old one.
 */
export function tokenizerFingerprint(tok: Tokenizer): string {
  const { config, specials } = tokenizerConfigJson(tok);
  return createHash('sha256')
    .update(JSON.stringify({ v: 1, tokenizer: tokenizerJson(tok), config, specials }))
    .digest('hex');
}

/** Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into `dir`. */
export function saveTokenizerDir(tok: Tokenizer, dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileDurable(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson(tok)));
  const { config, specials } = tokenizerConfigJson(tok);
  writeFileDurable(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
  writeFileDurable(join(dir, 'special_tokens_map.json'), JSON.stringify(specials, null, 2) + '\n');
}
