// `anneal tokenizer train <config>`: what to train, on which files, written where.
// Plain YAML mapping one-to-one onto TrainTokenizerConfig.
import { createReadStream, existsSync } from 'node:fs';
import { z } from 'zod';
import { DataError } from '@anneal/core';
import { trainByteLevelBpe, trainWordPiece, type TrainOptions } from './train-bpe.js';
import type { Tokenizer } from './tokenizer.js';

export const TrainTokenizerConfigSchema = z
  .object({
    /** byte-level-bpe (GPT-2/Llama-3 style) or wordpiece (BERT style). */
    kind: z.enum(['byte-level-bpe', 'wordpiece']),
    /** UTF-8 text files; each is streamed in chunks of whole lines. */
    files: z.array(z.string()).min(1),
    vocabSize: z.number().int().min(1),
    minFrequency: z.number().int().min(1).default(2),
    specialTokens: z.array(z.string()).optional(),
    limitAlphabet: z.number().int().min(1).optional(),
    /** WordPiece only: lowercase and strip accents (bert-base-uncased style; default true). A byte-level BPE keeps the text as is. */
    lowercase: z.boolean().optional(),
    bosToken: z.string().optional(),
    eosToken: z.string().optional(),
    padToken: z.string().optional(),
    unkToken: z.string().optional(),
    modelMaxLength: z.number().int().min(1).optional(),
    /** Folder to write tokenizer.json, tokenizer_config.json and special_tokens_map.json to. */
    output: z.string(),
  })
  .strict()
  // Printed options must be the ones the saved tokenizer.json has: no lowercase on a BPE.
  .refine((c) => c.kind === 'wordpiece' || c.lowercase === undefined, {
    message: 'applies to wordpiece only (a byte-level BPE keeps the text as is)',
    path: ['lowercase'],
  })
  .transform((c) => (c.kind === 'wordpiece' ? { ...c, lowercase: c.lowercase ?? true } : c));

export type TrainTokenizerConfig = z.infer<typeof TrainTokenizerConfigSchema>;

/** The text of `files`, about `chunkBytes` at a time, cut at line ends (bounded memory). */
export async function* readTextChunks(files: string[], chunkBytes = 1 << 20): AsyncGenerator<string> {
  for (const file of files) {
    if (!existsSync(file)) throw new DataError('file not found', { file });
    let carry = '';
    for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: chunkBytes })) {
      const text = carry + (chunk as string);
      const cut = text.lastIndexOf('\n') + 1;
      if (cut === 0) {
        carry = text;
        continue;
      }
      carry = text.slice(cut);
      yield text.slice(0, cut);
    }
    if (carry) yield carry;
  }
}

export async function trainTokenizerFromConfig(
  c: TrainTokenizerConfig,
  onProgress?: TrainOptions['onProgress'],
): Promise<Tokenizer> {
  const source = readTextChunks(c.files);
  const common = {
    vocabSize: c.vocabSize,
    minFrequency: c.minFrequency,
    limitAlphabet: c.limitAlphabet,
    bosToken: c.bosToken,
    eosToken: c.eosToken,
    padToken: c.padToken,
    unkToken: c.unkToken,
    modelMaxLength: c.modelMaxLength,
    onProgress,
  };
  if (c.kind === 'wordpiece')
    return trainWordPiece(source, { ...common, specialTokens: c.specialTokens, lowercase: c.lowercase });
  return trainByteLevelBpe(source, { ...common, specialTokens: c.specialTokens ?? ['<|endoftext|>'] });
}
