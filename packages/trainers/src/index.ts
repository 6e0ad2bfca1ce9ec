export { ClmConfigSchema, type ClmConfig } from './clm/config.js';
export { runClm, type RunOptions, type RunResult } from './clm/recipe.js';
export { silentReporter, type Reporter, type StepReport } from './run/reporter.js';
export { accumulatedGradients, type LossSum } from './run/step.js';
export { tokenMetrics } from './run/token-metrics.js';
export { SftConfigSchema, type SftConfig } from './sft/config.js';
export { runSft, type SftResult } from './sft/recipe.js';
export { OptimSchema, ScheduleSchema } from './run/schemas.js';
