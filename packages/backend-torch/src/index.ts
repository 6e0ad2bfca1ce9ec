export { registerTorchBackend, checkDevice, fallbackKernels, type TorchBackendOptions } from './register.js';
export { TorchBackend } from './backend.js';
export { loadAddon, loadedBlas, ADDON_PATH, type NativeAddon } from './addon.js';
