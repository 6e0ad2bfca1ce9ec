// LoRA and QLoRA in any recipe: the `quantization:` block stores the loaded model's
// projections in 4 or 8 bits, and the `peft:` block wraps the model with a fresh adapter, or
// on resume with the checkpoint's (a LoRA run's checkpoints hold the adapter only; the base
// weights always come from model.pretrained).
import { ConfigError } from '@anneal/core';
import type { PretrainedModel } from '@anneal/modeling';
import { LoraModel, loadAdapter, type LoraConfig } from '@anneal/peft-lora';
import { quantize, type QuantizationConfig } from '@anneal/quantization';

/**
 * Where the base weights load from: the checkpoint for full fine-tuning, model.pretrained
 * for LoRA (which needs one: there is nothing to adapt in a model trained from scratch).
 */
export function baseWeightsFrom(pretrained: string, resumeDir: string | undefined, peft: LoraConfig | undefined, file: string): string;
export function baseWeightsFrom(pretrained: string | undefined, resumeDir: string | undefined, peft: LoraConfig | undefined, file: string): string | undefined;
export function baseWeightsFrom(pretrained: string | undefined, resumeDir: string | undefined, peft: LoraConfig | undefined, file: string): string | undefined {
  if (peft && !pretrained) throw new ConfigError('LoRA needs a pretrained model to adapt', { file, field: 'model.pretrained', hint: 'set model.pretrained, or remove peft to train from scratch' });
  return peft ? pretrained : resumeDir ?? pretrained;
}

export function withAdapter<M extends PretrainedModel>(base: M, peft: LoraConfig | undefined, o: { resumeDir?: string; seed: number; file: string; info: (m: string) => void; quantization?: QuantizationConfig }): M | LoraModel {
  if (o.quantization) {
    if (!peft) throw new ConfigError('a quantized model cannot be fine-tuned in full', { file: o.file, field: 'quantization', hint: 'add a peft: block (QLoRA), or remove quantization' });
    const r = quantize(base, o.quantization);
    o.info(`quantized ${r.layers} projections to ${o.quantization.method}: ${(r.storedBytes / 2 ** 20).toFixed(1)} MB instead of ${(r.float32Bytes / 2 ** 20).toFixed(1)} MB (${(r.storedBytes / r.parameters).toFixed(3)} bytes per parameter)`);
  }
  if (!peft) return base;
  const lora = o.resumeDir ? loadAdapter(base, o.resumeDir) : new LoraModel(base, peft, o.seed, o.file);
  const pct = (100 * lora.numTrainableParameters) / base.numParameters;
  o.info(`LoRA r ${lora.config.r}, alpha ${lora.config.loraAlpha}: ${lora.numTrainableParameters} trainable parameters (${pct.toFixed(2)}% of ${base.numParameters}); the base is frozen`);
  return lora;
}
