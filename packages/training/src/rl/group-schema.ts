// The config fields GRPO and RLOO share (TRL's GRPOConfig and RLOOConfig have them with the
// same names), camelCased, and the run-level sections around them. Each method adds its own
// fields and defaults (TRL: GRPO num_generations 8 and beta 0; RLOO 2 and 0.05).
import { z } from 'zod';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { QuantizationConfigSchema } from '@anneal/quantization';
import { OptimSchema, ScheduleSchema } from '../schemas.js';
import { lossChunkField, runFields } from '../schemas-train.js';
import { RewardSourceSchema } from './reward-sources.js';

/** The method section's shared fields; `defaults` are the method's own. */
export function groupRlFields(defaults: { numGenerations: number; beta: number }) {
  return {
    /** Completions sampled per prompt (a group). */
    numGenerations: z.number().int().min(2).default(defaults.numGenerations),
    /** Prompts longer than this keep their last tokens (TRL truncates on the left). */
    maxPromptLength: z.number().int().positive().optional(),
    maxCompletionLength: z.number().int().positive().default(256),
    temperature: z.number().positive().default(1),
    topP: z.number().gt(0).max(1).default(1),
    /** 0: off. */
    topK: z.number().int().min(0).default(0),
    minP: z.number().min(0).max(1).optional(),
    repetitionPenalty: z.number().positive().default(1),
    /** KL coefficient; 0 loads no reference model. */
    beta: z.number().min(0).default(defaults.beta),
    /** Clipping range below (and above, unless epsilonHigh is given) a ratio of 1. */
    epsilon: z.number().positive().default(0.2),
    epsilonHigh: z.number().positive().optional(),
    /** μ: optimizer passes over each generation batch (old log-probs kept from generation time). */
    numIterations: z.number().int().positive().default(1),
    /** Completions that hit maxCompletionLength without EOS are left out of the loss (DAPO). */
    maskTruncatedCompletions: z.boolean().default(false),
    /** TRL's reward_weights: one per entry of rewards (or give each entry a weight). */
    rewardWeights: z.array(z.number()).optional(),
    /** Completions per generation (default train.batchSize × stepsPerGeneration); exclusive with stepsPerGeneration. */
    generationBatchSize: z.number().int().positive().optional(),
    /** Optimizer steps per generation batch (default 1); exclusive with generationBatchSize. */
    stepsPerGeneration: z.number().int().positive().optional(),
  };
}

/** The run-level sections of a GRPO/RLOO config; the method's section (grpo:, rloo:) is added beside them. */
export const groupRlRunFields = {
  ...runFields,
  /** The policy's starting point (usually an SFT checkpoint): a folder or a Hub repo id. */
  model: z.object({ pretrained: z.string() }).strict(),
  tokenizer: z.object({ path: z.string().optional() }).strict().default({}),
  /** Prompts and the column holding them; every other column reaches the reward functions. */
  prompts: z
    .object({
      train: z.string(),
      column: z.string().default('prompt'),
      /** Held-out prompts from their own file (else evalFraction of train). */
      eval: z.string().optional(),
      evalFraction: z.number().min(0).max(0.5).default(0.1),
      /** Held-out prompts scored at each evaluation (0 = all). */
      evalLimit: z.number().int().min(0).default(64),
    })
    .strict(),
  /** Reward functions (module) and reward models (model), in any mix; the reward is their weighted sum. */
  rewards: z.array(RewardSourceSchema).min(1),
  /** TRL's learning_rate default for GRPO and RLOO: 1e-6. */
  optim: OptimSchema.extend({ lr: z.number().positive().default(1e-6) }).prefault({}),
  schedule: ScheduleSchema,
  train: z
    .object({
      /** Completions per optimizer step (TRL's per_device_train_batch_size). */
      batchSize: z.number().int().positive().default(8),
      /** Optimizer steps (TRL's global steps). */
      maxSteps: z.number().int().positive(),
      logEvery: z.number().int().positive().default(1),
      /** Held-out prompts completed (greedy) and scored every N steps, and at step 0. */
      evalEvery: z.number().int().positive().default(50),
      saveEvery: z.number().int().positive().default(50),
      saveTotalLimit: z.number().int().positive().default(2),
      onNonFinite: z.enum(['error', 'skip']).default('error'),
      gradientCheckpointing: z.boolean().default(false),
      ...lossChunkField,
    })
    .strict(),
  peft: LoraConfigSchema.optional(),
  quantization: QuantizationConfigSchema.optional(),
};

/** The shared fields, as a recipe sees them after parsing. */
export interface GroupRlOptions {
  numGenerations: number;
  maxPromptLength?: number;
  maxCompletionLength: number;
  temperature: number;
  topP: number;
  topK: number;
  minP?: number;
  repetitionPenalty: number;
  beta: number;
  epsilon: number;
  epsilonHigh?: number;
  numIterations: number;
  maskTruncatedCompletions: boolean;
  rewardWeights?: number[];
  generationBatchSize?: number;
  stepsPerGeneration?: number;
}

const GroupRlRunSchema = z.object(groupRlRunFields);
/** The run-level sections, parsed. */
export type GroupRlRunConfig = z.infer<typeof GroupRlRunSchema>;
