// `anneal data inspect <config>`: prepares the config's data with its tokenizer and prints
// rows, tokens, the length histogram, packing efficiency and bad rows.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ConfigError, loadConfig } from '@anneal/core';
import { DataConfigSchema, formatReport, inspectDataset, prepareDataset } from '@anneal/data';
import { loadTokenizerSync, tokenizerJson, type Tokenizer } from '@anneal/tokenizers';

// Any config with a data section and a tokenizer path (trainer configs have more).
const InspectConfigSchema = z.looseObject({
  seed: z.number().int().optional(),
  tokenizer: z.looseObject({ path: z.string().optional() }).optional(),
  data: DataConfigSchema,
});

/** Identifies a tokenizer's behaviour for the tokenization cache. */
export function tokenizerFingerprint(tok: Tokenizer): string {
  return createHash('sha256').update(JSON.stringify(tokenizerJson(tok))).update(JSON.stringify(tok.config.raw)).digest('hex');
}

export async function inspectData(file: string, flags: { set: string[]; tokenizer?: string }, out: (s: string) => void): Promise<void> {
  const { config } = loadConfig(file, InspectConfigSchema, flags.set);
  const path = flags.tokenizer ?? config.tokenizer?.path;
  if (!path) throw new ConfigError('no tokenizer: set tokenizer.path in the config or pass --tokenizer', { file, field: 'tokenizer.path' });
  const tok = loadTokenizerSync(path);
  const prepared = await prepareDataset(config.data, tok, { tokenizerFingerprint: tokenizerFingerprint(tok), configFile: file, seed: config.seed });
  out(`data: ${file} (format ${config.data.format}, maxLength ${config.data.maxLength}); tokenizer: ${path}`);
  out(formatReport(inspectDataset(prepared, config.data.maxLength)));
}
