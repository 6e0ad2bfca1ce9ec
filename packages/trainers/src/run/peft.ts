// LoRA in any recipe: the `peft:` block wraps the loaded model with a fresh adapter, or on
// resume with the checkpoint's (a LoRA run's checkpoints hold the adapter only; the base
// weights always come from model.pretrained).
import type { PretrainedModel } from '@anneal/modeling';
import { LoraModel, loadAdapter, type LoraConfig } from '@anneal/peft-lora';

/** Where the base weights load from: the checkpoint for full fine-tuning, model.pretrained for LoRA. */
export function baseWeightsFrom(pretrained: string, resumeDir: string | undefined, peft: LoraConfig | undefined): string {
  return peft ? pretrained : resumeDir ?? pretrained;
}

export function withAdapter<M extends PretrainedModel>(base: M, peft: LoraConfig | undefined, o: { resumeDir?: string; seed: number; file: string; info: (m: string) => void }): M | LoraModel {
  if (!peft) return base;
  const lora = o.resumeDir ? loadAdapter(base, o.resumeDir) : new LoraModel(base, peft, o.seed, o.file);
  const pct = (100 * lora.numTrainableParameters) / base.numParameters;
  o.info(`LoRA r ${lora.config.r}, alpha ${lora.config.loraAlpha}: ${lora.numTrainableParameters} trainable parameters (${pct.toFixed(2)}% of ${base.numParameters}); the base is frozen`);
  return lora;
}
