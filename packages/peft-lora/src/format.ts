// Reading PEFT's adapter files into a LoraModel (what saveAdapter writes, and what
// peft's save_pretrained writes in Python).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, FormatError, ShapeError, readSafetensors, requireFloatTensor } from '@anneal/core';
import type { PretrainedModel } from '@anneal/modeling';
import { fromPeftConfig } from './config.js';
import { LoraModel } from './lora-model.js';

/** Is `dir` a PEFT adapter folder? */
export function isAdapterDir(dir: string): boolean {
  return existsSync(join(dir, 'adapter_config.json'));
}

/**
 * Wraps `base` with the adapter in `dir` (adapter_config.json + adapter_model.safetensors).
 * Every adapter tensor must be in the file with its shape, and the file may hold nothing else.
 */
export function loadAdapter(base: PretrainedModel, dir: string): LoraModel {
  const cfgFile = join(dir, 'adapter_config.json');
  if (!existsSync(cfgFile))
    throw new CheckpointError('no adapter_config.json: not a PEFT adapter folder', {
      file: dir,
      hint: 'point at the folder saveAdapter (or peft save_pretrained) wrote',
    });
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(cfgFile, 'utf8'));
  } catch (e) {
    throw new FormatError(`not valid JSON: ${(e as Error).message}`, { file: cfgFile });
  }
  const config = fromPeftConfig(raw, cfgFile);
  const file = join(dir, 'adapter_model.safetensors');
  if (!existsSync(file))
    throw new CheckpointError(
      'adapter_model.safetensors is missing (Anneal reads safetensors only, never adapter_model.bin)',
      { file: dir },
    );
  const { tensors } = readSafetensors(file);
  const model = new LoraModel(base, config, 0, cfgFile);
  if (typeof raw.base_model_name_or_path === 'string') model.baseModelNameOrPath = raw.base_model_name_or_path;
  for (const [name, p] of model.params) {
    const t = tensors.get(name);
    if (!t) throw new CheckpointError(`tensor ${name} is missing`, { file, field: name });
    if (t.shape.join(',') !== p.shape.join(','))
      throw new ShapeError(`shape [${t.shape}] does not match the adapter's [${p.shape}]`, {
        file,
        field: name,
        hint: 'the adapter was trained on a different base model or rank',
      });
    requireFloatTensor(t, p.shape, { file, name });
    tf.tidy(() => p.assign(tf.tensor(Float32Array.from(t.data as ArrayLike<number>), p.shape, 'float32')));
  }
  const extra = [...tensors.keys()].filter((k) => !model.params.has(k));
  if (extra.length) {
    model.dispose();
    throw new CheckpointError(
      `unexpected tensors ${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ` (+${extra.length - 3})` : ''}`,
      { file, hint: 'the adapter config and its weights disagree, or the base model has other module names' },
    );
  }
  return model;
}
