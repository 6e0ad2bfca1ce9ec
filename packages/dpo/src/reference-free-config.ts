// The reference-free preference recipes' options: TRL's ORPOConfig and CPOConfig, camelCased,
// with their defaults (SimPO is CPO with lossType simpo and cpoAlpha 0, as TRL runs it).
//   ORPOConfig: beta (0.1), disable_dropout (true)                              -> orpo.*
//   CPOConfig:  beta (0.1), label_smoothing (0), loss_type ('sigmoid'), cpo_alpha (1.0),
//               simpo_gamma (0.5), alpha (0.0: AlphaPO off), disable_dropout   -> cpo.*
//   max_length, max_prompt_length -> data.maxLength, data.maxPromptLength; learning_rate (1e-6) -> optim.lr
import { z } from 'zod';
import { DataConfigSchema } from '@anneal/data';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { QuantizationConfigSchema } from '@anneal/quantization';
import { LmTrainSchema, OptimSchema, ScheduleSchema, runFields } from '@anneal/training';

/** Everything but the method's own section: model, tokenizer, pairs, optimizer, schedule, train, LoRA. */
const common = {
  ...runFields,
  /** The policy's starting point (usually an SFT checkpoint). No reference model: none is needed. */
  model: z.object({ pretrained: z.string() }).strict(),
  tokenizer: z.object({ path: z.string().optional(), chatTemplate: z.string().optional() }).strict().default({}),
  data: DataConfigSchema.refine((d) => d.format === 'preference', {
    message: 'needs format preference (prompt, chosen, rejected)',
    path: ['format'],
  }),
  optim: OptimSchema.extend({ lr: z.number().positive().default(1e-6) }).prefault({}),
  schedule: ScheduleSchema,
  train: LmTrainSchema,
  peft: LoraConfigSchema.optional(),
  quantization: QuantizationConfigSchema.optional(),
  /** Completions generated at each evaluation (TensorBoard text). */
  sample: z
    .object({ prompts: z.array(z.string()).default([]), maxNewTokens: z.number().int().positive().default(32) })
    .strict()
    .prefault({}),
};

export const OrpoOptionsSchema = z
  .object({
    /** λ of the paper: the odds-ratio term's weight against the chosen completions' NLL. */
    beta: z.number().positive().default(0.1),
    disableDropout: z.boolean().default(true),
  })
  .strict();

export const CpoOptionsSchema = z
  .object({
    beta: z.number().positive().default(0.1),
    lossType: z.enum(['sigmoid', 'hinge', 'ipo', 'simpo']).default('sigmoid'),
    labelSmoothing: z.number().min(0).max(0.5).default(0),
    /** Weight of the chosen completions' NLL (SimPO: 0). */
    cpoAlpha: z.number().min(0).default(1),
    /** SimPO's target reward margin γ. */
    simpoGamma: z.number().default(0.5),
    /** AlphaPO's α (0: off). */
    alpha: z.number().default(0),
    disableDropout: z.boolean().default(true),
  })
  .strict();

export const OrpoConfigSchema = z
  .object({ ...common, recipe: z.literal('orpo'), orpo: OrpoOptionsSchema.prefault({}) })
  .strict();
export const CpoConfigSchema = z
  .object({ ...common, recipe: z.literal('cpo'), cpo: CpoOptionsSchema.prefault({}) })
  .strict();

export type OrpoConfig = z.infer<typeof OrpoConfigSchema>;
export type CpoConfig = z.infer<typeof CpoConfigSchema>;
