// The causal-LM recipe's options. The YAML maps one-to-one onto this type; every field
// is listed here with its default. Unknown keys are errors.
import { z } from 'zod';
import { BACKENDS } from '@anneal/core';
import { Gpt2ConfigPartialSchema } from '@anneal/modeling';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { QuantizationConfigSchema } from '@anneal/quantization';
import { OptimSchema, ScheduleSchema, lossChunkField, oneStopCondition, trainFields } from '@anneal/training';

const ModelSchema = z
  .object({
    arch: z.literal('gpt2'),
    /** Hugging Face folder (config.json + model.safetensors) or Hub repo id to start from; omit to train from scratch. */
    pretrained: z.string().optional(),
    /** Architecture for training from scratch (GPT2Config fields, camelCase). vocabSize defaults to the tokenizer's. */
    config: Gpt2ConfigPartialSchema.default({}),
  })
  .strict();

const TokenizerSchema = z
  .object({
    /** Folder or Hub repo id with tokenizer.json (or GPT-2's vocab.json + merges.txt). */
    path: z.string().optional(),
    /** Train a byte-level BPE on the training text instead. */
    train: z
      .object({
        vocabSize: z.number().int().min(257),
        minFrequency: z.number().int().min(1).default(2),
        specialTokens: z.array(z.string()).default(['<|endoftext|>']),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((t) => (t.path === undefined) !== (t.train === undefined), {
    message: 'set exactly one of tokenizer.path and tokenizer.train',
  });

export const ClmConfigSchema = z
  .object({
    /** Run name: the run folder is <outputDir>/<name>. */
    name: z.string().regex(/^[\w.-]+$/, 'letters, digits, "_", "." and "-" only'),
    /** Recipe to run. */
    recipe: z.literal('clm'),
    seed: z.number().int().min(0).default(1337),
    backend: z.enum(BACKENDS).default('auto'),
    /** Where the torch backend places tensors: cpu, or cuda:N with a CUDA build of libtorch. */
    device: z
      .string()
      .regex(/^(cpu|cuda:\d+)$/, 'cpu or cuda:N')
      .default('cpu'),
    /** bf16: matmuls and attention in bfloat16 with float32 weights (torch backend; meant for GPUs). */
    autocast: z.enum(['none', 'bf16']).default('none'),
    /** bf16: activations and their gradients in bfloat16; weights, optimizer state and the loss in float32 (torch backend; meant for GPUs). */
    precision: z.enum(['float32', 'bf16']).default('float32'),
    outputDir: z.string().default('runs'),
    model: ModelSchema,
    tokenizer: TokenizerSchema,
    data: z
      .object({
        /** A UTF-8 text file. */
        train: z.string(),
        /** Tail fraction of the token stream held out for evaluation. */
        valFraction: z.number().min(0).max(0.5).default(0.05),
        /** Tokens per training sequence (must not exceed model nPositions). */
        blockSize: z.number().int().min(2),
      })
      .strict(),
    /** LoRA on model.pretrained instead of full training (checkpoints hold the adapter only). */
    peft: LoraConfigSchema.optional(),
    /** QLoRA: the base's projections stored in nf4 / fp4 / int8 (needs peft). */
    quantization: QuantizationConfigSchema.optional(),
    optim: OptimSchema,
    schedule: ScheduleSchema,
    train: z
      .object({
        ...trainFields,
        ...lossChunkField,
        /** Log parameter histograms to TensorBoard every N steps (0 = never). */
        histogramsEvery: z.number().int().min(0).default(0),
        sample: z
          .object({
            every: z.number().int().positive().default(100),
            prompts: z.array(z.string()).default(['The ']),
            maxNewTokens: z.number().int().positive().default(48),
            temperature: z.number().min(0).default(0.8),
            topK: z.number().int().min(0).default(40),
          })
          .strict()
          .default({ every: 100, prompts: ['The '], maxNewTokens: 48, temperature: 0.8, topK: 40 }),
      })
      .strict()
      .refine(...oneStopCondition),
  })
  .strict();

export type ClmConfig = z.infer<typeof ClmConfigSchema>;
