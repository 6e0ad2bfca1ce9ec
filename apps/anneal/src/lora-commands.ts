// `anneal lora merge`: a base model + a PEFT adapter -> one plain Hugging Face checkpoint
// (W + s B A in every adapted layer), with the base's tokenizer files when it has them. A
// base saved quantized (a QLoRA run's) is dequantized first, as PEFT merges into 4-bit bases.
import { mkdirSync } from 'node:fs';
import { useBackend } from '@anneal/core';
import { loadPretrained, localModelDir, readHfConfig, type PretrainedModel } from '@anneal/modeling';
import { loadAdapter } from '@anneal/peft-lora';
import { dequantize, loadQuantized } from '@anneal/quantization';
import { copyTokenizerFiles } from './model-files.js';

export interface LoraMergeFlags {
  base: string;
  adapter: string;
  out: string;
}

export async function loraMerge(f: LoraMergeFlags, print: (s: string) => void): Promise<void> {
  await useBackend('auto');
  const base = await localModelDir(f.base); // a Hub repo id: its cached snapshot
  const lora = loadAdapter(await floatBase(base, print), f.adapter);
  const n = lora.numTrainableParameters;
  const merged = lora.mergeAndUnload();
  mkdirSync(f.out, { recursive: true });
  await merged.savePretrained(f.out);
  const copied = copyTokenizerFiles(base, f.out);
  merged.dispose();
  print(
    `merged ${n} adapter parameters into ${f.base} -> ${f.out}${copied.length ? ` (with ${copied.join(', ')})` : ''}`,
  );
}

/** The base in float32: as stored, or dequantized when it was saved quantized. */
async function floatBase(dir: string, print: (s: string) => void): Promise<PretrainedModel> {
  if (!readHfConfig(dir).hf.quantization_config) return loadPretrained(dir);
  const { model, config } = await loadQuantized(dir);
  print(
    `dequantized ${dequantize(model)} ${config.method} projections of ${dir} (the merged weights carry their quantization error)`,
  );
  return model;
}
