// Loading tokenizers from the files of the Hugging Face ecosystem, and saving them so
// that `tokenizers`/`transformers` load them unchanged.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FormatError } from '@anneal/core';
import type { AddedToken } from './added-tokens.js';
import { readJson, readTokenizerConfig, type TokenizerConfig } from './config.js';
import { buildDecoder } from './decoders.js';
import type { Json } from './json.js';
import { Bpe, MAX_TOKEN_ID, WordPiece, buildModel, isTokenId } from './models.js';
import { buildNormalizer } from './normalizers.js';
import { buildPostProcessor } from './post-processors.js';
import { buildPreTokenizer } from './pre-tokenizers.js';
import { addedTokenJson } from './save.js';
import { Tokenizer } from './tokenizer.js';
import { t5TokenizerJsonFromSpm } from './spm-model.js';

/**
 * added_tokens: ids are token ids, each given once; an id the model's vocabulary already has
 * must name the same token there (transformers maps an added token onto its vocabulary entry).
 */
function addedTokens(list: Json, file: string, vocab: Map<string, number>): AddedToken[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new FormatError('expected a list', { file, field: 'added_tokens' });
  const vocabOwner = new Map<number, string>();
  for (const [t, id] of vocab) vocabOwner.set(id, t);
  const seen = new Map<number, string>();
  return list.map((t: Json, i: number) => {
    const field = `added_tokens[${i}]`;
    if (typeof t?.id !== 'number' || typeof t?.content !== 'string')
      throw new FormatError('expected {id, content, ...}', { file, field });
    if (!isTokenId(t.id))
      throw new FormatError(`id ${t.id} is not a token id (an integer from 0 to ${MAX_TOKEN_ID})`, {
        file,
        field: `${field}.id`,
      });
    const twice = seen.get(t.id);
    if (twice !== undefined)
      throw new FormatError(`id ${t.id} is given to both ${JSON.stringify(twice)} and ${JSON.stringify(t.content)}`, {
        file,
        field: `${field}.id`,
      });
    const inVocab = vocabOwner.get(t.id);
    if (inVocab !== undefined && inVocab !== t.content)
      throw new FormatError(
        `id ${t.id} of added token ${JSON.stringify(t.content)} is ${JSON.stringify(inVocab)} in the model's vocabulary`,
        { file, field: `${field}.id`, hint: 'an added token takes a new id, or the id its text has in the vocabulary' },
      );
    seen.set(t.id, t.content);
    return {
      id: t.id,
      content: t.content,
      singleWord: !!t.single_word,
      lstrip: !!t.lstrip,
      rstrip: !!t.rstrip,
      normalized: t.normalized ?? !t.special,
      special: !!t.special,
    };
  });
}

/**
 * transformers rebuilds the post-processor of Llama-style tokenizers from add_bos_token /
 * add_eos_token in tokenizer_config.json (LlamaTokenizerFast.update_post_processor).
 */
function llamaTemplate(config: TokenizerConfig, tokenToId: (t: string) => number | undefined): Json | undefined {
  if (!/^(Llama|CodeLlama|Gemma)TokenizerFast$|^(Llama|CodeLlama|Gemma)Tokenizer$/.test(config.tokenizerClass ?? ''))
    return undefined;
  if (config.addBosToken === undefined && config.addEosToken === undefined) return undefined;
  const bos = config.addBosToken !== false && config.bosToken ? config.bosToken : undefined;
  const eos = config.addEosToken === true && config.eosToken ? config.eosToken : undefined;
  const tok = (t: string | undefined, type: number) => (t ? [{ SpecialToken: { id: t, type_id: type } }] : []);
  const seq = (id: string, type: number) => [{ Sequence: { id, type_id: type } }];
  const special_tokens: Json = {};
  for (const t of [bos, eos])
    if (t && tokenToId(t) !== undefined) special_tokens[t] = { id: t, ids: [tokenToId(t)], tokens: [t] };
  return {
    type: 'TemplateProcessing',
    single: [...tok(bos, 0), ...seq('A', 0), ...tok(eos, 0)],
    pair: [...tok(bos, 0), ...seq('A', 0), ...tok(eos, 0), ...tok(bos, 1), ...seq('B', 1), ...tok(eos, 1)],
    special_tokens,
  };
}

/** Builds a tokenizer from a parsed tokenizer.json. */
export function fromTokenizerJson(j: Json, file: string, config: TokenizerConfig): Tokenizer {
  if (!j || typeof j !== 'object') throw new FormatError('expected a JSON object', { file });
  const model = buildModel(j.model, file);
  const added = addedTokens(j.added_tokens, file, model.vocab);
  const tokenToId = (t: string) => added.find((a) => a.content === t)?.id ?? model.vocab.get(t);
  const idToToken = new Map<number, string>();
  const tokenOf = (id: number) => {
    if (!idToToken.size) {
      for (const [t, i] of model.vocab) idToToken.set(i, t);
      for (const a of added) idToToken.set(a.id, a.content);
    }
    return idToToken.get(id);
  };
  const post = llamaTemplate(config, tokenToId) ?? j.post_processor;
  return new Tokenizer({
    model,
    normalizer: buildNormalizer(j.normalizer, file),
    preTokenizer: buildPreTokenizer(j.pre_tokenizer, file),
    postProcessor: buildPostProcessor(post, file, tokenOf),
    decoder: buildDecoder(j.decoder, file),
    addedTokens: added,
    config,
    json: {
      normalizer: j.normalizer ?? null,
      pre_tokenizer: j.pre_tokenizer ?? null,
      post_processor: post ?? null,
      decoder: j.decoder ?? null,
    },
  });
}

const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };

/** A byte-level BPE tokenizer (GPT-2's pipeline) over a vocabulary and merges. */
export function byteLevelBpeTokenizer(
  model: Bpe,
  specials: string[],
  config: Partial<TokenizerConfig> = {},
): Tokenizer {
  const added = specials.map((content) => {
    const id = model.vocab.get(content);
    if (id === undefined) throw new FormatError(`special token ${JSON.stringify(content)} is not in the vocabulary`);
    return { id, content, singleWord: false, lstrip: false, rstrip: false, normalized: false, special: true };
  });
  const json = {
    normalizer: null,
    pre_tokenizer: BYTE_LEVEL,
    post_processor: { ...BYTE_LEVEL, trim_offsets: false },
    decoder: BYTE_LEVEL,
  };
  return fromTokenizerJson(
    { ...json, model: model.toJson(), added_tokens: added.map(addedTokenJson) },
    'tokenizer.json',
    { ...defaultConfig(), ...config },
  );
}

export function defaultConfig(): TokenizerConfig {
  return {
    modelMaxLength: 1e30,
    paddingSide: 'right',
    truncationSide: 'right',
    cleanUpTokenizationSpaces: false,
    raw: {},
  };
}

/** GPT-2's original files: vocab.json (token -> id) and merges.txt (one "a b" per line). */
export function loadGpt2Files(vocabFile: string, mergesFile: string, config?: TokenizerConfig): Tokenizer {
  const vocab = readJson(vocabFile);
  if (!existsSync(mergesFile)) throw new FormatError('file not found', { file: mergesFile });
  const merges = readFileSync(mergesFile, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#version'))
    .map((l, i) => {
      const parts = l.trim().split(' ');
      if (parts.length !== 2)
        throw new FormatError(`line ${i + 1}: expected "left right", got ${JSON.stringify(l)}`, { file: mergesFile });
      return parts as [string, string];
    });
  const model = new Bpe(new Map(Object.entries(vocab as Record<string, number>)), merges, {}, mergesFile);
  const cfg = config ?? defaultConfig();
  const eot = '<|endoftext|>';
  const specials = model.vocab.has(eot) ? [eot] : [];
  return byteLevelBpeTokenizer(model, specials, {
    ...cfg,
    bosToken: cfg.bosToken ?? specials[0],
    eosToken: cfg.eosToken ?? specials[0],
    unkToken: cfg.unkToken ?? specials[0],
  });
}

/** BERT's vocab.txt (one token per line; id = line number) with its standard pipeline. */
export function loadBertVocab(vocabFile: string, config?: TokenizerConfig): Tokenizer {
  if (!existsSync(vocabFile)) throw new FormatError('file not found', { file: vocabFile });
  const lines = readFileSync(vocabFile, 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const cfg: TokenizerConfig = { ...defaultConfig(), ...config };
  const lower = cfg.doLowerCase ?? true;
  const specials = {
    unk: cfg.unkToken ?? '[UNK]',
    sep: cfg.sepToken ?? '[SEP]',
    pad: cfg.padToken ?? '[PAD]',
    cls: cfg.clsToken ?? '[CLS]',
    mask: cfg.maskToken ?? '[MASK]',
  };
  const vocab = new Map(lines.map((t, i) => [t.replace(/\r$/, ''), i]));
  const id = (t: string) => {
    const v = vocab.get(t);
    if (v === undefined) throw new FormatError(`special token ${t} is not in the vocabulary`, { file: vocabFile });
    return v;
  };
  const model = new WordPiece(vocab, specials.unk);
  const j = {
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: lower,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'BertProcessing',
      sep: [specials.sep, id(specials.sep)],
      cls: [specials.cls, id(specials.cls)],
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: model.toJson(),
    added_tokens: Object.values(specials).map((t) =>
      addedTokenJson({
        id: id(t),
        content: t,
        singleWord: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      }),
    ),
  };
  return fromTokenizerJson(j, vocabFile, {
    ...cfg,
    unkToken: specials.unk,
    sepToken: specials.sep,
    padToken: specials.pad,
    clsToken: specials.cls,
    maskToken: specials.mask,
    tokenizerClass: cfg.tokenizerClass ?? 'BertTokenizerFast',
    modelMaxLength: cfg.modelMaxLength,
  });
}

/**
 * Loads a tokenizer from a folder (tokenizer.json, else GPT-2's vocab.json + merges.txt,
 * else BERT's vocab.txt; tokenizer_config.json and special_tokens_map.json when present)
 * or from a tokenizer.json file.
 */
export function loadTokenizerSync(path: string): Tokenizer {
  if (!existsSync(path)) throw new FormatError('tokenizer file or folder not found', { file: path });
  const isDir = statSync(path).isDirectory();
  const dir = isDir ? path : dirname(path);
  const config = readTokenizerConfig(dir);
  if (!isDir) return fromTokenizerJson(readJson(path), path, config);
  if (existsSync(join(dir, 'tokenizer.json')))
    return fromTokenizerJson(readJson(join(dir, 'tokenizer.json')), join(dir, 'tokenizer.json'), config);
  if (existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt')))
    return loadGpt2Files(join(dir, 'vocab.json'), join(dir, 'merges.txt'), config);
  if (existsSync(join(dir, 'vocab.txt'))) return loadBertVocab(join(dir, 'vocab.txt'), config);
  if (existsSync(join(dir, 'spiece.model'))) return loadT5Spm(join(dir, 'spiece.model'), config);
  throw new FormatError('no tokenizer files here', {
    file: dir,
    hint: 'expected tokenizer.json, vocab.json + merges.txt (GPT-2), vocab.txt (BERT) or spiece.model (T5)',
  });
}

/**
 * T5's tokenizer from its SentencePiece model (spiece.model), converted as T5TokenizerFast
 * converts it (spm-model.ts); tokenizer_config.json's extra_ids and special tokens apply.
 */
export function loadT5Spm(file: string, config: TokenizerConfig = defaultConfig()): Tokenizer {
  const cls = config.tokenizerClass;
  if (cls && !/^T5Tokenizer(Fast)?$/.test(cls))
    throw new FormatError(`tokenizer_class ${cls}: only T5's spiece.model is converted here`, {
      file,
      field: 'tokenizer_class',
      hint: 'save the tokenizer with tokenizer.json in Python (AutoTokenizer.from_pretrained(...).save_pretrained(dir))',
    });
  const extra = config.raw.extra_ids;
  const json = t5TokenizerJsonFromSpm(file, typeof extra === 'number' ? extra : 100);
  return fromTokenizerJson(json, file, {
    ...config,
    tokenizerClass: cls ?? 'T5TokenizerFast',
    eosToken: config.eosToken ?? '</s>',
    unkToken: config.unkToken ?? '<unk>',
    padToken: config.padToken ?? '<pad>',
  });
}

export async function loadTokenizer(path: string): Promise<Tokenizer> {
  return loadTokenizerSync(path);
}
