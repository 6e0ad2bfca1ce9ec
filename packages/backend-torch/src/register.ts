// Registers tfjs backend `torch`: native kernels where we have them, the cpu kernel
// through a copy everywhere else (warning once per kernel name).
import { cpus } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { BackendError } from '@anneal/core';
import { loadAddon } from './addon.js';
import { NATIVE_KERNELS, TorchBackend } from './backend.js';

export interface TorchBackendOptions {
  /** Intra-op threads (default: ANNEAL_NUM_THREADS, else the number of cores). */
  threads?: number;
  /** Where tensors live: 'cpu' or 'cuda:N' (needs a CUDA build of libtorch). */
  device?: string;
  /** Called once per kernel that runs on the cpu fallback. */
  warn?: (message: string) => void;
}

let registered = false;
const warned = new Set<string>();

/** Kernels of the `cpu` backend that `torch` runs through a copy (no native version). */
export function fallbackKernels(): string[] {
  return tf.getKernelsForBackend('cpu').map((k) => k.kernelName).filter((k) => !(k in NATIVE_KERNELS));
}

/** Checks a device name against the linked libtorch; only 'cpu' runs so far. */
export function checkDevice(device: string): void {
  if (device === 'cpu') return;
  const info = loadAddon().info();
  const cuda = /USE_CUDA=ON/.test(info.config);
  throw new BackendError(`device ${JSON.stringify(device)} is not available: this libtorch (${info.torchVersion}) was built ${cuda ? 'with' : 'without'} CUDA, and Anneal's torch backend places tensors on cpu only so far`, {
    hint: 'use device cpu; CUDA placement arrives with the CUDA issue (link a CUDA build of libtorch with LIBTORCH=...)',
  });
}

export function registerTorchBackend(o: TorchBackendOptions = {}): void {
  if (registered) return;
  const addon = loadAddon();
  checkDevice(o.device ?? 'cpu');
  const envThreads = Number(process.env.ANNEAL_NUM_THREADS);
  addon.setThreads(o.threads ?? (Number.isInteger(envThreads) && envThreads > 0 ? envThreads : cpus().length));
  const warn = o.warn ?? ((m: string) => process.stderr.write(m + '\n'));

  tf.registerBackend('torch', () => new TorchBackend(addon), 3);
  for (const config of tf.getKernelsForBackend('cpu')) {
    const name = config.kernelName;
    const order = NATIVE_KERNELS[name];
    const fallback: tf.KernelFunc = ({ inputs, attrs, backend }) => {
      if (!warned.has(name)) {
        warned.add(name);
        warn(`torch backend: kernel ${name} has no native version yet; running it on the cpu backend through a copy`);
      }
      return (backend as TorchBackend).runOnCpu(config, { inputs, attrs });
    };
    let kernelFunc: tf.KernelFunc = fallback;
    if (order) {
      kernelFunc = (args) => {
        const { inputs, attrs, backend } = args;
        if (name === 'GatherV2' && (attrs as { batchDims?: number }).batchDims) return fallback(args);
        const list = order === '*' ? (Object.values(inputs) as tf.TensorInfo[]) : order.map((k) => inputs[k] as tf.TensorInfo);
        const outs = (backend as TorchBackend).runNative(name, list, attrs);
        return name === 'SplitV' || name === 'Unpack' ? outs : outs[0];
      };
    }
    tf.registerKernel({ kernelName: name, backendName: 'torch', kernelFunc });
  }
  // Fused kernels outside tfjs's set, found by name through the kernel registry:
  // one AdamW step over all parameters (AdamW in @anneal/core), and attention, layer norm,
  // GELU and softmax cross-entropy with their backward passes (@anneal/modeling). Inputs go in insertion order.
  for (const [name, multi] of [['AnnealAdamW', true], ['AnnealLayerNorm', true], ['AnnealLayerNormGrad', true], ['AnnealGelu', false], ['AnnealGeluGrad', false], ['AnnealCrossEntropySum', true], ['AnnealCrossEntropySumGrad', false], ['AnnealAttention', true], ['AnnealAttentionGrad', true]] as const) {
    tf.registerKernel({
      kernelName: name,
      backendName: 'torch',
      kernelFunc: ({ inputs, attrs, backend }) => {
        const outs = (backend as TorchBackend).runNative(name, Object.values(inputs) as tf.TensorInfo[], attrs);
        return multi ? outs : outs[0];
      },
    });
  }
  registered = true;
}
