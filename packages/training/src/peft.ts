// LoRA and QLoRA in any recipe: the `quantization:` block stores the loaded model's
// projections in 4 or 8 bits, and the `peft:` block wraps the model with a fresh adapter, or
// on resume with the checkpoint's (a LoRA run's checkpoints hold the adapter only; the base
// weights always come from model.pretrained).
import { ConfigError } from '@anneal/core';
import { loadPretrained, localModelDir, readHfConfig, type PretrainedModel } from '@anneal/modeling';
import { LoraModel, loadAdapter, type LoraConfig } from '@anneal/peft-lora';
import {
  isQuantized,
  loadQuantized,
  quantize,
  type QuantizationConfig,
  type QuantizationReport,
} from '@anneal/quantization';

/**
 * Where the base weights load from: the checkpoint for full fine-tuning, model.pretrained
 * for LoRA (which needs one: there is nothing to adapt in a model trained from scratch).
 */
export function baseWeightsFrom(
  pretrained: string,
  resumeDir: string | undefined,
  peft: LoraConfig | undefined,
  file: string,
): string;
export function baseWeightsFrom(
  pretrained: string | undefined,
  resumeDir: string | undefined,
  peft: LoraConfig | undefined,
  file: string,
): string | undefined;
export function baseWeightsFrom(
  pretrained: string | undefined,
  resumeDir: string | undefined,
  peft: LoraConfig | undefined,
  file: string,
): string | undefined {
  if (peft && !pretrained)
    throw new ConfigError('LoRA needs a pretrained model to adapt', {
      file,
      field: 'model.pretrained',
      hint: 'set model.pretrained, or remove peft to train from scratch',
    });
  return peft ? pretrained : (resumeDir ?? pretrained);
}

const describe = (r: QuantizationReport, method: string) =>
  `${r.layers} projections in ${method}: ${(r.storedBytes / 2 ** 20).toFixed(1)} MB instead of ${(r.float32Bytes / 2 ** 20).toFixed(1)} MB (${(r.storedBytes / r.parameters).toFixed(3)} bytes per parameter)`;

/**
 * The base model of a recipe (a folder or Hub repo id). With `quantization`, or when the
 * checkpoint was saved quantized (`anneal quantize`, or transformers + bitsandbytes), its
 * projections are quantized as they are read: the float32 projections are never all in memory.
 */
export async function loadBase(
  dirOrRepoId: string,
  quantization: QuantizationConfig | undefined,
  o: { info: (m: string) => void; field?: string },
): Promise<PretrainedModel> {
  const dir = await localModelDir(dirOrRepoId, { field: o.field ?? 'model.pretrained' });
  if (!quantization && !readHfConfig(dir).hf.quantization_config) return loadPretrained(dir);
  const { model, report, config } = await loadQuantized(dir, quantization);
  o.info(`loaded ${describe(report, config.method)}${quantization ? '' : ' (as the checkpoint stores them)'}`);
  return model;
}

/** The parts of a recipe's config that decide how its model trains (every recipe has them). */
export interface AdapterSettings {
  seed: number;
  peft?: LoraConfig;
  quantization?: QuantizationConfig;
  autocast: 'none' | 'bf16';
  model: { pretrained?: string };
  train: { gradientCheckpointing: boolean };
}

/**
 * The model a recipe trains: `base` in full, or wrapped in LoRA (QLoRA with quantization),
 * as the config says; activation checkpointing switched on or off. `peft` overrides the
 * config's (a classifier's head added to modulesToSave); `resumeDir` holds the adapter to load.
 */
export function withAdapter<M extends PretrainedModel>(
  base: M,
  cfg: AdapterSettings,
  run: { file: string; info: (m: string) => void; resumeDir?: string; peft?: LoraConfig },
): M | LoraModel {
  const peft = run.peft ?? cfg.peft;
  const { quantization, autocast } = cfg;
  const { file, info } = run;
  base.gradientCheckpointing = cfg.train.gradientCheckpointing;
  if (base.gradientCheckpointing)
    info(
      `activation checkpointing: each of the ${base.blockNames.length} blocks keeps its input and is recomputed in backward`,
    );
  if (quantization?.computeDtype === 'bfloat16' && autocast !== 'bf16')
    throw new ConfigError('quantization.computeDtype bfloat16 needs bf16 matmuls, which autocast: bf16 turns on', {
      file,
      field: 'quantization.computeDtype',
      hint: 'set autocast: bf16 (torch backend), or computeDtype: float32',
    });
  if ((quantization || isQuantized(base)) && !peft)
    throw new ConfigError('a quantized model cannot be fine-tuned in full', {
      file,
      field: quantization ? 'quantization' : 'model.pretrained',
      hint: 'add a peft: block (QLoRA), or remove quantization (or start from a float32 checkpoint)',
    });
  if (quantization && !isQuantized(base))
    info(`quantized ${describe(quantize(base, quantization), quantization.method)}`);
  if (!peft) return base;
  const lora = run.resumeDir ? loadAdapter(base, run.resumeDir) : new LoraModel(base, peft, cfg.seed, file);
  // adapter_config.json names the base the run loaded (model.pretrained, as the config gives it).
  lora.baseModelNameOrPath = cfg.model.pretrained ?? '';
  const pct = (100 * lora.numTrainableParameters) / base.numParameters;
  info(
    `LoRA r ${lora.config.r}, alpha ${lora.config.loraAlpha}: ${lora.numTrainableParameters} trainable parameters (${pct.toFixed(2)}% of ${base.numParameters}); the base is frozen`,
  );
  return lora;
}
