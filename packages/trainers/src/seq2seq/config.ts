// The sequence-to-sequence recipe's options (transformers' Seq2SeqTrainingArguments where a YAML
// key needs a name): an encoder–decoder model (T5) fine-tuned on input -> target pairs.
import { z } from 'zod';
import { DataConfigSchema } from '@anneal/data';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { QuantizationConfigSchema } from '@anneal/quantization';
import { OptimSchema, ScheduleSchema, TrainSchema, runFields } from '@anneal/training';

export const Seq2SeqConfigSchema = z
  .object({
    ...runFields,
    recipe: z.literal('seq2seq'),
    /** A T5 checkpoint (folder or Hub repo id), e.g. google/flan-t5-small or a t5-span run. */
    model: z.object({ pretrained: z.string() }).strict(),
    tokenizer: z.object({ path: z.string().optional() }).strict().default({}),
    /**
     * Input -> target pairs: format prompt-completion, the input in the prompt column and the
     * target in the completion column (map yours with data.columns, e.g. {prompt: input,
     * completion: target}); data.maxLength bounds input and target together.
     */
    data: DataConfigSchema.refine((d) => d.format === 'prompt-completion', {
      message: 'seq2seq needs format prompt-completion (input in prompt, target in completion)',
      path: ['format'],
    }),
    /** transformers' predict_with_generate: evaluation also decodes the held-out inputs (greedy) and scores them. */
    predictWithGenerate: z.boolean().default(true),
    /** New tokens per generated target (generation_max_length). */
    generationMaxLength: z.number().int().positive().default(32),
    /** Held-out rows generated at each evaluation (0 = all). */
    generationLimit: z.number().int().min(0).default(64),
    peft: LoraConfigSchema.optional(),
    quantization: QuantizationConfigSchema.optional(),
    optim: OptimSchema,
    schedule: ScheduleSchema,
    train: TrainSchema,
  })
  .strict();

export type Seq2SeqConfig = z.infer<typeof Seq2SeqConfigSchema>;
