export { ClmConfigSchema, type ClmConfig } from './clm/config.js';
export { runClm, type RunResult } from './clm/recipe.js';
export { SftConfigSchema, type SftConfig } from './sft/config.js';
export { runSft, type SftResult } from './sft/recipe.js';
export { ClassificationConfigSchema, type ClassificationConfig } from './classification/config.js';
export { runClassification, type ClassificationResult } from './classification/recipe.js';
export { MlmConfigSchema, type MlmConfig } from './mlm/config.js';
export { runMlm, type MlmResult } from './mlm/recipe.js';
