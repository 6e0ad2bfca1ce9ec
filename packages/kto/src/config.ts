// The KTO recipe's options: TRL's KTOConfig, camelCased, with its defaults. Where TRL's names live:
//   beta (0.1), loss_type ('kto'), desirable_weight (1.0), undesirable_weight (1.0),
//   disable_dropout (true)                       -> kto.*
//   max_length, max_prompt_length                 -> data.maxLength, data.maxPromptLength
//   learning_rate (1e-6)                          -> optim.lr
//   ref_model                                     -> model.pretrained (a frozen copy), or with LoRA
//                                                    the adapter-disabled policy
// Data: unpaired rows (prompt, completion, label: true/false), or preference pairs, which are
// unpaired as TRL does (the chosen completion desirable, the rejected one undesirable).
import { z } from 'zod';
import { DataConfigSchema } from '@anneal/data';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { QuantizationConfigSchema } from '@anneal/quantization';
import { LmTrainSchema, OptimSchema, ScheduleSchema, runFields } from '@anneal/training';

export const KtoOptionsSchema = z
  .object({
    beta: z.number().positive().default(0.1),
    lossType: z.enum(['kto', 'apo_zero_unpaired']).default('kto'),
    desirableWeight: z.number().positive().default(1),
    undesirableWeight: z.number().positive().default(1),
    /** The policy runs without dropout (the reference always does). */
    disableDropout: z.boolean().default(true),
  })
  .strict();

export const KtoConfigSchema = z
  .object({
    ...runFields,
    recipe: z.literal('kto'),
    /** The policy's starting point (usually an SFT checkpoint); also the frozen reference. */
    model: z.object({ pretrained: z.string() }).strict(),
    tokenizer: z.object({ path: z.string().optional(), chatTemplate: z.string().optional() }).strict().default({}),
    data: DataConfigSchema.refine((d) => d.format === 'unpaired-preference' || d.format === 'preference', {
      message: 'KTO needs format unpaired-preference (prompt, completion, label) or preference (pairs, unpaired)',
      path: ['format'],
    }),
    kto: KtoOptionsSchema.prefault({}),
    optim: OptimSchema.extend({ lr: z.number().positive().default(1e-6) }).prefault({}),
    schedule: ScheduleSchema,
    /** batchSize is at least 2: the KL estimate pairs each prompt with another row's completion. */
    train: LmTrainSchema.refine((t) => t.batchSize >= 2, {
      message: "KTO needs train.batchSize >= 2 (its KL estimate pairs prompts with other rows' completions)",
      path: ['batchSize'],
    }),
    peft: LoraConfigSchema.optional(),
    quantization: QuantizationConfigSchema.optional(),
  })
  .strict();

export type KtoConfig = z.infer<typeof KtoConfigSchema>;
export type KtoOptions = z.infer<typeof KtoOptionsSchema>;
