// The masked-LM recipe's options (BERT pretraining from scratch or continued).
import { z } from 'zod';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { QuantizationConfigSchema } from '@anneal/quantization';
import { DataConfigSchema } from '@anneal/data';
import { BertConfigSchema } from '@anneal/modeling';
import { OptimSchema, ScheduleSchema, TrainSchema, runFields } from '@anneal/training';

export const MlmConfigSchema = z
  .object({
    ...runFields,
    recipe: z.literal('mlm'),
    model: z
      .object({
        /** A BERT checkpoint to continue from; omit to train from scratch. */
        pretrained: z.string().optional(),
        /** BertConfig fields (camelCase) for training from scratch; vocabSize defaults to the tokenizer's. */
        config: BertConfigSchema.partial().default({}),
      })
      .strict(),
    tokenizer: z
      .object({
        /** A WordPiece tokenizer folder (default: the model folder). */
        path: z.string().optional(),
        /** Or train a WordPiece vocabulary on the training texts first. */
        train: z
          .object({
            vocabSize: z.number().int().min(100),
            minFrequency: z.number().int().min(1).default(2),
            limitAlphabet: z.number().int().min(1).default(1000),
            lowercase: z.boolean().default(true),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    data: DataConfigSchema.refine((d) => d.format === 'text', { message: 'MLM needs format text', path: ['format'] }),
    /** Share of tokens chosen for prediction (80% [MASK], 10% random, 10% kept). */
    mlmProbability: z.number().min(0.01).max(0.9).default(0.15),
    /** Choose whole words: "##" continuation pieces go with their word. */
    wholeWordMask: z.boolean().default(false),
    /** LoRA on model.pretrained instead of full training (checkpoints hold the adapter only). */
    peft: LoraConfigSchema.optional(),
    /** QLoRA: the base's projections stored in nf4 / fp4 / int8 (needs peft). */
    quantization: QuantizationConfigSchema.optional(),
    optim: OptimSchema,
    schedule: ScheduleSchema,
    train: TrainSchema,
  })
  .strict()
  .refine(
    (c) => c.model.pretrained !== undefined || c.tokenizer.path !== undefined || c.tokenizer.train !== undefined,
    { message: 'from scratch, give tokenizer.path or tokenizer.train', path: ['tokenizer'] },
  );

export type MlmConfig = z.infer<typeof MlmConfigSchema>;
