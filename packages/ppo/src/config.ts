// The PPO recipe's options: TRL's PPOConfig, camelCased. Where TRL's names live:
//   num_ppo_epochs, num_mini_batches, kl_coef, kl_estimator, cliprange, cliprange_value,
//   vf_coef, gamma, lam, whiten_rewards, response_length, temperature, stop_token,
//   missing_eos_penalty, total_episodes      -> ppo.*
//   (adaptive KL, Ziegler et al.: ppo.adaptiveKl { target, horizon })
//   learning_rate (3e-6)                     -> optim.lr (same default)
//   per-update episodes                      -> ppo.batchSize (split into numMiniBatches)
import { z } from 'zod';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { QuantizationConfigSchema } from '@anneal/quantization';
import { OptimSchema, ScheduleSchema, lossChunkField, runFields } from '@anneal/training';

export const PpoOptionsSchema = z
  .object({
    /** Episodes (prompt + sampled response) per update; they are split into numMiniBatches minibatches. */
    batchSize: z.number().int().positive().default(16),
    numMiniBatches: z.number().int().positive().default(1),
    numPpoEpochs: z.number().int().positive().default(4),
    /** Training stops after this many episodes (updates = ceil(totalEpisodes / batchSize)); or give train.maxSteps (updates). */
    totalEpisodes: z.number().int().positive().optional(),
    klCoef: z.number().min(0).default(0.05),
    klEstimator: z.enum(['k1', 'k3']).default('k1'),
    /** Adapt klCoef towards a target KL (Ziegler et al. 2019) instead of keeping it fixed. */
    adaptiveKl: z
      .object({ target: z.number().positive(), horizon: z.number().positive().default(10000) })
      .strict()
      .optional(),
    cliprange: z.number().positive().default(0.2),
    cliprangeValue: z.number().positive().default(0.2),
    vfCoef: z.number().min(0).default(0.1),
    gamma: z.number().min(0).max(1).default(1),
    lam: z.number().min(0).max(1).default(0.95),
    whitenRewards: z.boolean().default(false),
    responseLength: z.number().int().positive().default(53),
    temperature: z.number().positive().default(0.7),
    /** 'eos': a response ends at the tokenizer's EOS (null: it always runs responseLength tokens). */
    stopToken: z.enum(['eos']).nullable().default(null),
    /** Subtracted from the score of a response that did not end with EOS. */
    missingEosPenalty: z.number().min(0).optional(),
  })
  .strict();

export const PpoConfigSchema = z
  .object({
    ...runFields,
    recipe: z.literal('ppo'),
    /** The policy's starting point (an SFT causal LM): a folder or a Hub repo id. */
    model: z.object({ pretrained: z.string() }).strict(),
    /** The value model: a decoder checkpoint with (or given) a one-output head; default: the policy checkpoint with a fresh head. */
    valueModel: z.string().optional(),
    /** A reward-model checkpoint (recipe: reward); texts are decoded from the policy and re-tokenized by its own tokenizer. */
    reward: z.object({ model: z.string() }).strict().optional(),
    tokenizer: z.object({ path: z.string().optional() }).strict().default({}),
    /** Prompts: a JSONL/CSV/... file and the column holding them (a preference file's prompt column works). */
    prompts: z
      .object({
        train: z.string(),
        column: z.string().default('prompt'),
        evalFraction: z.number().min(0).max(0.5).default(0.1),
      })
      .strict(),
    ppo: PpoOptionsSchema,
    optim: OptimSchema.extend({ lr: z.number().positive().default(3e-6) }).prefault({}),
    schedule: ScheduleSchema,
    train: z
      .object({
        /** Updates to run (each of ppo.batchSize episodes), the stopping knob every recipe has; or give ppo.totalEpisodes. */
        maxSteps: z.number().int().positive().optional(),
        logEvery: z.number().int().positive().default(1),
        /** Held-out prompts scored and sampled every N updates. */
        evalEvery: z.number().int().positive().default(10),
        saveEvery: z.number().int().positive().default(10),
        saveTotalLimit: z.number().int().positive().default(2),
        /** A NaN/Inf loss or gradient in a minibatch: stop with an error, or skip that minibatch's step. */
        onNonFinite: z.enum(['error', 'skip']).default('error'),
        /** Activation checkpointing in the policy's and value model's training passes. */
        gradientCheckpointing: z.boolean().default(false),
        ...lossChunkField,
      })
      .strict()
      .prefault({}),
    peft: LoraConfigSchema.optional(),
    quantization: QuantizationConfigSchema.optional(),
  })
  .strict()
  .refine((c) => (c.ppo.totalEpisodes === undefined) !== (c.train.maxSteps === undefined), {
    message: 'set exactly one of ppo.totalEpisodes (episodes) and train.maxSteps (updates of ppo.batchSize episodes)',
    path: ['train', 'maxSteps'],
  });

export type PpoConfig = z.infer<typeof PpoConfigSchema>;
export type PpoOptions = z.infer<typeof PpoOptionsSchema>;
