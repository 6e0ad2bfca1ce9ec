// Data-parallel collectives on PyTorch's c10d, from the libtorch the addon links: a
// TCPStore rendezvous (rank 0 serves it at MASTER_ADDR:MASTER_PORT) and a Gloo process
// group (CPU tensors, or CUDA tensors through the host), or an NCCL one (one GPU per rank;
// needs an addon built against a CUDA libtorch with NCCL, tools/gpu/build-addon.sh). Tensors stay in libtorch: an all-reduce flattens them into ~25 MB
// buckets natively and returns new tensors. A failure or a timeout is a JS error naming the rank.
import * as tf from '@tensorflow/tfjs-core';
import type { Collective } from '@anneal/core';
import { loadAddon } from './addon.js';
import { TorchBackend } from './backend.js';

export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** How long rendezvous and each collective may wait for the other ranks (default 5 min). */
  timeoutMs?: number;
  /** c10d backend: 'nccl' (GPUs) or 'gloo'. Default: nccl when tensors live on a GPU and the addon has it, else gloo. */
  backend?: 'gloo' | 'nccl';
}

interface DistAddon {
  distInit(o: Required<ProcessGroupOptions>): void;
  distBarrier(): void;
  distDestroy(): void;
  distAvailable(): boolean;
  distBackends(): string[];
}

const dist = () => loadAddon() as unknown as DistAddon;

/** Whether the addon was built with Gloo (Debian: libgloo-dev present at build time). */
export function collectivesAvailable(): boolean {
  try {
    return dist().distAvailable();
  } catch {
    return false;
  }
}

/** The c10d backends the addon was built with ('gloo' with libgloo-dev; 'nccl' with a CUDA libtorch). */
export function collectiveBackends(): Array<'gloo' | 'nccl'> {
  try {
    return dist().distBackends() as Array<'gloo' | 'nccl'>;
  } catch {
    return [];
  }
}

/** nccl when tensors live on a GPU and the addon has it, else gloo. */
export function defaultCollectiveBackend(): 'gloo' | 'nccl' {
  const onGpu = loadAddon().info().device.startsWith('cuda');
  return onGpu && collectiveBackends().includes('nccl') ? 'nccl' : 'gloo';
}

export class ProcessGroup implements Collective {
  private constructor(
    readonly rank: number,
    readonly worldSize: number,
  ) {}

  /** Joins the group (blocks until all worldSize ranks have joined, or the timeout). */
  static init(o: ProcessGroupOptions): ProcessGroup {
    if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize)
      throw new RangeError(`rank ${o.rank} is outside 0..${o.worldSize - 1}`);
    dist().distInit({ ...o, timeoutMs: o.timeoutMs ?? 300_000, backend: o.backend ?? defaultCollectiveBackend() });
    return new ProcessGroup(o.rank, o.worldSize);
  }

  private run(kernel: string, tensors: tf.Tensor[], attrs: object, what: string): tf.Tensor[] {
    const backend = tf.backend();
    if (!(backend instanceof TorchBackend))
      throw new Error(`rank ${this.rank}: ${what} needs the torch backend (it is ${tf.getBackend()})`);
    if (!tensors.length) return [];
    try {
      return backend.runNative(kernel, tensors, attrs).map((info) => tf.engine().makeTensorFromTensorInfo(info));
    } catch (e) {
      throw new Error(`rank ${this.rank}: ${what} failed: ${(e as Error).message}`);
    }
  }

  allReduce(tensors: tf.Tensor[], op: 'sum' | 'avg' = 'sum'): tf.Tensor[] {
    return this.run('AnnealAllReduce', tensors, { op }, `allReduce(${op})`);
  }

  broadcast(tensors: tf.Tensor[], root = 0): tf.Tensor[] {
    return this.run('AnnealBroadcast', tensors, { root }, `broadcast from rank ${root}`);
  }

  barrier(): void {
    dist().distBarrier();
  }

  /** Leaves the group (the process can exit cleanly). */
  destroy(): void {
    dist().distDestroy();
  }
}

/**
 * The process group torchrun-style environment variables describe (RANK, WORLD_SIZE,
 * MASTER_ADDR, MASTER_PORT; `anneal launch` sets them), or undefined for a single process.
 */
export function processGroupFromEnv(env: NodeJS.ProcessEnv = process.env): ProcessGroup | undefined {
  const world = Number(env.WORLD_SIZE ?? 1);
  if (!(world > 1)) return undefined;
  const need = (k: string) => {
    const v = env[k];
    if (v === undefined || v === '')
      throw new Error(
        `WORLD_SIZE is ${world} but ${k} is not set (anneal launch sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT)`,
      );
    return v;
  };
  const backend = env.ANNEAL_DIST_BACKEND;
  if (backend !== undefined && backend !== 'gloo' && backend !== 'nccl')
    throw new Error(`ANNEAL_DIST_BACKEND is ${JSON.stringify(backend)}: use gloo or nccl`);
  return ProcessGroup.init({
    rank: Number(need('RANK')),
    worldSize: world,
    masterAddr: need('MASTER_ADDR'),
    masterPort: Number(need('MASTER_PORT')),
    timeoutMs: env.ANNEAL_DIST_TIMEOUT_MS ? Number(env.ANNEAL_DIST_TIMEOUT_MS) : undefined,
    backend,
  });
}
