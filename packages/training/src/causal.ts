// Recipes that need a causal language model (SFT, DPO, PPO) check the loaded one is.
import { ConfigError } from '@anneal/core';
import type { PretrainedModel } from '@anneal/modeling';

export function requireCausalLm(model: PretrainedModel, name: string, recipe: string, o: { file: string; field: string }): void {
  const arch = String((model.hfConfig().architectures as string[] | undefined)?.[0]);
  if (!/ForCausalLM$|LMHeadModel$/.test(arch)) throw new ConfigError(`${recipe} needs a causal language model, and ${name} is ${arch}`, { file: o.file, field: o.field, hint: 'use a GPT-2, Llama, Qwen2 or Mistral language-model checkpoint' });
}
