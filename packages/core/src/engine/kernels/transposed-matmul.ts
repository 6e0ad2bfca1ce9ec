// BatchMatMul with transposed operands, made fast on `wasm`.
//
// Why: tfjs-backend-wasm multiplies A @ B at ~20 GFLOP/s, but A^T @ B at ~0.4 and
// A @ B^T at ~1.9 (measured on our 2-core machines: tools/bench/matmul.ts). Backprop
// is made of exactly those products, so training ran ~8x slower than the forward pass.
// Transposing the operand explicitly (a memory copy) and then running the fast kernel
// gives ~16 GFLOP/s for all four variants.
import * as tf from '@tensorflow/tfjs-core';

interface MatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

type Backend = tf.KernelBackend & { disposeData(dataId: tf.DataId): boolean };

export function registerTransposedMatMul(backendName: string): void {
  const original = tf.getKernel('BatchMatMul', backendName);
  const transpose = tf.getKernel('Transpose', backendName);
  if (!original || !transpose) return;
  if ((original.kernelFunc as { annealWrapped?: boolean }).annealWrapped) return;

  const swapLast = (x: tf.TensorInfo, backend: Backend): tf.TensorInfo => {
    const perm = x.shape.map((_, i) => i);
    const r = perm.length;
    [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
    return transpose.kernelFunc({ inputs: { x }, backend, attrs: { perm } }) as tf.TensorInfo;
  };

  const kernelFunc = ((args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: unknown }) => {
    const { transposeA, transposeB } = args.attrs as unknown as MatMulAttrs;
    if (!transposeA && !transposeB) return original.kernelFunc(args as never);
    const backend = args.backend as Backend;
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const a2 = transposeA ? swapLast(a, backend) : a;
    const b2 = transposeB ? swapLast(b, backend) : b;
    const out = original.kernelFunc({
      ...args,
      inputs: { a: a2, b: b2 },
      attrs: { ...(args.attrs as object), transposeA: false, transposeB: false },
    } as never);
    if (a2 !== a) backend.disposeData(a2.dataId);
    if (b2 !== b) backend.disposeData(b2.dataId);
    return out;
  }) as tf.KernelFunc & { annealWrapped?: boolean };
  kernelFunc.annealWrapped = true;

  tf.unregisterKernel('BatchMatMul', backendName);
  tf.registerKernel({ ...original, kernelFunc });
}
