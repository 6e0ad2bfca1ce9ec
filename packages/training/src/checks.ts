// Checks the recipes make on a loaded model before training, with the field to change.
import { ConfigError } from '@anneal/core';
import type { PretrainedModel } from '@anneal/modeling';

/** SFT, DPO and PPO need a causal language model. */
export function requireCausalLm(
  model: PretrainedModel,
  name: string,
  recipe: string,
  o: { file: string; field: string },
): void {
  const arch = String((model.hfConfig().architectures as string[] | undefined)?.[0]);
  if (!/ForCausalLM$|LMHeadModel$/.test(arch))
    throw new ConfigError(`${recipe} needs a causal language model, and ${name} is ${arch}`, {
      file: o.file,
      field: o.field,
      hint: 'use a causal LM checkpoint: GPT-2, Llama, Qwen2/Qwen3, Mistral, SmolLM3, Phi-3 or Gemma 3',
    });
}

/** Sequences of data.maxLength tokens must fit the model's position table. */
export function requireFits(maxLength: number, model: { maxPositions: number }, file: string): void {
  if (maxLength > model.maxPositions)
    throw new ConfigError(`data.maxLength ${maxLength} > the model's ${model.maxPositions} positions`, {
      file,
      field: 'data.maxLength',
      hint: `set data.maxLength to ${model.maxPositions} or less (onBadRow: truncate shortens longer rows), or use a model with more positions`,
    });
}

/**
 * Every id the tokenizer can produce must index a row of the model's embedding table
 * (config.json's vocab_size); a larger id would fail deep inside a gather, or read garbage.
 */
export function requireTokenizerFits(
  tok: { vocabSize: number },
  model: PretrainedModel,
  o: { file: string; field: string },
): void {
  const size = model.hfConfig().vocab_size;
  if (typeof size === 'number' && tok.vocabSize > size)
    throw new ConfigError(
      `the tokenizer's ids go up to ${tok.vocabSize - 1}, and the model has ${size} embeddings (config.json vocab_size)`,
      {
        file: o.file,
        field: o.field,
        hint: 'use the tokenizer the model was trained with, or a model with a larger vocabulary',
      },
    );
}
