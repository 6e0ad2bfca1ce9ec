// GPT-2 hyperparameters, with the same meaning and defaults as transformers' GPT2Config.
// YAML configs use the camelCase names; config.json uses Hugging Face's snake_case.
import { z } from 'zod';
import { ConfigError } from '@anneal/core';

const fields = {
  vocabSize: z.number().int().positive(),
  nPositions: z.number().int().positive(),
  nEmbd: z.number().int().positive(),
  nLayer: z.number().int().positive(),
  nHead: z.number().int().positive(),
  /** MLP width; null = 4 * nEmbd. */
  nInner: z.number().int().positive().nullable(),
  activationFunction: z.enum(['gelu_new', 'gelu', 'gelu_pytorch_tanh', 'relu']),
  residPdrop: z.number().min(0).max(1),
  embdPdrop: z.number().min(0).max(1),
  attnPdrop: z.number().min(0).max(1),
  layerNormEpsilon: z.number().positive(),
  initializerRange: z.number().positive(),
  bosTokenId: z.number().int(),
  eosTokenId: z.number().int(),
};

/** Every field required. */
export const Gpt2ConfigSchema = z.object(fields).strict();
/** Any subset of fields (e.g. in a YAML config); fill the rest from GPT2_DEFAULTS or the data. */
export const Gpt2ConfigPartialSchema = z.object(fields).partial().strict();

export type Gpt2Config = z.infer<typeof Gpt2ConfigSchema>;

/** transformers' GPT2Config defaults (GPT-2 small). */
export const GPT2_DEFAULTS: Gpt2Config = {
  vocabSize: 50257,
  nPositions: 1024,
  nEmbd: 768,
  nLayer: 12,
  nHead: 12,
  nInner: null,
  activationFunction: 'gelu_new',
  residPdrop: 0.1,
  embdPdrop: 0.1,
  attnPdrop: 0.1,
  layerNormEpsilon: 1e-5,
  initializerRange: 0.02,
  bosTokenId: 50256,
  eosTokenId: 50256,
};

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
    throw new ConfigError(`nEmbd ${c.nEmbd} is not divisible by nHead ${c.nHead}`, {
      file,
      field: 'model.nHead',
      hint: 'pick nHead so that nEmbd / nHead is a whole number',
    });
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
  if (hf.model_type !== 'gpt2')
    throw new ConfigError(`model_type ${JSON.stringify(hf.model_type)} is not "gpt2"`, { file, field: 'model_type' });
  const unsupported: Array<[string, unknown]> = [
    ['scale_attn_weights', true],
    ['scale_attn_by_inverse_layer_idx', false],
    ['reorder_and_upcast_attn', false],
  ];
  for (const [k, expected] of unsupported) {
    if (k in hf && hf[k] !== expected)
      throw new ConfigError(`${k}=${JSON.stringify(hf[k])} is not supported (only ${expected})`, { file, field: k });
  }
  const picked: Record<string, unknown> = {};
  for (const [k, hfKey] of Object.entries(HF_KEYS)) if (hf[hfKey] !== undefined) picked[k] = hf[hfKey];
  const parsed = Gpt2ConfigSchema.safeParse({ ...GPT2_DEFAULTS, ...picked });
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ConfigError(`invalid value: ${first.message}`, {
      file,
      field: HF_KEYS[first.path[0] as keyof Gpt2Config],
    });
  }
  return parsed.data;
}
