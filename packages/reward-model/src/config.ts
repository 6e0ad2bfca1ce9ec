// The reward recipe's options (TRL's RewardConfig, camelCased); the YAML maps one-to-one
// onto this type and unknown keys are errors.
import { z } from 'zod';
import { DataConfigSchema } from '@anneal/data';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { QuantizationConfigSchema } from '@anneal/quantization';
import { OptimSchema, ScheduleSchema, TrainSchema, runFields } from '@anneal/training';

export const RewardConfigSchema = z
  .object({
    ...runFields,
    recipe: z.literal('reward'),
    /** The checkpoint the reward model starts from (folder or Hub id): GPT-2/Llama/Qwen2/BERT/DistilBERT; a one-output score head is added unless it has one. */
    model: z.object({ pretrained: z.string() }).strict(),
    /** Default: the model folder. */
    tokenizer: z.object({ path: z.string().optional() }).strict().default({}),
    /** Preference pairs (prompt, chosen, rejected; optional columns.margin); data.maxLength is TRL's max_length. */
    data: DataConfigSchema.refine((d) => d.format === 'preference', {
      message: 'the reward recipe needs format preference',
      path: ['format'],
    }),
    /** TRL's center_rewards_coefficient: adds coef · (r_chosen + r_rejected)² to each pair's loss. */
    centerRewardsCoefficient: z.number().min(0).optional(),
    optim: OptimSchema,
    schedule: ScheduleSchema,
    train: TrainSchema,
    /** LoRA instead of full fine-tuning; the score head trains in full (modulesToSave defaults to classifier and score). */
    peft: LoraConfigSchema.optional(),
    /** QLoRA: the base's projections stored in nf4 / fp4 / int8 (needs peft). */
    quantization: QuantizationConfigSchema.optional(),
  })
  .strict();

export type RewardConfig = z.infer<typeof RewardConfigSchema>;
