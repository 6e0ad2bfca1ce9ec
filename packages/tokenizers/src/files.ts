// Reading and writing the Hugging Face tokenizer files for byte-level BPE:
// tokenizer.json (the `tokenizers` library's format), tokenizer_config.json,
// special_tokens_map.json, and GPT-2's legacy vocab.json + merges.txt.
// The tokenizers issue extends this to the full pipeline (WordPiece, Unigram, ...).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError, writeFileDurable } from '@anneal/core';
import { ByteLevelBpe, type SpecialToken } from './bpe.js';

export interface TokenizerInfo {
  bosToken?: string;
  eosToken?: string;
  unkToken?: string;
  padToken?: string;
  modelMaxLength?: number;
}

function readJson(file: string): any {
  if (!existsSync(file)) throw new FormatError('file not found', { file });
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new FormatError(`not valid JSON: ${(e as Error).message}`, { file });
  }
}

function parseMerges(raw: unknown, file: string): Array<[string, string]> {
  if (!Array.isArray(raw)) throw new FormatError('expected a list of merges', { file, field: 'model.merges' });
  return raw.map((m, i) => {
    // tokenizers < 0.20 writes "a b"; newer versions write ["a", "b"].
    if (typeof m === 'string') {
      const sp = m.indexOf(' ');
      if (sp <= 0) throw new FormatError(`merge ${JSON.stringify(m)} is not "left right"`, { file, field: `model.merges[${i}]` });
      return [m.slice(0, sp), m.slice(sp + 1)] as [string, string];
    }
    if (Array.isArray(m) && m.length === 2 && m.every((x) => typeof x === 'string')) return m as [string, string];
    throw new FormatError(`merge ${JSON.stringify(m)} is neither "a b" nor ["a", "b"]`, { file, field: `model.merges[${i}]` });
  });
}

/** Loads a byte-level BPE `tokenizer.json`. Other pipelines are reported by name. */
export function loadTokenizerJson(file: string): ByteLevelBpe {
  const j = readJson(file);
  const model = j.model;
  if (!model || model.type !== 'BPE') {
    throw new FormatError(`model type ${JSON.stringify(model?.type)} is not supported yet (only byte-level BPE)`, { file, field: 'model.type' });
  }
  const pre = j.pre_tokenizer;
  if (!pre || pre.type !== 'ByteLevel' || pre.use_regex === false || pre.add_prefix_space === true) {
    throw new FormatError(`pre_tokenizer ${JSON.stringify(pre?.type)} is not supported yet (only ByteLevel with its regex and no prefix space)`, {
      file,
      field: 'pre_tokenizer',
    });
  }
  if (j.normalizer) throw new FormatError(`normalizer ${JSON.stringify(j.normalizer.type)} is not supported yet`, { file, field: 'normalizer' });
  const vocab = new Map<string, number>(Object.entries(model.vocab as Record<string, number>));
  const specials: SpecialToken[] = (j.added_tokens ?? []).map((t: any) => ({ id: t.id, content: t.content }));
  return new ByteLevelBpe(vocab, parseMerges(model.merges, file), specials);
}

/** GPT-2's original files: vocab.json (token -> id) and merges.txt (one "a b" per line). */
export function loadGpt2Files(vocabFile: string, mergesFile: string): ByteLevelBpe {
  const vocab = new Map<string, number>(Object.entries(readJson(vocabFile) as Record<string, number>));
  if (!existsSync(mergesFile)) throw new FormatError('file not found', { file: mergesFile });
  const lines = readFileSync(mergesFile, 'utf8').split('\n');
  const merges = parseMerges(
    lines.filter((l) => l.trim() !== '' && !l.startsWith('#version')),
    mergesFile,
  );
  const eot = vocab.get('<|endoftext|>');
  return new ByteLevelBpe(vocab, merges, eot === undefined ? [] : [{ id: eot, content: '<|endoftext|>' }]);
}

/** Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into `dir`. */
export function saveTokenizer(tok: ByteLevelBpe, dir: string, info: TokenizerInfo = {}): void {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: tok.specialTokens.map((s) => ({
      id: s.id,
      content: s.content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab: Object.fromEntries([...tok.vocab].sort((a, b) => a[1] - b[1])),
      merges: tok.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  writeFileDurable(join(dir, 'tokenizer.json'), JSON.stringify(json));
  const specials = {
    ...(info.bosToken && { bos_token: info.bosToken }),
    ...(info.eosToken && { eos_token: info.eosToken }),
    ...(info.unkToken && { unk_token: info.unkToken }),
    ...(info.padToken && { pad_token: info.padToken }),
  };
  const config = {
    tokenizer_class: 'GPT2TokenizerFast',
    add_prefix_space: false,
    model_max_length: info.modelMaxLength ?? 1024,
    ...specials,
  };
  writeFileDurable(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
  writeFileDurable(join(dir, 'special_tokens_map.json'), JSON.stringify(specials, null, 2) + '\n');
}
