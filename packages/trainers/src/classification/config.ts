// The sequence-classification recipe's options (BERT/DistilBERT/GPT-2/Llama).
import { z } from 'zod';
import { DataConfigSchema } from '@anneal/data';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { QuantizationConfigSchema } from '@anneal/quantization';
import { OptimSchema, ScheduleSchema, TrainSchema, runFields } from '@anneal/training';

export const ClassificationConfigSchema = z
  .object({
    ...runFields,
    recipe: z.literal('classification'),
    /** A checkpoint (folder or Hub id): a classifier, or an encoder/decoder that gets a fresh head. */
    model: z.object({ pretrained: z.string() }).strict(),
    /** Default: the model folder. */
    tokenizer: z.object({ path: z.string().optional() }).strict().default({}),
    /** Class names; index = class id (rows may give names or ids). */
    labels: z.array(z.string()).min(2),
    data: DataConfigSchema.refine((d) => d.format === 'classification', {
      message: 'classification needs format classification',
      path: ['format'],
    }),
    optim: OptimSchema,
    schedule: ScheduleSchema,
    train: TrainSchema,
    /** LoRA instead of full fine-tuning; the head trains in full (modulesToSave defaults to classifier and score, as PEFT's SEQ_CLS). */
    peft: LoraConfigSchema.optional(),
    /** QLoRA: the base's projections stored in nf4 / fp4 / int8 (needs peft). */
    quantization: QuantizationConfigSchema.optional(),
  })
  .strict();

export type ClassificationConfig = z.infer<typeof ClassificationConfigSchema>;
