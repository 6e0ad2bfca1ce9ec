// Learning-rate schedules, as transformers' get_{constant,linear,cosine}_schedule_with_warmup:
// `step` counts optimizer steps from 0, warmup ramps linearly from 0, and `minLrRatio`
// sets the floor that linear and cosine decay to (0 = decay to zero, as in transformers).

export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export interface ScheduleOptions {
  kind: ScheduleKind;
  /** Peak learning rate. */
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  minLrRatio: number;
}

export function learningRateAt(step: number, o: ScheduleOptions): number {
  if (step < o.warmupSteps) return (o.lr * step) / Math.max(1, o.warmupSteps);
  if (o.kind === 'constant') return o.lr;
  const progress = Math.min(1, (step - o.warmupSteps) / Math.max(1, o.totalSteps - o.warmupSteps));
  const decay = o.kind === 'linear' ? 1 - progress : 0.5 * (1 + Math.cos(Math.PI * progress));
  return o.lr * (o.minLrRatio + (1 - o.minLrRatio) * decay);
}
