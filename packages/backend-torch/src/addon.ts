// Loads the compiled addon (build/Release/anneal_torch.node) and says why when it cannot.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
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
  /** Device-to-host reads so far (each one waits for a GPU's queue to drain). */
  downloads(): number;
  bytes(): number;
  /** The CUDA caching allocator's bytes now and at peak (null on the cpu or without the CUDA headers). */
  deviceMemory(): { allocated: number; peak: number } | null;
  run(kernel: string, inputs: number[], attrs: unknown): NativeTensor[];
  /** Records every kernel call and upload from now on; `inputs` are the step's inputs (slots). */
  recordBegin(inputs: number[]): number;
  recordEnd(outputs: number[]): { id: number; calls: number; constants: number; invalid: string };
  recordAbort(): void;
  /** '' when two recordings are the same program, else why not. */
  recordCompare(a: number, b: number): string;
  replay(id: number, inputs: number[], cudaGraph: boolean): NativeTensor[];
  recordInfo(id: number): { graph: string };
  recordDispose(id: number): void;
  setThreads(n: number): void;
  configure(o: {
    device?: string;
    tf32?: boolean;
    autocast?: 'bf16' | 'none';
    precision?: 'bf16' | 'float32';
    padGemm?: boolean;
  }): void;
  info(): {
    torchVersion: string;
    threads: number;
    parallel: string;
    config: string;
    device: string;
    cudaDevices: number;
    tf32: boolean;
    autocast: string;
    precision: string;
    padGemm: boolean;
    fused: string;
  };
}

export const ADDON_PATH = fileURLToPath(new URL('../build/Release/anneal_torch.node', import.meta.url));
/** Written by scripts/build.mjs: the libtorch version, header and library folder built against. */
export const BUILD_RECORD = ADDON_PATH.replace(/\.node$/, '.json');

interface BuildRecord {
  torchVersion: string;
  versionHeader: string | null;
  libDir: string;
}

/**
 * The libtorch version a torch/version.h states: its TORCH_VERSION string, or (libtorch
 * 2.x builds it with C10_STRINGIZE) MAJOR.MINOR.PATCH. Same as headerVersion in scripts/libtorch.mjs.
 */
export function torchVersionOf(header: string): string | undefined {
  const literal = /#define TORCH_VERSION\s*\\?\s*"([^"]+)"/.exec(header)?.[1];
  if (literal) return literal;
  const [major, minor, patch] = ['MAJOR', 'MINOR', 'PATCH'].map(
    (p) => new RegExp(`#define TORCH_VERSION_${p}\\s+(\\d+)`).exec(header)?.[1],
  );
  return major && minor && patch ? `${major}.${minor}.${patch}` : undefined;
}

/**
 * Compares the libtorch the addon was built against with what is installed now.
 * Returns a problem to report, or undefined when they agree (or nothing was recorded).
 */
export function checkBuildRecord(recordFile = BUILD_RECORD): BackendError | undefined {
  if (!existsSync(recordFile)) return undefined;
  const rec = JSON.parse(readFileSync(recordFile, 'utf8')) as BuildRecord;
  const lib = join(rec.libDir, 'libtorch_cpu.so');
  if (!existsSync(lib)) {
    return new BackendError(
      `libtorch is missing at run time: the addon was built against libtorch ${rec.torchVersion} in ${rec.libDir}, and ${lib} is gone`,
      {
        file: recordFile,
        hint: 'reinstall it (Debian: apt-get install libtorch-dev) or point LIBTORCH at one and rebuild (npm run build:native -w @anneal/backend-torch); or use backend: wasm',
      },
    );
  }
  if (rec.versionHeader && existsSync(rec.versionHeader)) {
    const now = torchVersionOf(readFileSync(rec.versionHeader, 'utf8'));
    if (now && now !== rec.torchVersion) {
      return new BackendError(`the addon was built against libtorch ${rec.torchVersion} but ${now} is installed now`, {
        file: recordFile,
        hint: 'rebuild it: npm run build:native -w @anneal/backend-torch',
      });
    }
  }
  return undefined;
}

let cached: NativeAddon | undefined;

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  if (!existsSync(ADDON_PATH)) {
    throw new BackendError('the torch backend is not built', {
      file: ADDON_PATH,
      hint: 'install libtorch (Debian: apt-get install libtorch-dev libopenblas0-pthread, or set LIBTORCH) and run npm install again; or use backend: wasm',
    });
  }
  const mismatch = checkBuildRecord();
  if (mismatch) throw mismatch;
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
    const libs = [
      ...new Set(
        maps
          .split('\n')
          .map((l) => l.split(/\s+/)[5])
          .filter((p) => p && /blas/i.test(p)),
      ),
    ];
    return libs.length ? libs.map((p) => realpathSync(p)).join(', ') : 'none loaded';
  } catch {
    return 'unknown';
  }
}
