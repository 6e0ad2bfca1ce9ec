// T5 hyperparameters with the meaning and defaults of transformers' T5Config (t5-small), and
// the two feed-forward kinds Anneal runs: T5's relu MLP and T5 v1.1 / Flan-T5's gated GELU.
import { z } from 'zod';
import { ConfigError } from '@anneal/core';

export const T5ConfigSchema = z
  .object({
    vocabSize: z.number().int().positive(),
    dModel: z.number().int().positive(),
    /** Width of each attention head (heads × dKv need not equal dModel). */
    dKv: z.number().int().positive(),
    dFf: z.number().int().positive(),
    numLayers: z.number().int().positive(),
    numDecoderLayers: z.number().int().positive(),
    numHeads: z.number().int().positive(),
    relativeAttentionNumBuckets: z.number().int().positive(),
    relativeAttentionMaxDistance: z.number().int().positive(),
    dropoutRate: z.number().min(0).max(1),
    layerNormEpsilon: z.number().positive(),
    initializerFactor: z.number().positive(),
    feedForwardProj: z.enum(['relu', 'gated-gelu']),
    /** The LM head is the shared embedding (scaled by dModel^-0.5 first); a missing key means true. */
    tieWordEmbeddings: z.boolean(),
    padTokenId: z.number().int(),
    eosTokenId: z.number().int(),
    decoderStartTokenId: z.number().int(),
  })
  .strict();

export type T5Config = z.infer<typeof T5ConfigSchema>;

/** transformers' T5Config defaults (t5-small). */
export const T5_DEFAULTS: T5Config = {
  vocabSize: 32128,
  dModel: 512,
  dKv: 64,
  dFf: 2048,
  numLayers: 6,
  numDecoderLayers: 6,
  numHeads: 8,
  relativeAttentionNumBuckets: 32,
  relativeAttentionMaxDistance: 128,
  dropoutRate: 0.1,
  layerNormEpsilon: 1e-6,
  initializerFactor: 1,
  feedForwardProj: 'relu',
  tieWordEmbeddings: true,
  padTokenId: 0,
  eosTokenId: 1,
  decoderStartTokenId: 0,
};

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export function t5ConfigFromHf(hf: Record<string, unknown>, file?: string): T5Config {
  if (hf.model_type !== 't5')
    throw new ConfigError(`model_type ${JSON.stringify(hf.model_type)} is not "t5"`, { file, field: 'model_type' });
  const picked: Record<string, unknown> = {};
  for (const k of Object.keys(T5_DEFAULTS))
    if (hf[snake(k)] !== undefined && hf[snake(k)] !== null) picked[k] = hf[snake(k)];
  // num_decoder_layers defaults to num_layers (T5Config does the same)
  if (picked.numDecoderLayers === undefined && picked.numLayers !== undefined)
    picked.numDecoderLayers = picked.numLayers;
  const parsed = T5ConfigSchema.safeParse({ ...T5_DEFAULTS, ...picked });
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const field = snake(String(first.path[0]));
    throw new ConfigError(`invalid value of ${field}: ${first.message}`, {
      file,
      field,
      hint: field === 'feed_forward_proj' ? 'supported: relu (T5) and gated-gelu (T5 v1.1, Flan-T5)' : undefined,
    });
  }
  return parsed.data;
}

export function t5ConfigToHf(c: T5Config): Record<string, unknown> {
  const out: Record<string, unknown> = { architectures: ['T5ForConditionalGeneration'], model_type: 't5' };
  for (const [k, v] of Object.entries(c)) out[snake(k)] = v;
  // what T5Config derives from feed_forward_proj, written as transformers writes it
  out.dense_act_fn = c.feedForwardProj === 'relu' ? 'relu' : 'gelu_new';
  out.is_gated_act = c.feedForwardProj !== 'relu';
  out.is_encoder_decoder = true;
  return { ...out, torch_dtype: 'float32', transformers_version: '4.57.6' };
}
