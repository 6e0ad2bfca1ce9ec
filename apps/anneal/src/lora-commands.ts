// `anneal lora merge`: a base model + a PEFT adapter -> one plain Hugging Face checkpoint
// (W + s B A in every adapted layer), with the base's tokenizer files when it has them.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { useBackend } from '@anneal/core';
import { loadPretrained } from '@anneal/modeling';
import { loadAdapter } from '@anneal/peft-lora';

export interface LoraMergeFlags {
  base: string;
  adapter: string;
  out: string;
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt', 'vocab.txt'];

export async function loraMerge(f: LoraMergeFlags, print: (s: string) => void): Promise<void> {
  await useBackend('auto');
  const lora = loadAdapter(await loadPretrained(f.base), f.adapter);
  const n = lora.numTrainableParameters;
  const merged = lora.mergeAndUnload();
  mkdirSync(f.out, { recursive: true });
  await merged.savePretrained(f.out);
  const copied = existsSync(f.base) ? TOKENIZER_FILES.filter((t) => existsSync(join(f.base, t))) : [];
  for (const t of copied) copyFileSync(join(f.base, t), join(f.out, t));
  merged.dispose();
  print(`merged ${n} adapter parameters into ${f.base} -> ${f.out}${copied.length ? ` (with ${copied.join(', ')})` : ''}`);
}
