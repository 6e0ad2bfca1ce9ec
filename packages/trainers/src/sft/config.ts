// The SFT recipe's options (TRL's SFTConfig, camelCased where a YAML key needs a name).
// The YAML maps one-to-one onto this type; unknown keys are errors.
import { z } from 'zod';
import { DataConfigSchema } from '@anneal/data';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { QuantizationConfigSchema } from '@anneal/quantization';
import { LmTrainSchema, OptimSchema, ScheduleSchema, runFields } from '@anneal/training';

export const SftConfigSchema = z
  .object({
    ...runFields,
    recipe: z.literal('sft'),
    /**
     * The causal LM to fine-tune: a folder or a Hub repo id; or `init`, config.json fields (as
     * transformers names them, model_type first) of a random model to train from scratch,
     * with tokenizer.path (vocab_size defaults to the tokenizer's).
     */
    model: z
      .object({ pretrained: z.string().optional(), init: z.record(z.string(), z.unknown()).optional() })
      .strict()
      .refine((m) => (m.pretrained === undefined) !== (m.init === undefined), {
        message: 'set exactly one of model.pretrained and model.init',
      }),
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
    data: DataConfigSchema.refine((d) => d.format === 'prompt-completion' || d.format === 'conversational', {
      message: 'SFT needs format prompt-completion or conversational',
      path: ['format'],
    }),
    /** bfd: best-fit-decreasing packing of whole examples into rows of data.maxLength, attention kept per example. */
    packing: z.enum(['none', 'bfd']).default('none'),
    /** LoRA instead of full fine-tuning (PEFT's LoraConfig, camelCased); checkpoints then hold the adapter only. */
    peft: LoraConfigSchema.optional(),
    /** QLoRA: the base's projections stored in nf4 / fp4 / int8 (needs peft). */
    quantization: QuantizationConfigSchema.optional(),
    optim: OptimSchema,
    schedule: ScheduleSchema,
    train: LmTrainSchema,
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
  .strict();

export type SftConfig = z.infer<typeof SftConfigSchema>;
