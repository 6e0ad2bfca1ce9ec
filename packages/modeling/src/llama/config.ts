// Llama and Qwen2 hyperparameters, with the meaning and defaults of transformers'
// LlamaConfig and Qwen2Config (camelCase here, snake_case in config.json). Mistral-,
// SmolLM- and TinyLlama-style checkpoints are Llama configs.
import { z } from 'zod';
import { ConfigError } from '@anneal/core';

const RopeScalingSchema = z
  .object({
    rope_type: z.enum(['linear', 'llama3', 'default']).optional(),
    type: z.enum(['linear', 'llama3', 'default']).optional(),
    factor: z.number().positive().optional(),
    low_freq_factor: z.number().positive().optional(),
    high_freq_factor: z.number().positive().optional(),
    original_max_position_embeddings: z.number().int().positive().optional(),
  })
  .passthrough();

export const LlamaConfigSchema = z
  .object({
    modelType: z.enum(['llama', 'qwen2', 'mistral']),
    vocabSize: z.number().int().positive(),
    hiddenSize: z.number().int().positive(),
    intermediateSize: z.number().int().positive(),
    numHiddenLayers: z.number().int().positive(),
    numAttentionHeads: z.number().int().positive(),
    numKeyValueHeads: z.number().int().positive(),
    /** null = hiddenSize / numAttentionHeads. */
    headDim: z.number().int().positive().nullable(),
    maxPositionEmbeddings: z.number().int().positive(),
    rmsNormEps: z.number().positive(),
    ropeTheta: z.number().positive(),
    ropeScaling: RopeScalingSchema.nullable(),
    tieWordEmbeddings: z.boolean(),
    /** Llama's attention_bias: biases on q, k, v and o. Qwen2 has them on q, k, v only. */
    attentionBias: z.boolean(),
    mlpBias: z.boolean(),
    hiddenAct: z.literal('silu'),
    initializerRange: z.number().positive(),
    attentionDropout: z.number().min(0).max(1),
    bosTokenId: z.number().int().nullable(),
    eosTokenId: z.union([z.number().int(), z.array(z.number().int())]).nullable(),
    padTokenId: z.number().int().nullable(),
  })
  .strict();

export type LlamaConfig = z.infer<typeof LlamaConfigSchema>;

/** transformers' LlamaConfig defaults (Llama-2 7B). */
export const LLAMA_DEFAULTS: LlamaConfig = {
  modelType: 'llama',
  vocabSize: 32000,
  hiddenSize: 4096,
  intermediateSize: 11008,
  numHiddenLayers: 32,
  numAttentionHeads: 32,
  numKeyValueHeads: 32,
  headDim: null,
  maxPositionEmbeddings: 2048,
  rmsNormEps: 1e-6,
  ropeTheta: 10000,
  ropeScaling: null,
  tieWordEmbeddings: false,
  attentionBias: false,
  mlpBias: false,
  hiddenAct: 'silu',
  initializerRange: 0.02,
  attentionDropout: 0,
  bosTokenId: 1,
  eosTokenId: 2,
  padTokenId: null,
};

/** transformers' Qwen2Config defaults. */
export const QWEN2_DEFAULTS: LlamaConfig = {
  ...LLAMA_DEFAULTS,
  modelType: 'qwen2',
  vocabSize: 151936,
  intermediateSize: 22016,
  maxPositionEmbeddings: 32768,
  bosTokenId: null,
  eosTokenId: null,
};

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export const headDimOf = (c: LlamaConfig) => c.headDim ?? c.hiddenSize / c.numAttentionHeads;

export function checkLlamaConfig(c: LlamaConfig, file?: string): void {
  if (c.headDim === null && c.hiddenSize % c.numAttentionHeads !== 0)
    throw new ConfigError(
      `hidden_size ${c.hiddenSize} is not divisible by num_attention_heads ${c.numAttentionHeads}`,
      { file, field: 'num_attention_heads' },
    );
  if (c.numAttentionHeads % c.numKeyValueHeads !== 0)
    throw new ConfigError(
      `num_attention_heads ${c.numAttentionHeads} is not a multiple of num_key_value_heads ${c.numKeyValueHeads}`,
      { file, field: 'num_key_value_heads' },
    );
  if (headDimOf(c) % 2 !== 0)
    throw new ConfigError(`head dimension ${headDimOf(c)} must be even for rotary embeddings`, {
      file,
      field: 'head_dim',
    });
}

/** Reads a Llama / Qwen2 / Mistral config.json object. */
export function llamaConfigFromHf(hf: Record<string, unknown>, file?: string): LlamaConfig {
  const type = hf.model_type;
  if (type !== 'llama' && type !== 'qwen2' && type !== 'mistral')
    throw new ConfigError(`model_type ${JSON.stringify(type)} is not llama, qwen2 or mistral`, {
      file,
      field: 'model_type',
    });
  for (const k of ['use_sliding_window'])
    if (hf[k] === true) throw new ConfigError(`${k}=true is not supported`, { file, field: k });
  if (
    type === 'mistral' &&
    hf.sliding_window !== null &&
    hf.sliding_window !== undefined &&
    (hf.sliding_window as number) < (hf.max_position_embeddings as number)
  ) {
    throw new ConfigError(`sliding_window ${hf.sliding_window} shorter than max_position_embeddings is not supported`, {
      file,
      field: 'sliding_window',
    });
  }
  const base = type === 'qwen2' ? QWEN2_DEFAULTS : LLAMA_DEFAULTS;
  const picked: Record<string, unknown> = { modelType: type };
  for (const k of Object.keys(LLAMA_DEFAULTS)) {
    const v = hf[snake(k)];
    if (v !== undefined && k !== 'modelType') picked[k] = v;
  }
  if (type === 'qwen2') picked.attentionBias = false; // Qwen2's q/k/v biases are not this flag
  if (picked.numKeyValueHeads === undefined || picked.numKeyValueHeads === null)
    picked.numKeyValueHeads = picked.numAttentionHeads ?? base.numAttentionHeads;
  const parsed = LlamaConfigSchema.safeParse({ ...base, ...picked });
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ConfigError(`invalid value: ${first.message}`, { file, field: snake(String(first.path[0])) });
  }
  return parsed.data;
}

/** config.json as transformers writes it. */
export function llamaConfigToHf(c: LlamaConfig): Record<string, unknown> {
  const arch =
    c.modelType === 'qwen2'
      ? 'Qwen2ForCausalLM'
      : c.modelType === 'mistral'
        ? 'MistralForCausalLM'
        : 'LlamaForCausalLM';
  const out: Record<string, unknown> = { architectures: [arch] };
  for (const [k, v] of Object.entries(c)) out[snake(k)] = v;
  if (c.modelType === 'qwen2') delete out.attention_bias;
  return { ...out, torch_dtype: 'float32', transformers_version: '4.40.0', use_cache: true };
}
