// Llama and Qwen2 hyperparameters, with the meaning and defaults of transformers'
// LlamaConfig and Qwen2Config (camelCase here, snake_case in config.json). Mistral-,
// SmolLM- and TinyLlama-style checkpoints are Llama configs.
import { z } from 'zod';
import { ConfigError } from '@anneal/core';

const RopeScalingSchema = z
  .object({
    rope_type: z.enum(['linear', 'llama3', 'default', 'longrope']).optional(),
    type: z.enum(['linear', 'llama3', 'default', 'longrope']).optional(),
    factor: z.number().positive().optional(),
    /** longrope (Phi-3 128k, Phi-4-mini): per-frequency divisors below and beyond original_max_position_embeddings. */
    short_factor: z.array(z.number().positive()).optional(),
    long_factor: z.array(z.number().positive()).optional(),
    attention_factor: z.number().positive().optional(),
    low_freq_factor: z.number().positive().optional(),
    high_freq_factor: z.number().positive().optional(),
    original_max_position_embeddings: z.number().int().positive().optional(),
  })
  .passthrough();

/** The decoder families this file reads: Llama and the models built on its block. */
export const LLAMA_FAMILY = ['llama', 'qwen2', 'mistral', 'qwen3', 'smollm3', 'phi3', 'gemma3_text'] as const;

export const LlamaConfigSchema = z
  .object({
    modelType: z.enum(LLAMA_FAMILY),
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
    /** silu (SwiGLU); gelu_pytorch_tanh (Gemma's GeGLU). */
    hiddenAct: z.enum(['silu', 'gelu_pytorch_tanh']),
    initializerRange: z.number().positive(),
    attentionDropout: z.number().min(0).max(1),
    bosTokenId: z.number().int().nullable(),
    eosTokenId: z.union([z.number().int(), z.array(z.number().int())]).nullable(),
    padTokenId: z.number().int().nullable(),
    /** Keys within this many positions back: a query at q sees keys q - window < k <= q (its sliding layers). */
    slidingWindow: z.number().int().positive().nullable(),
    /** Per layer: full_attention or sliding_attention (null: from the family's rule, see layerKinds). */
    layerTypes: z.array(z.enum(['full_attention', 'sliding_attention'])).nullable(),
    /** Qwen2/Qwen3/SmolLM3: windows only with use_sliding_window, on layers >= max_window_layers. */
    useSlidingWindow: z.boolean(),
    maxWindowLayers: z.number().int().min(0).nullable(),
    /** SmolLM3: 1 = the layer applies RoPE, 0 = NoPE; or every no_rope_layer_interval-th layer is NoPE. */
    noRopeLayers: z.array(z.number().int().min(0).max(1)).nullable(),
    noRopeLayerInterval: z.number().int().positive().nullable(),
    /** Phi-3: RoPE on this fraction of each head's dimensions, the rest pass through. */
    partialRotaryFactor: z.number().positive().max(1),
    /** Phi-3: the context the model was pretrained on (longrope switches factors beyond it). */
    originalMaxPositionEmbeddings: z.number().int().positive().nullable(),
    /** Gemma 3: scores scaled by query_pre_attn_scalar^-0.5; local layers' RoPE base; tanh soft-capping. */
    queryPreAttnScalar: z.number().positive().nullable(),
    ropeLocalBaseFreq: z.number().positive().nullable(),
    slidingWindowPattern: z.number().int().positive().nullable(),
    finalLogitSoftcapping: z.number().positive().nullable(),
    attnLogitSoftcapping: z.number().positive().nullable(),
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
  slidingWindow: null,
  layerTypes: null,
  useSlidingWindow: false,
  maxWindowLayers: null,
  noRopeLayers: null,
  noRopeLayerInterval: null,
  partialRotaryFactor: 1,
  originalMaxPositionEmbeddings: null,
  queryPreAttnScalar: null,
  ropeLocalBaseFreq: null,
  slidingWindowPattern: null,
  finalLogitSoftcapping: null,
  attnLogitSoftcapping: null,
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
  slidingWindow: 4096,
  maxWindowLayers: 28,
};

/**
 * Each family's class defaults (transformers 4.57's *Config), which config.json leaves out
 * when a value equals them: a missing key means the default, not false or null.
 */
export const FAMILY_DEFAULTS: Record<(typeof LLAMA_FAMILY)[number], LlamaConfig> = {
  llama: LLAMA_DEFAULTS,
  qwen2: QWEN2_DEFAULTS,
  mistral: {
    ...LLAMA_DEFAULTS,
    modelType: 'mistral',
    intermediateSize: 14336,
    numKeyValueHeads: 8,
    maxPositionEmbeddings: 4096 * 32,
    slidingWindow: 4096,
  },
  qwen3: {
    ...QWEN2_DEFAULTS,
    modelType: 'qwen3',
    headDim: 128,
    numKeyValueHeads: 32,
  },
  smollm3: {
    ...LLAMA_DEFAULTS,
    modelType: 'smollm3',
    vocabSize: 128256,
    hiddenSize: 2048,
    intermediateSize: 11008,
    numHiddenLayers: 36,
    numAttentionHeads: 16,
    numKeyValueHeads: 4,
    maxPositionEmbeddings: 32768,
    ropeTheta: 2000000,
    tieWordEmbeddings: true,
    padTokenId: 128004,
    bosTokenId: 128000,
    eosTokenId: 128001,
    noRopeLayerInterval: 4,
  },
  phi3: {
    ...LLAMA_DEFAULTS,
    modelType: 'phi3',
    vocabSize: 32064,
    hiddenSize: 3072,
    intermediateSize: 8192,
    maxPositionEmbeddings: 4096,
    rmsNormEps: 1e-5,
    eosTokenId: 32000,
    padTokenId: 32000,
  },
  gemma3_text: {
    ...LLAMA_DEFAULTS,
    modelType: 'gemma3_text',
    vocabSize: 262208,
    hiddenSize: 2304,
    intermediateSize: 9216,
    numHiddenLayers: 26,
    numAttentionHeads: 8,
    numKeyValueHeads: 4,
    headDim: 256,
    hiddenAct: 'gelu_pytorch_tanh',
    maxPositionEmbeddings: 131072,
    ropeTheta: 1000000,
    tieWordEmbeddings: true,
    padTokenId: 0,
    bosTokenId: 2,
    eosTokenId: 1,
    queryPreAttnScalar: 256,
    slidingWindow: 4096,
    ropeLocalBaseFreq: 10000,
    slidingWindowPattern: 6,
  },
};

/** The keys of config.json each family has beyond Llama's. */
const FAMILY_KEYS: Record<(typeof LLAMA_FAMILY)[number], Array<keyof LlamaConfig>> = {
  llama: [],
  qwen2: ['slidingWindow', 'layerTypes', 'useSlidingWindow', 'maxWindowLayers'],
  mistral: ['slidingWindow'],
  qwen3: ['slidingWindow', 'layerTypes', 'useSlidingWindow', 'maxWindowLayers'],
  smollm3: ['slidingWindow', 'layerTypes', 'useSlidingWindow', 'noRopeLayers', 'noRopeLayerInterval'],
  phi3: ['slidingWindow', 'partialRotaryFactor', 'originalMaxPositionEmbeddings'],
  gemma3_text: [
    'slidingWindow',
    'layerTypes',
    'queryPreAttnScalar',
    'ropeLocalBaseFreq',
    'slidingWindowPattern',
    'finalLogitSoftcapping',
    'attnLogitSoftcapping',
  ],
};
const LLAMA_ONLY: Array<keyof LlamaConfig> = ['attentionBias', 'mlpBias'];
const EXTRA_KEYS = new Set(Object.values(FAMILY_KEYS).flat());

/** transformers' class of each family's causal LM. */
const ARCHITECTURE: Record<(typeof LLAMA_FAMILY)[number], string> = {
  llama: 'Llama',
  qwen2: 'Qwen2',
  mistral: 'Mistral',
  qwen3: 'Qwen3',
  smollm3: 'SmolLM3',
  phi3: 'Phi3',
  gemma3_text: 'Gemma3',
};

/** The class name of a family's model with `head` (ForCausalLM, ForSequenceClassification). */
export const architectureOf = (c: LlamaConfig, head: 'ForCausalLM' | 'ForSequenceClassification') =>
  `${ARCHITECTURE[c.modelType]}${head}`;

/** Which layers attend within a sliding window, as each family's config defines it. */
export function layerKinds(c: LlamaConfig): Array<'full' | 'sliding'> {
  const n = c.numHiddenLayers;
  if (c.layerTypes) return c.layerTypes.map((t) => (t === 'sliding_attention' ? 'sliding' : 'full'));
  if (!c.slidingWindow) return new Array(n).fill('full');
  switch (c.modelType) {
    case 'mistral':
    case 'phi3':
      return new Array(n).fill('sliding');
    case 'gemma3_text':
      return Array.from({ length: n }, (_, i) => ((i + 1) % (c.slidingWindowPattern ?? 6) ? 'sliding' : 'full'));
    case 'qwen2':
    case 'qwen3':
      return Array.from({ length: n }, (_, i) =>
        c.useSlidingWindow && i >= (c.maxWindowLayers ?? 0) ? 'sliding' : 'full',
      );
    case 'smollm3':
      return Array.from({ length: n }, (_, i) => (c.useSlidingWindow && !ropeLayers(c)[i] ? 'sliding' : 'full'));
    default:
      return new Array(n).fill('full');
  }
}

/** Which layers apply RoPE (SmolLM3's NoPE layers do not). */
export function ropeLayers(c: LlamaConfig): boolean[] {
  const n = c.numHiddenLayers;
  if (c.noRopeLayers) return c.noRopeLayers.map((v) => v === 1);
  if (c.modelType === 'smollm3')
    return Array.from({ length: n }, (_, i) => (i + 1) % (c.noRopeLayerInterval ?? 4) !== 0);
  return new Array(n).fill(true);
}

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

/** config.json keys Anneal reads but whose non-default values it cannot honour. */
const UNSUPPORTED: Array<[string, (v: unknown) => boolean, string]> = [
  ['resid_pdrop', (v) => v === 0 || v === undefined, 'Phi-3 residual dropout'],
  ['embd_pdrop', (v) => v === 0 || v === undefined, 'Phi-3 embedding dropout'],
  ['use_bidirectional_attention', (v) => v === false || v === undefined, 'bidirectional attention'],
];

/** Reads a config.json of the Llama family (Llama, Qwen2, Qwen3, Mistral, SmolLM3, Phi-3, Gemma 3 text). */
export function llamaConfigFromHf(raw: Record<string, unknown>, file?: string): LlamaConfig {
  // gemma3 (multimodal) nests the language model's config in text_config
  const hf = raw.model_type === 'gemma3' && raw.text_config ? (raw.text_config as Record<string, unknown>) : raw;
  const type = (hf.model_type ?? (raw.model_type === 'gemma3' ? 'gemma3_text' : undefined)) as string;
  if (!(LLAMA_FAMILY as readonly string[]).includes(type))
    throw new ConfigError(`model_type ${JSON.stringify(type)} is not one of ${LLAMA_FAMILY.join(', ')}`, {
      file,
      field: 'model_type',
    });
  const family = type as (typeof LLAMA_FAMILY)[number];
  for (const [k, ok, what] of UNSUPPORTED)
    if (!ok(hf[k]))
      throw new ConfigError(`${k}=${JSON.stringify(hf[k])}: ${what} is not supported`, {
        file,
        field: k,
        hint: `Anneal runs this family with ${k} at its default`,
      });
  const scaling = hf.rope_scaling as { rope_type?: string; type?: string } | null | undefined;
  const kind = scaling?.rope_type ?? scaling?.type;
  if (kind && !['linear', 'llama3', 'default', 'longrope'].includes(kind))
    throw new ConfigError(`rope_scaling type ${JSON.stringify(kind)} is not supported`, {
      file,
      field: 'rope_scaling',
      hint: 'supported: default, linear, llama3, longrope (yarn and dynamic are not implemented yet)',
    });
  const base = FAMILY_DEFAULTS[family];
  const picked: Record<string, unknown> = { modelType: family };
  for (const k of Object.keys(LLAMA_DEFAULTS) as Array<keyof LlamaConfig>) {
    const key =
      k === 'slidingWindowPattern' && hf.sliding_window_pattern === undefined ? '_sliding_window_pattern' : snake(k);
    const v = hf[k === 'hiddenAct' && family === 'gemma3_text' ? 'hidden_activation' : key];
    if (v !== undefined && k !== 'modelType') picked[k] = v;
  }
  if (family === 'qwen2') picked.attentionBias = false; // Qwen2's q/k/v biases are not this flag
  if (picked.numKeyValueHeads === undefined || picked.numKeyValueHeads === null)
    picked.numKeyValueHeads = picked.numAttentionHeads ?? base.numAttentionHeads;
  const parsed = LlamaConfigSchema.safeParse({ ...base, ...picked });
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ConfigError(`invalid value: ${first.message}`, { file, field: snake(String(first.path[0])) });
  }
  const c = parsed.data;
  if (c.layerTypes && c.layerTypes.length !== c.numHiddenLayers)
    throw new ConfigError(`layer_types has ${c.layerTypes.length} entries for ${c.numHiddenLayers} layers`, {
      file,
      field: 'layer_types',
    });
  if (c.noRopeLayers && c.noRopeLayers.length < c.numHiddenLayers)
    throw new ConfigError(`no_rope_layers has ${c.noRopeLayers.length} entries for ${c.numHiddenLayers} layers`, {
      file,
      field: 'no_rope_layers',
    });
  const rs = c.ropeScaling;
  if ((rs?.rope_type ?? rs?.type) === 'longrope') {
    const half = Math.floor((headDimOf(c) * c.partialRotaryFactor) / 2);
    for (const k of ['short_factor', 'long_factor'] as const)
      if (rs![k]?.length !== half)
        throw new ConfigError(
          `rope_scaling.${k} has ${rs![k]?.length ?? 'no'} entries, expected ${half} (one per frequency)`,
          {
            file,
            field: `rope_scaling.${k}`,
          },
        );
  }
  if (layerKinds(c).includes('sliding') && !c.slidingWindow)
    throw new ConfigError('layer_types has sliding_attention layers and sliding_window is not set', {
      file,
      field: 'sliding_window',
    });
  return c;
}

/** config.json as transformers writes it. */
export function llamaConfigToHf(c: LlamaConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { architectures: [architectureOf(c, 'ForCausalLM')] };
  const own = new Set(FAMILY_KEYS[c.modelType]);
  for (const [k, v] of Object.entries(c) as Array<[keyof LlamaConfig, unknown]>) {
    if (EXTRA_KEYS.has(k) && !own.has(k)) continue;
    if (LLAMA_ONLY.includes(k) && (c.modelType === 'qwen2' || c.modelType === 'phi3' || c.modelType === 'mistral'))
      continue;
    const key = k === 'hiddenAct' && c.modelType === 'gemma3_text' ? 'hidden_activation' : snake(k);
    out[key] = v;
  }
  return { ...out, torch_dtype: 'float32', transformers_version: '4.57.6', use_cache: true };
}
