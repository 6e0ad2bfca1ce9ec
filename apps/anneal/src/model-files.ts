// The tokenizer files a model folder may carry next to its weights: a command that writes a
// new model folder from another (merge, quantize) copies them so the result is usable alone.
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.json',
  'merges.txt',
  'vocab.txt',
];

/** Copies the tokenizer files `from` has (a local folder) into `to`; returns their names. */
export function copyTokenizerFiles(from: string, to: string): string[] {
  const copied = existsSync(from) ? TOKENIZER_FILES.filter((t) => existsSync(join(from, t))) : [];
  for (const t of copied) copyFileSync(join(from, t), join(to, t));
  return copied;
}
