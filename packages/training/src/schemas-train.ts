// The `train:` section the recipes share (CLM adds sampling and histograms to it).
import { z } from 'zod';
import { BACKENDS } from '@anneal/core';

/** The fields of `train:`, for recipes that add their own (the CLM recipe does). */
export const trainFields = {
  /** Sequences per forward pass (a micro-batch). */
  batchSize: z.number().int().positive(),
  /** Micro-batches per optimizer step; the loss is normalized over all their tokens. */
  gradientAccumulationSteps: z.number().int().positive().default(1),
  /** Optimizer steps; or give numEpochs (passes over the training rows) instead. */
  maxSteps: z.number().int().positive().optional(),
  numEpochs: z.number().positive().optional(),
  /** Stop after this many evaluations without a new best eval metric (0 = never). */
  earlyStoppingPatience: z.number().int().min(0).default(0),
  logEvery: z.number().int().positive().default(10),
  evalEvery: z.number().int().positive().default(100),
  /** Evaluation batches (0 = the whole eval split). */
  evalBatches: z.number().int().min(0).default(0),
  saveEvery: z.number().int().positive().default(100),
  saveTotalLimit: z.number().int().positive().default(2),
  /** A NaN/Inf loss or gradient: stop with an error, or skip the update. */
  onNonFinite: z.enum(['error', 'skip']).default('error'),
  /**
   * Activation checkpointing: each transformer block keeps only its input and recomputes its
   * activations in the backward pass (less memory for one more forward pass per block).
   */
  gradientCheckpointing: z.boolean().default(false),
};

/** The train: field of recipes whose loss reads an LM head (CLM, SFT, DPO, PPO). */
export const lossChunkField = {
  /**
   * Tokens per chunk of the LM head and its loss: one chunk's [tokens, vocab] logits alive at a
   * time, each chunk's head run again in the backward pass. auto: chunks of about 64 MB of
   * logits once a micro-batch's logits pass 256 MB; 0: off (all logits at once).
   */
  lossChunkSize: z.union([z.literal('auto'), z.number().int().min(0)]).default('auto'),
};

/** maxSteps or numEpochs, exactly one. */
export const oneStopCondition = [
  (t: { maxSteps?: number; numEpochs?: number }) => (t.maxSteps === undefined) !== (t.numEpochs === undefined),
  { message: 'set exactly one of maxSteps and numEpochs' },
] as const;

export const TrainSchema = z
  .object(trainFields)
  .strict()
  .refine(...oneStopCondition);

/** `train:` of the recipes whose loss reads an LM head (SFT, DPO). */
export const LmTrainSchema = z
  .object({ ...trainFields, ...lossChunkField })
  .strict()
  .refine(...oneStopCondition);

/** name, seed, backend, device, autocast, precision, outputDir: the run-level fields every recipe has. */
export const runFields = {
  name: z.string().regex(/^[\w.-]+$/, 'letters, digits, "_", "." and "-" only'),
  seed: z.number().int().min(0).default(42),
  backend: z.enum(BACKENDS).default('auto'),
  device: z
    .string()
    .regex(/^(cpu|cuda:\d+)$/, 'cpu or cuda:N')
    .default('cpu'),
  autocast: z.enum(['none', 'bf16']).default('none'),
  /** bf16: activations and their gradients in bfloat16, weights, optimizer state and loss in float32 (torch backend). */
  precision: z.enum(['float32', 'bf16']).default('float32'),
  outputDir: z.string().default('runs'),
};
