// Picks the TensorFlow.js backend that runs every tensor op in Anneal.
//
// tfjs silently falls back to another backend when the requested one fails to
// initialise, so `useBackend` checks what it actually got and throws otherwise.
import * as tf from '@tensorflow/tfjs-core';
import { checkEngineInternals } from './backprop.js';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core's Node bundle registers no gradients; the umbrella package's bundle does
// (into the same tfjs-core instance), so it is imported for that side effect.
import '@tensorflow/tfjs';
import { BackendError } from '../errors.js';
import { registerFastSegmentSum } from './kernels/unsorted-segment-sum.js';
import { registerTransposedMatMul } from './kernels/transposed-matmul.js';

/**
 * `auto` = tensorflow if a user installed tfjs-node(-gpu), else torch if the app
 * registered Anneal's libtorch backend (@anneal/backend-torch), else wasm.
 */
export const BACKENDS = ['auto', 'cpu', 'wasm', 'tensorflow', 'torch'] as const;
export type BackendName = (typeof BACKENDS)[number];

async function tryImportTfjsNode(): Promise<string | undefined> {
  // Never a dependency of Anneal: picked up only if the user installed it.
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      return pkg;
    } catch {
      // not installed, or its native library does not load on this machine
    }
  }
  return undefined;
}

export interface ActiveBackend {
  /** The tfjs backend name now active. */
  name: string;
  /** What was asked for (`auto` resolves to a concrete name). */
  requested: BackendName;
  /** Extra detail, e.g. which tfjs-node package provided `tensorflow`. */
  detail: string;
}

/**
 * Activates a backend and verifies it. The `ANNEAL_BACKEND` environment variable,
 * when set, overrides the argument (so a config can be run on another backend
 * without editing it).
 */
export async function useBackend(requested: BackendName = 'auto', env = process.env): Promise<ActiveBackend> {
  checkEngineInternals();
  const fromEnv = env.ANNEAL_BACKEND;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!(BACKENDS as readonly string[]).includes(fromEnv)) {
      throw new BackendError(`ANNEAL_BACKEND=${JSON.stringify(fromEnv)} is not a backend`, {
        hint: `use one of ${BACKENDS.join(', ')}`,
      });
    }
    requested = fromEnv as BackendName;
  }
  let target: string = requested;
  let detail = '';
  if (requested === 'auto' || requested === 'tensorflow') {
    const pkg = await tryImportTfjsNode();
    if (pkg) {
      target = 'tensorflow';
      detail = pkg;
    } else if (requested === 'tensorflow') {
      throw new BackendError(
        'backend "tensorflow" needs @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu, and neither loads',
        {
          hint: 'install one of them yourself (Anneal does not depend on them), or use backend: wasm',
        },
      );
    } else if (tf.findBackendFactory('torch')) {
      target = 'torch';
    } else {
      target = 'wasm';
      detail = 'neither tfjs-node nor the torch backend is available; using wasm (SIMD, single thread)';
    }
  }
  if (target === 'torch' && !tf.findBackendFactory('torch')) {
    throw new BackendError('backend "torch" is not available in this process', {
      hint: 'install libtorch (Debian: apt-get install libtorch-dev libopenblas0-pthread) and run npm install again, or use backend: wasm',
    });
  }
  if (target === 'cpu' || target === 'wasm') registerFastSegmentSum(target);
  if (target === 'wasm') registerTransposedMatMul(target);
  let ok = false;
  try {
    ok = await tf.setBackend(target);
    await tf.ready();
  } catch (e) {
    throw new BackendError(`backend "${target}" failed to initialise: ${(e as Error).message}`, { cause: e });
  }
  if (!ok || tf.getBackend() !== target) {
    throw new BackendError(`asked for backend "${target}" but tfjs is on "${tf.getBackend()}"`, {
      hint: 'tfjs falls back silently when a backend fails; check the messages above',
    });
  }
  return { name: target, requested, detail };
}
