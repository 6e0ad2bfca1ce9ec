// Loads the compiled addon (build/Release/anneal_torch.node) and says why when it cannot.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { BackendError } from '@anneal/core';

export interface NativeTensor {
  id: number;
  shape: number[];
  dtype: string;
}

export interface NativeAddon {
  upload(values: Float32Array | Int32Array | Uint8Array, shape: number[], dtype: string): number;
  download(id: number): Float32Array | Int32Array | Uint8Array;
  dispose(id: number): void;
  count(): number;
  run(kernel: string, inputs: number[], attrs: unknown): NativeTensor[];
  setThreads(n: number): void;
  info(): { torchVersion: string; threads: number; parallel: string; config: string };
}

export const ADDON_PATH = fileURLToPath(new URL('../build/Release/anneal_torch.node', import.meta.url));

let cached: NativeAddon | undefined;

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  if (!existsSync(ADDON_PATH)) {
    throw new BackendError('the torch backend is not built', {
      file: ADDON_PATH,
      hint: 'install libtorch (Debian: apt-get install libtorch-dev libopenblas0-pthread, or set LIBTORCH) and run npm install again; or use backend: wasm',
    });
  }
  // ATen parallelises every op itself (ANNEAL_NUM_THREADS); OpenBLAS threads on top of
  // that oversubscribe the cores (measured: a training step 2x slower on 2 cores). Unless
  // the user chose otherwise, BLAS runs one thread per ATen worker.
  process.env.OPENBLAS_NUM_THREADS ??= '1';
  try {
    cached = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
  } catch (e) {
    throw new BackendError(`the torch addon does not load: ${(e as Error).message.split('\n')[0]}`, {
      file: ADDON_PATH,
      hint: 'libtorch changed or went missing since the addon was built: rebuild with npm run build:native -w @anneal/backend-torch',
      cause: e,
    });
  }
  return cached;
}

/** Which BLAS library libtorch is using in this process (read from the loaded libraries). */
export function loadedBlas(): string {
  try {
    const maps = readFileSync('/proc/self/maps', 'utf8');
    const libs = [...new Set(maps.split('\n').map((l) => l.split(/\s+/)[5]).filter((p) => p && /blas/i.test(p)))];
    return libs.length ? libs.map((p) => realpathSync(p)).join(', ') : 'none loaded';
  } catch {
    return 'unknown';
  }
}
