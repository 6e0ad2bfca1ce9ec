// The T5 span-corruption recipe's options (pretraining from scratch or continued), with the
// paper's defaults: noise density 0.15, mean noise span length 3.
import { z } from 'zod';
import { DataConfigSchema } from '@anneal/data';
import { T5ConfigSchema } from '@anneal/modeling';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { QuantizationConfigSchema } from '@anneal/quantization';
import { OptimSchema, ScheduleSchema, TrainSchema, runFields } from '@anneal/training';

export const T5SpanConfigSchema = z
  .object({
    ...runFields,
    recipe: z.literal('t5-span'),
    model: z
      .object({
        /** A T5 checkpoint to continue from; omit to train from scratch. */
        pretrained: z.string().optional(),
        /** T5Config fields (camelCase) for training from scratch; vocabSize and the special ids come from the tokenizer. */
        config: T5ConfigSchema.partial().default({}),
      })
      .strict(),
    tokenizer: z
      .object({
        /** A tokenizer folder with <extra_id_N> sentinels, EOS and pad (default: the model folder). */
        path: z.string().optional(),
        /** Or train a byte-level BPE on the training texts, with <pad>, </s>, <unk> and 100 sentinels as T5's. */
        train: z
          .object({ vocabSize: z.number().int().min(300), minFrequency: z.number().int().min(1).default(2) })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    /** Texts; data.maxLength is the encoder's input length after corruption (EOS included). */
    data: DataConfigSchema.refine((d) => d.format === 'text', {
      message: 'span corruption needs format text',
      path: ['format'],
    }),
    /** Share of tokens cut out (the paper's 0.15). */
    noiseDensity: z.number().gt(0).lt(1).default(0.15),
    /** Mean length of a cut span (the paper's 3). */
    meanNoiseSpanLength: z.number().min(1).default(3),
    peft: LoraConfigSchema.optional(),
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

export type T5SpanConfig = z.infer<typeof T5SpanConfigSchema>;
