// The RLOO recipe's options: TRL's RLOOConfig, camelCased, with its defaults. Where TRL's names live:
//   num_generations (2), max_prompt_length, max_completion_length (256), temperature, top_p, top_k,
//   min_p, repetition_penalty, beta (0.05: KL in the reward), epsilon (0.2), epsilon_high,
//   num_iterations (1), normalize_advantages (false), reward_clip_range, mask_truncated_completions,
//   reward_weights, generation_batch_size, steps_per_generation   -> rloo.*
//   reward_funcs (functions and reward models) -> rewards: [{ module } | { model }]
//   per_device_train_batch_size, max_steps     -> train.batchSize, train.maxSteps
//   learning_rate (1e-6)                       -> optim.lr
import { z } from 'zod';
import { groupRlFields, groupRlRunFields } from '@anneal/training';

export const RlooOptionsSchema = z
  .object({
    ...groupRlFields({ numGenerations: 2, beta: 0.05 }),
    /** Advantages normalized over the generation batch (mean 0, std 1). */
    normalizeAdvantages: z.boolean().default(false),
    /** Rewards clamped to [min, max] before the baseline. */
    rewardClipRange: z
      .tuple([z.number(), z.number()])
      .refine(([lo, hi]) => lo < hi, 'min below max')
      .optional(),
  })
  .strict();

export const RlooConfigSchema = z
  .object({
    ...groupRlRunFields,
    recipe: z.literal('rloo'),
    rloo: RlooOptionsSchema.prefault({}),
  })
  .strict();

export type RlooConfig = z.infer<typeof RlooConfigSchema>;
export type RlooOptions = z.infer<typeof RlooOptionsSchema>;
