// `anneal quantize`: a float32 model folder (or Hub repo) -> a quantized Hugging Face folder in
// bitsandbytes' layout (nf4/fp4 with optional double quantization, or int8), quantized one
// weight at a time while loading; reports the sizes. QLoRA configs can start from the result.
import { join } from 'node:path';
import { useBackend, validateConfig } from '@anneal/core';
import { localModelDir } from '@anneal/modeling';
import { QuantizationConfigSchema, loadQuantized, saveQuantized } from '@anneal/quantization';
import { copyTokenizerFiles } from './model-files.js';

export interface QuantizeFlags {
  model: string;
  out: string;
  method: string;
  blockSize: string;
  doubleQuant: boolean;
}

export async function quantizeCommand(f: QuantizeFlags, print: (s: string) => void): Promise<void> {
  const config = validateConfig(
    QuantizationConfigSchema,
    { method: f.method, blockSize: Number(f.blockSize), doubleQuant: f.doubleQuant },
    'anneal quantize flags (--method, --block-size)',
  );
  await useBackend('auto');
  const dir = await localModelDir(f.model); // a Hub repo id: its cached snapshot
  const { model, report } = await loadQuantized(dir, config);
  let copied: string[] = [];
  const bytes = await saveQuantized(model, f.out, (tmp) => (copied = copyTokenizerFiles(dir, tmp)));
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MB`;
  const f32 = model.numParameters * 4;
  print(
    `quantized ${report.layers} projections (${report.parameters} parameters) to ${config.method}${config.method !== 'int8' ? `, block ${config.blockSize}${config.doubleQuant ? ', double quantization' : ''}` : ''}: ${(report.storedBytes / report.parameters).toFixed(3)} bytes per quantized parameter`,
  );
  print(
    `wrote ${join(f.out, 'model.safetensors')}: ${mb(bytes)} (${((100 * bytes) / f32).toFixed(0)}% of the ${mb(f32)} float32 model)${copied.length ? `, with ${copied.join(', ')}` : ''}`,
  );
  model.dispose();
}
