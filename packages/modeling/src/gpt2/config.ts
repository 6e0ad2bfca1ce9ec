// GPT-2 hyperparameters, with the same meaning and defaults as transformers' GPT2Config.
// YAML configs use the camelCase names; config.json uses Hugging Face's snake_case.
import { z } from 'zod';
import { ConfigError } from '@anneal/core';

export const Gpt2ConfigSchema = z
  .object({
    vocabSize: z.number().int().positive().default(50257),
    nPositions: z.number().int().positive().default(1024),
    nEmbd: z.number().int().positive().default(768),
    nLayer: z.number().int().positive().default(12),
    nHead: z.number().int().positive().default(12),
    /** MLP width; null = 4 * nEmbd. */
    nInner: z.number().int().positive().nullable().default(null),
    activationFunction: z.enum(['gelu_new', 'gelu', 'gelu_pytorch_tanh', 'relu']).default('gelu_new'),
    residPdrop: z.number().min(0).max(1).default(0.1),
    embdPdrop: z.number().min(0).max(1).default(0.1),
    attnPdrop: z.number().min(0).max(1).default(0.1),
    layerNormEpsilon: z.number().positive().default(1e-5),
    initializerRange: z.number().positive().default(0.02),
    bosTokenId: z.number().int().default(50256),
    eosTokenId: z.number().int().default(50256),
  })
  .strict();

export type Gpt2Config = z.infer<typeof Gpt2ConfigSchema>;

const HF_KEYS: Record<keyof Gpt2Config, string> = {
  vocabSize: 'vocab_size',
  nPositions: 'n_positions',
  nEmbd: 'n_embd',
  nLayer: 'n_layer',
  nHead: 'n_head',
  nInner: 'n_inner',
  activationFunction: 'activation_function',
  residPdrop: 'resid_pdrop',
  embdPdrop: 'embd_pdrop',
  attnPdrop: 'attn_pdrop',
  layerNormEpsilon: 'layer_norm_epsilon',
  initializerRange: 'initializer_range',
  bosTokenId: 'bos_token_id',
  eosTokenId: 'eos_token_id',
};

export function checkGpt2Config(c: Gpt2Config, file?: string): void {
  if (c.nEmbd % c.nHead !== 0) {
    throw new ConfigError(`nEmbd ${c.nEmbd} is not divisible by nHead ${c.nHead}`, { file, field: 'model.nHead', hint: 'pick nHead so that nEmbd / nHead is a whole number' });
  }
}

/** config.json as transformers writes it for GPT2LMHeadModel. */
export function gpt2ConfigToHf(c: Gpt2Config): Record<string, unknown> {
  const out: Record<string, unknown> = { architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' };
  for (const [k, hf] of Object.entries(HF_KEYS)) out[hf] = c[k as keyof Gpt2Config];
  return { ...out, scale_attn_weights: true, use_cache: true, torch_dtype: 'float32', transformers_version: '4.40.0' };
}

/** Reads a transformers GPT-2 config.json object; fields we do not model must have their default values. */
export function gpt2ConfigFromHf(hf: Record<string, unknown>, file?: string): Gpt2Config {
  if (hf.model_type !== 'gpt2') throw new ConfigError(`model_type ${JSON.stringify(hf.model_type)} is not "gpt2"`, { file, field: 'model_type' });
  const unsupported: Array<[string, unknown]> = [
    ['scale_attn_weights', true],
    ['scale_attn_by_inverse_layer_idx', false],
    ['reorder_and_upcast_attn', false],
  ];
  for (const [k, expected] of unsupported) {
    if (k in hf && hf[k] !== expected) throw new ConfigError(`${k}=${JSON.stringify(hf[k])} is not supported (only ${expected})`, { file, field: k });
  }
  const picked: Record<string, unknown> = {};
  for (const [k, hfKey] of Object.entries(HF_KEYS)) if (hf[hfKey] !== undefined) picked[k] = hf[hfKey];
  const parsed = Gpt2ConfigSchema.safeParse(picked);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ConfigError(`invalid value: ${first.message}`, { file, field: HF_KEYS[first.path[0] as keyof Gpt2Config] });
  }
  return parsed.data;
}
