// The DPO recipe's options: TRL's DPOConfig, camelCased. Where TRL's names live:
//   beta, loss_type, label_smoothing, reference_free, precompute_ref_log_probs,
//   disable_dropout          -> dpo.*
//   max_length, max_prompt_length, truncation_mode -> data.maxLength, data.maxPromptLength, data.truncation
//   learning_rate (1e-6)     -> optim.lr (default 1e-6 here too)
//   ref_model                -> referenceModel (default: model.pretrained, or the adapter-disabled policy with LoRA)
import { z } from 'zod';
import { DataConfigSchema } from '@anneal/data';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { QuantizationConfigSchema } from '@anneal/quantization';
import { LmTrainSchema, OptimSchema, ScheduleSchema, runFields } from '@anneal/training';

export const DpoOptionsSchema = z
  .object({
    beta: z.number().positive().default(0.1),
    lossType: z.enum(['sigmoid', 'ipo', 'hinge', 'robust', 'kto_pair']).default('sigmoid'),
    /** Conservative / robust DPO: the assumed rate of flipped labels. */
    labelSmoothing: z.number().min(0).max(0.5).default(0),
    /** Against a uniform reference: no reference model at all. */
    referenceFree: z.boolean().default(false),
    /** Reference log-probs of every pair computed once before training and kept in the run folder (the reference model is then freed). */
    precomputeRefLogProbs: z.boolean().default(false),
    /** TRL's disable_dropout: the policy runs without dropout (the reference always does). */
    disableDropout: z.boolean().default(true),
  })
  .strict();

export const DpoConfigSchema = z
  .object({
    ...runFields,
    recipe: z.literal('dpo'),
    /** The policy's starting point, usually an SFT checkpoint: a folder or a Hub repo id. */
    model: z.object({ pretrained: z.string() }).strict(),
    /** The frozen reference for full fine-tuning (default: model.pretrained). Not used with LoRA, where the adapter-disabled policy is the reference. */
    referenceModel: z.string().optional(),
    tokenizer: z
      .object({
        /** Default: the model folder. */
        path: z.string().optional(),
        /** A Jinja chat template for conversational pairs, instead of tokenizer_config.json's. */
        chatTemplate: z.string().optional(),
      })
      .strict()
      .default({}),
    /** Preference pairs (prompt, chosen, rejected). */
    data: DataConfigSchema.refine((d) => d.format === 'preference', {
      message: 'DPO needs format preference',
      path: ['format'],
    }),
    dpo: DpoOptionsSchema.prefault({}),
    /** optim.lr defaults to TRL's 1e-6 (full fine-tuning; LoRA usually wants ~5e-5 or more). */
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
  })
  .strict();

export type DpoConfig = z.infer<typeof DpoConfigSchema>;
export type DpoOptions = z.infer<typeof DpoOptionsSchema>;
