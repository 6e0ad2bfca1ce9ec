// @anneal/core in two halves: the tensor engine (engine/: backend selection, kernels,
// backprop, AdamW and schedules, RNG, collectives) and I/O (io/: safetensors, YAML config,
// atomic writes and storage errors, checkpoints, the run logger, TensorBoard, the Hub
// cache). Typed errors serve both. Test fakes live at '@anneal/core/testing'.
export * from './errors.js';

// ---- tensor engine
export { BACKENDS, useBackend, type ActiveBackend, type BackendName } from './engine/backend.js';
export { registerFastSegmentSum, segmentSum } from './engine/kernels/unsorted-segment-sum.js';
export {
  ANNEAL_KERNELS,
  hasAnnealKernel,
  orderedInputs,
  runAnnealKernel,
  type AnnealKernel,
  type AnnealKernelAttrs,
  type AnnealKernelInputs,
} from './engine/kernels/anneal-kernels.js';
export { TFJS_CORE_VERSION, checkEngineInternals, gradients } from './engine/backprop.js';
export { stopGradient, valueAndGrads } from './engine/grad.js';
export { checkpointed } from './engine/checkpoint.js';
export { FunctionalStep } from './engine/functional-step.js';
export { registerStepRecorder, replayableStep, type ReplayableStep, type StepRecorder } from './engine/replay.js';
export * from './engine/optim.js';
export * from './engine/schedule.js';
export * from './engine/rng.js';
export * from './engine/collective.js';
export { freeLocalPort } from './engine/ports.js';

// ---- I/O
export * from './io/safetensors.js';
export * from './io/config.js';
export * from './io/atomic.js';
export { makeDir, storageError, writing } from './io/storage.js';
export { stringifyJson, pythonJsonTypes } from './io/json-text.js';
export * from './io/checkpoints.js';
export { RunLogger } from './io/run-logger.js';
export { SummaryWriter } from './io/tensorboard/writer.js';
export { maskedCrc32c, frameRecord } from './io/tensorboard/tfrecord.js';
export * from './io/hf-cache.js';
