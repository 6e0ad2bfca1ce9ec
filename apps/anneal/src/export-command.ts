// `anneal export --model <run|checkpoint|adapter|org/name> --format onnx --out <dir>`: the model
// (a LoRA adapter merged into its base first) as an ONNX folder that transformers.js and
// onnxruntime load (@anneal/export), with its tokenizer.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, useBackend } from '@anneal/core';
import { ONNX_VARIANTS, exportOnnx, type OnnxVariant } from '@anneal/export';
import { loadPretrained, localModelDir, type PretrainedModel } from '@anneal/modeling';
import { isAdapterDir, loadAdapter } from '@anneal/peft-lora';
import { loadTokenizerSync } from '@anneal/tokenizers';
import { requireTokenizerFits } from '@anneal/training';
import { adapterBase, hasTokenizer } from './lm-loader.js';

export interface ExportFlags {
  model: string;
  base?: string;
  tokenizer?: string;
  format: string;
  out: string;
  overwrite?: boolean;
  opset?: string;
  /** Comma-separated: fp16, int8. */
  variants?: string;
}

export const EXPORT_FORMATS = ['onnx'];

export async function exportCommand(f: ExportFlags, print: (s: string) => void): Promise<void> {
  if (!EXPORT_FORMATS.includes(f.format))
    throw new ConfigError(`--format ${f.format} is not one Anneal writes`, {
      field: '--format',
      hint: `one of: ${EXPORT_FORMATS.join(', ')} (safetensors checkpoints are what training already writes)`,
    });
  const variants = (f.variants ?? '').split(',').filter(Boolean) as OnnxVariant[];
  for (const v of variants)
    if (!(v in ONNX_VARIANTS))
      throw new ConfigError(`--variants ${v} is not a variant Anneal writes`, {
        field: '--variants',
        hint: `a comma-separated list of: ${Object.keys(ONNX_VARIANTS).join(', ')}`,
      });
  const opset = f.opset === undefined ? undefined : Number(f.opset);
  await useBackend('auto');
  // a run folder stands for its best checkpoint; a Hub repo id for its cached snapshot
  const dir = existsSync(f.model) ? await localModelDir(f.model, { field: '--model' }) : await localModelDir(f.model);
  let model: PretrainedModel;
  let tokDir = dir;
  let what = f.model;
  if (isAdapterDir(dir)) {
    const base = adapterBase(dir, f.base);
    const baseDir = await localModelDir(base);
    const lora = loadAdapter(await loadPretrained(baseDir), dir);
    const r = lora.config.r;
    model = lora.mergeAndUnload();
    if (!hasTokenizer(dir)) tokDir = baseDir;
    what = `${f.model} (LoRA r ${r} merged into ${base})`;
  } else model = await loadPretrained(dir);
  const tokFrom = f.tokenizer ?? tokDir;
  if (!hasTokenizer(tokFrom) && !f.tokenizer)
    throw new ConfigError(`no tokenizer files in ${tokFrom}`, {
      field: '--tokenizer',
      hint: 'transformers.js needs tokenizer.json next to the model: give the folder with --tokenizer',
    });
  const tokenizer = loadTokenizerSync(tokFrom);
  requireTokenizerFits(tokenizer, model, { file: tokFrom, field: '--tokenizer' });
  const r = exportOnnx(model, { outDir: f.out, tokenizer, overwrite: f.overwrite, opset, variants });
  model.dispose();
  const sizes = r.files
    .filter((f) => /^onnx\/[^/]+\.onnx$/.test(f) && !/_(fp16|quantized)\.onnx$/.test(f))
    .map((f) => `${f.slice('onnx/'.length)} ${(statSync(join(r.dir, f)).size / 2 ** 20).toFixed(1)} MB`);
  print(`exported ${what} -> ${r.dir}: ${r.files.join(', ')} (${sizes.join(', ')})`);
}
