export { registerTorchBackend, checkDevice, fallbackKernels, type TorchBackendOptions } from './register.js';
export { TorchBackend } from './backend.js';
export { loadAddon, loadedBlas, checkBuildRecord, ADDON_PATH, BUILD_RECORD, type NativeAddon } from './addon.js';
export {
  ProcessGroup,
  processGroupFromEnv,
  collectivesAvailable,
  collectiveBackends,
  defaultCollectiveBackend,
  type ProcessGroupOptions,
} from './dist.js';
export { RecordedStep, type RecordedStepOptions, type RecordedStepStats } from './recorded-step.js';
