// The GRPO recipe's options: TRL's GRPOConfig, camelCased, with its defaults. Where TRL's names live:
//   num_generations (8), max_prompt_length, max_completion_length (256), temperature (1.0), top_p,
//   top_k, min_p, repetition_penalty, beta (0.0: no reference model), epsilon (0.2), epsilon_high,
//   delta, loss_type ('dapo'), scale_rewards ('group'), importance_sampling_level,
//   mask_truncated_completions, num_iterations (1), reward_weights, generation_batch_size,
//   steps_per_generation                       -> grpo.*
//   reward_funcs (functions and reward models) -> rewards: [{ module } | { model }]
//   per_device_train_batch_size, max_steps     -> train.batchSize, train.maxSteps
//   learning_rate (1e-6)                       -> optim.lr
import { z } from 'zod';
import { groupRlFields, groupRlRunFields } from '@anneal/training';

export const GrpoOptionsSchema = z
  .object({
    ...groupRlFields({ numGenerations: 8, beta: 0 }),
    /** How the per-token loss is averaged (loss.ts): grpo, bnpo, dr_grpo or dapo (TRL's default). */
    lossType: z.enum(['grpo', 'bnpo', 'dr_grpo', 'dapo']).default('dapo'),
    /** Advantages divided by the group's reward std ('group'), the batch's ('batch'), or not ('none'). */
    scaleRewards: z.enum(['group', 'batch', 'none']).default('group'),
    /** Upper bound on the ratio (two-sided clipping); off when unset. */
    delta: z.number().positive().optional(),
    /** 'sequence': one importance weight per completion (GSPO). */
    importanceSamplingLevel: z.enum(['token', 'sequence']).default('token'),
  })
  .strict();

export const GrpoConfigSchema = z
  .object({
    ...groupRlRunFields,
    recipe: z.literal('grpo'),
    grpo: GrpoOptionsSchema.prefault({}),
  })
  .strict();

export type GrpoConfig = z.infer<typeof GrpoConfigSchema>;
export type GrpoOptions = z.infer<typeof GrpoOptionsSchema>;
