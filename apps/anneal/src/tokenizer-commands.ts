// `anneal tokenize` (ids and tokens of a text) and `anneal tokenizer train <config>`.
import { readFileSync, existsSync, mkdirSync } from 'node:fs';
import { ConfigError, DataError, configToYaml, loadConfig, writeDirAtomic } from '@anneal/core';
import { TrainTokenizerConfigSchema, loadTokenizerSync, trainTokenizerFromConfig } from '@anneal/tokenizers';
import { dirname } from 'node:path';

export interface TokenizeFlags {
  tokenizer: string;
  text?: string;
  file?: string;
  json?: boolean;
  specialTokens: boolean;
}

export function tokenize(f: TokenizeFlags, out: (s: string) => void): void {
  if ((f.text === undefined) === (f.file === undefined))
    throw new ConfigError('give exactly one of --text and --file', {
      hint: 'anneal tokenize --tokenizer <dir> --text "Hello"',
    });
  if (f.file !== undefined && !existsSync(f.file)) throw new DataError('file not found', { file: f.file });
  const text = f.text ?? readFileSync(f.file!, 'utf8');
  const tok = loadTokenizerSync(f.tokenizer);
  const ids = tok.encode(text, { addSpecialTokens: f.specialTokens });
  const tokens = ids.map((id) => tok.idToToken(id)!);
  if (f.json) out(JSON.stringify({ ids, tokens }));
  else out(`${ids.length} tokens\nids: ${ids.join(' ')}\ntokens: ${tokens.map((t) => JSON.stringify(t)).join(' ')}`);
}

export async function trainTokenizer(file: string, overrides: string[], info: (s: string) => void): Promise<void> {
  const { config } = loadConfig(file, TrainTokenizerConfigSchema, overrides);
  info(`config: ${file}\n${configToYaml(config).trimEnd()}`);
  let last = 0;
  const tok = await trainTokenizerFromConfig(config, (p) => {
    const now = performance.now();
    if (now - last < 2000) return;
    last = now;
    info(
      p.phase === 'count'
        ? `counting words: ${(p.done / 1e6).toFixed(1)} M characters`
        : `merging: vocabulary ${p.done}/${p.total}`,
    );
  });
  mkdirSync(dirname(config.output), { recursive: true });
  // One atomic folder: a crash leaves the previous tokenizer (or none), never half of one.
  await writeDirAtomic(config.output, async (tmp) => tok.save(tmp));
  info(`wrote ${config.output} (vocabulary ${tok.vocabSize})`);
}
