// `anneal lora merge`: a base model + a PEFT adapter -> one plain Hugging Face checkpoint
// (W + s B A in every adapted layer), with the base's tokenizer files when it has them.
import { mkdirSync } from 'node:fs';
import { useBackend } from '@anneal/core';
import { loadPretrained } from '@anneal/modeling';
import { loadAdapter } from '@anneal/peft-lora';
import { copyTokenizerFiles } from './model-files.js';

export interface LoraMergeFlags {
  base: string;
  adapter: string;
  out: string;
}

export async function loraMerge(f: LoraMergeFlags, print: (s: string) => void): Promise<void> {
  await useBackend('auto');
  const lora = loadAdapter(await loadPretrained(f.base), f.adapter);
  const n = lora.numTrainableParameters;
  const merged = lora.mergeAndUnload();
  mkdirSync(f.out, { recursive: true });
  await merged.savePretrained(f.out);
  const copied = copyTokenizerFiles(f.base, f.out);
  merged.dispose();
  print(`merged ${n} adapter parameters into ${f.base} -> ${f.out}${copied.length ? ` (with ${copied.join(', ')})` : ''}`);
}
