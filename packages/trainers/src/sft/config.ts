// The SFT recipe's options (TRL's SFTConfig, camelCased where a YAML key needs a name).
// The YAML maps one-to-one onto this type; unknown keys are errors.
import { z } from 'zod';
import { BACKENDS } from '@anneal/core';
import { DataConfigSchema } from '@anneal/data';
import { OptimSchema, ScheduleSchema } from '../run/schemas.js';

export const SftConfigSchema = z
  .object({
    name: z.string().regex(/^[\w.-]+$/, 'letters, digits, "_", "." and "-" only'),
    recipe: z.literal('sft'),
    seed: z.number().int().min(0).default(42),
    backend: z.enum(BACKENDS).default('auto'),
    device: z.string().regex(/^(cpu|cuda:\d+)$/, 'cpu or cuda:N').default('cpu'),
    autocast: z.enum(['none', 'bf16']).default('none'),
    outputDir: z.string().default('runs'),
    /** The causal LM to fine-tune: a folder or a Hub repo id. */
    model: z.object({ pretrained: z.string() }).strict(),
    tokenizer: z
      .object({
        /** Default: the model folder. */
        path: z.string().optional(),
        /** A Jinja chat template to use instead of (or where there is no) tokenizer_config.json's. */
        chatTemplate: z.string().optional(),
      })
      .strict()
      .default({}),
    /** Prompt-completion or conversational data (data.maxLength is TRL's max_length). */
    data: DataConfigSchema.refine((d) => d.format === 'prompt-completion' || d.format === 'conversational', { message: 'SFT needs format prompt-completion or conversational', path: ['format'] }),
    /** bfd: best-fit-decreasing packing of whole examples into rows of data.maxLength, attention kept per example. */
    packing: z.enum(['none', 'bfd']).default('none'),
    optim: OptimSchema,
    schedule: ScheduleSchema,
    train: z
      .object({
        batchSize: z.number().int().positive(),
        gradientAccumulationSteps: z.number().int().positive().default(1),
        maxSteps: z.number().int().positive(),
        logEvery: z.number().int().positive().default(10),
        evalEvery: z.number().int().positive().default(100),
        /** Evaluation batches (0 = the whole eval split). */
        evalBatches: z.number().int().min(0).default(0),
        saveEvery: z.number().int().positive().default(100),
        saveTotalLimit: z.number().int().positive().default(2),
        onNonFinite: z.enum(['error', 'skip']).default('error'),
        /** Generations logged at every evaluation. */
        sample: z
          .object({
            /** User messages (conversational data) or prompts (prompt-completion data). */
            prompts: z.array(z.string()).default([]),
            maxNewTokens: z.number().int().positive().default(32),
          })
          .strict()
          .default({ prompts: [], maxNewTokens: 32 }),
      })
      .strict(),
  })
  .strict();

export type SftConfig = z.infer<typeof SftConfigSchema>;
