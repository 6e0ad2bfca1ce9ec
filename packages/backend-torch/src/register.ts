// Registers tfjs backend `torch`: native kernels where we have them, the cpu kernel
// through a copy everywhere else (warning once per kernel name).
import { cpus } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { ANNEAL_KERNELS, BackendError, orderedInputs, registerStepRecorder, type AnnealKernel } from '@anneal/core';
import { loadAddon } from './addon.js';
import { MULTI_OUTPUT, NATIVE_KERNELS, TorchBackend } from './backend.js';
import { RecordedStep } from './recorded-step.js';

export interface TorchBackendOptions {
  /** Intra-op threads (default: ANNEAL_NUM_THREADS, else the number of cores). */
  threads?: number;
  /** Where tensors live: 'cpu' or 'cuda:N' (needs a CUDA build of libtorch). Default: ANNEAL_DEVICE, else cpu. */
  device?: string;
  /** Let float32 matmuls use TF32 on GPUs (cuBLAS/cuDNN), as most training code does. Default: ANNEAL_TF32 (0 or 1), else true; no effect on cpu. */
  tf32?: boolean;
  /**
   * 'bf16': torch.autocast's rules. Matmuls and attention run in bfloat16 and return bfloat16
   * (so what later ops save for backward is half the size); a bfloat16 tensor meeting a
   * float32 one of the same shape (the residual stream) gives float32, a broadcast float32
   * operand (a bias) is cast down; norms, softmax, sums and the loss run in float32; weights,
   * their gradients and optimizer state stay float32. Meant for GPUs; on CPUs it saves
   * memory but is slower. Default 'none'.
   */
  autocast?: 'bf16' | 'none';
  /**
   * 'bf16': activations and their gradients live in bfloat16 (half the memory and memory
   * traffic of float32), products run as under bf16 autocast; parameters, optimizer state,
   * weight gradients, reductions, norms and the loss stay float32 (mixed-precision
   * training). JS still sees float32 tensors. Default 'float32'.
   */
  precision?: 'bf16' | 'float32';
  /**
   * Pad large GEMM dimensions that are not a multiple of 8 (GPT-2's vocabulary, 50257) to a
   * multiple of 64 in bf16 products, so cuBLAS can use its aligned kernels; exact (zeros,
   * then the result narrowed back). Default: ANNEAL_PAD_GEMM=1, else off.
   */
  padGemm?: boolean;
  /** Called once per kernel that runs on the cpu fallback. */
  warn?: (message: string) => void;
}

let registered = false;
const warned = new Set<string>();

/** Kernels of the `cpu` backend that `torch` runs through a copy (no native version). */
export function fallbackKernels(): string[] {
  return tf
    .getKernelsForBackend('cpu')
    .map((k) => k.kernelName)
    .filter((k) => !(k in NATIVE_KERNELS));
}

/**
 * Checks a device name against the linked libtorch and the GPUs it sees ('cpu', or
 * 'cuda:N' with a CUDA build), and makes it the device new tensors are placed on.
 */
export function checkDevice(device: string): void {
  const addon = loadAddon();
  try {
    addon.configure({ device });
  } catch (e) {
    throw new BackendError(String((e as Error).message).replace(/^torch backend, configure: /, ''), {
      hint: /CUDA build/.test(String(e))
        ? 'use device cpu, or link a CUDA build of libtorch (LIBTORCH=/path/to/libtorch, then npm run build:native -w @anneal/backend-torch)'
        : 'use cpu or cuda:N with N below the number of visible GPUs',
    });
  }
}

export function registerTorchBackend(o: TorchBackendOptions = {}): void {
  if (registered) return;
  const addon = loadAddon();
  checkDevice(o.device ?? process.env.ANNEAL_DEVICE ?? 'cpu');
  addon.configure({
    tf32: o.tf32 ?? process.env.ANNEAL_TF32 !== '0',
    autocast: o.autocast ?? 'none',
    precision: o.precision ?? 'float32',
    padGemm: o.padGemm ?? process.env.ANNEAL_PAD_GEMM === '1',
  });
  const envThreads = Number(process.env.ANNEAL_NUM_THREADS);
  addon.setThreads(o.threads ?? (Number.isInteger(envThreads) && envThreads > 0 ? envThreads : cpus().length));
  const warn = o.warn ?? ((m: string) => process.stderr.write(m + '\n'));

  tf.registerBackend('torch', () => new TorchBackend(addon), 3);
  // Steps that libraries ask core for (replayableStep: generation's decode step) are recorded
  // and replayed here; on other backends RecordedStep runs them dispatched.
  registerStepRecorder((fn, o) => new RecordedStep(fn, o));
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
        const { inputs, backend } = args;
        let attrs: unknown = args.attrs;
        if (
          name === 'GatherV2' &&
          !gatherIsNative(inputs.x as tf.TensorInfo, inputs.indices as tf.TensorInfo, attrs as tf.GatherV2Attrs)
        )
          return fallback(args);
        if (name === 'StridedSlice')
          attrs = resolveStridedSlice((inputs.x as tf.TensorInfo).shape, attrs as tf.StridedSliceAttrs);
        const list =
          order === '*' ? (Object.values(inputs) as tf.TensorInfo[]) : order.map((k) => inputs[k] as tf.TensorInfo);
        const outs = (backend as TorchBackend).runNative(name, list, attrs);
        return MULTI_OUTPUT.has(name) ? outs : outs[0];
      };
    }
    tf.registerKernel({ kernelName: name, backendName: 'torch', kernelFunc });
  }
  // Anneal's own kernels (attention, norms, activations, RoPE, LoRA's y + u bᵀ, losses,
  // AdamW, dequantization, reading a checkpoint tensor), as @anneal/core's ANNEAL_KERNELS
  // declares them: inputs handed over by name in the declared order.
  for (const [name, spec] of Object.entries(ANNEAL_KERNELS) as Array<[AnnealKernel, { multi: boolean }]>) {
    tf.registerKernel({
      kernelName: name,
      backendName: 'torch',
      kernelFunc: ({ inputs, attrs, backend }) => {
        const outs = (backend as TorchBackend).runNative(name, orderedInputs(name, inputs), attrs);
        return spec.multi ? outs : outs[0];
      },
    });
  }
  registered = true;
}

/** Native gather handles a plain gather and a batched one along the axis right after the batch dims. */
function gatherIsNative(x: tf.TensorInfo, indices: tf.TensorInfo, attrs: tf.GatherV2Attrs): boolean {
  const batchDims = (attrs.batchDims ?? 0) < 0 ? attrs.batchDims + indices.shape.length : (attrs.batchDims ?? 0);
  const axis = attrs.axis < 0 ? attrs.axis + x.shape.length : attrs.axis;
  return batchDims === 0 || axis === batchDims;
}

/** Resolves tfjs's masks (begin/end/ellipsis/new-axis/shrink) into per-dimension begin, element count and stride. */
function resolveStridedSlice(shape: number[], a: tf.StridedSliceAttrs) {
  const info = tf.slice_util.sliceInfo(
    shape,
    a.begin,
    a.end,
    a.strides,
    a.beginMask,
    a.endMask,
    a.ellipsisMask,
    a.newAxisMask,
    a.shrinkAxisMask,
  );
  const count = info.isIdentity
    ? [...shape]
    : info.begin.map((b, d) => Math.max(0, Math.ceil((info.end[d] - b) / info.strides[d])));
  return {
    begin: info.isIdentity ? shape.map(() => 0) : info.begin,
    count,
    strides: info.isIdentity ? shape.map(() => 1) : info.strides,
    finalShape: info.finalShape,
  };
}
