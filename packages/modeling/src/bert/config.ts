// BERT hyperparameters with the meaning and defaults of transformers' BertConfig.
import { z } from 'zod';
import { ConfigError } from '@anneal/core';

export const BertConfigSchema = z
  .object({
    vocabSize: z.number().int().positive(),
    hiddenSize: z.number().int().positive(),
    numHiddenLayers: z.number().int().positive(),
    numAttentionHeads: z.number().int().positive(),
    intermediateSize: z.number().int().positive(),
    hiddenAct: z.enum(['gelu', 'gelu_new', 'relu']),
    hiddenDropoutProb: z.number().min(0).max(1),
    attentionProbsDropoutProb: z.number().min(0).max(1),
    maxPositionEmbeddings: z.number().int().positive(),
    typeVocabSize: z.number().int().positive(),
    initializerRange: z.number().positive(),
    layerNormEps: z.number().positive(),
    padTokenId: z.number().int().nullable(),
    /** null = hiddenDropoutProb. */
    classifierDropout: z.number().min(0).max(1).nullable(),
  })
  .strict();

export type BertConfig = z.infer<typeof BertConfigSchema>;

/** transformers' BertConfig defaults (bert-base-uncased). */
export const BERT_DEFAULTS: BertConfig = {
  vocabSize: 30522,
  hiddenSize: 768,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  intermediateSize: 3072,
  hiddenAct: 'gelu',
  hiddenDropoutProb: 0.1,
  attentionProbsDropoutProb: 0.1,
  maxPositionEmbeddings: 512,
  typeVocabSize: 2,
  initializerRange: 0.02,
  layerNormEps: 1e-12,
  padTokenId: 0,
  classifierDropout: null,
};

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export function bertConfigFromHf(hf: Record<string, unknown>, file?: string): BertConfig {
  if (hf.model_type !== 'bert')
    throw new ConfigError(`model_type ${JSON.stringify(hf.model_type)} is not "bert"`, { file, field: 'model_type' });
  if (hf.position_embedding_type !== undefined && hf.position_embedding_type !== 'absolute')
    throw new ConfigError(
      `position_embedding_type ${JSON.stringify(hf.position_embedding_type)} is not supported (only absolute)`,
      { file, field: 'position_embedding_type' },
    );
  const picked: Record<string, unknown> = {};
  for (const k of Object.keys(BERT_DEFAULTS)) if (hf[snake(k)] !== undefined) picked[k] = hf[snake(k)];
  const parsed = BertConfigSchema.safeParse({ ...BERT_DEFAULTS, ...picked });
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ConfigError(`invalid value: ${first.message}`, { file, field: snake(String(first.path[0])) });
  }
  if (parsed.data.hiddenSize % parsed.data.numAttentionHeads !== 0)
    throw new ConfigError(
      `hidden_size ${parsed.data.hiddenSize} is not divisible by num_attention_heads ${parsed.data.numAttentionHeads}`,
      { file, field: 'num_attention_heads' },
    );
  return parsed.data;
}

export function bertConfigToHf(c: BertConfig, architecture: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    architectures: [architecture],
    model_type: 'bert',
    position_embedding_type: 'absolute',
  };
  for (const [k, v] of Object.entries(c)) out[snake(k)] = v;
  return { ...out, torch_dtype: 'float32', transformers_version: '4.40.0' };
}
