// Option groups shared by the recipes' configs (AdamW and the learning-rate schedule).
import { z } from 'zod';

export const OptimSchema = z
  .object({
    lr: z.number().positive(),
    weightDecay: z.number().min(0).default(0.1),
    betas: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).default([0.9, 0.95]),
    eps: z.number().positive().default(1e-8),
    /** Clip gradients to this global L2 norm (0 = off). */
    gradClip: z.number().min(0).default(1.0),
  })
  .strict();

export const ScheduleSchema = z
  .object({
    kind: z.enum(['constant', 'linear', 'cosine']).default('cosine'),
    warmupSteps: z.number().int().min(0).default(0),
    /** Floor of linear/cosine decay as a fraction of optim.lr. */
    minLrRatio: z.number().min(0).max(1).default(0.1),
  })
  .strict()
  .default({ kind: 'cosine', warmupSteps: 0, minLrRatio: 0.1 });
