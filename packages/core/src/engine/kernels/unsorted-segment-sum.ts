// A fast UnsortedSegmentSum for the `cpu` and `wasm` backends.
//
// Why: tfjs computes the gradient of `gather` (so of every embedding lookup) with
// UnsortedSegmentSum. The stock `cpu` kernel builds a [numSegments, N] one-hot-style
// comparison and took ~200 s per step at vocab 8192 and 1k tokens; `wasm` has no kernel
// at all. This one is a single O(N * inner) pass that adds each row into its segment.
import * as tf from '@tensorflow/tfjs-core';

interface SegmentSumAttrs {
  numSegments: number;
}

type AnyBackend = tf.KernelBackend & {
  readSync(dataId: tf.DataId): tf.backend_util.BackendValues;
  makeTensorInfo?: (shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues) => tf.TensorInfo;
  makeOutput?: (shape: number[], dtype: tf.DataType) => tf.TensorInfo;
  typedArrayFromHeap?: (t: tf.TensorInfo) => tf.backend_util.TypedArray;
};

/** Sums rows of `x` (first dim = len(segmentIds)) into `numSegments` output rows. */
export function segmentSum(
  x: Float32Array | Int32Array,
  segmentIds: ArrayLike<number>,
  numSegments: number,
  inner: number,
  out: Float32Array | Int32Array,
): void {
  out.fill(0);
  for (let i = 0; i < segmentIds.length; i++) {
    const s = segmentIds[i];
    if (s < 0 || s >= numSegments) continue; // tf semantics: out-of-range ids are dropped
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) out[dst + j] += x[src + j];
  }
}

function kernelFunc({
  inputs,
  backend,
  attrs,
}: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: unknown;
}): tf.TensorInfo {
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const { numSegments } = attrs as unknown as SegmentSumAttrs;
  const b = backend as AnyBackend;
  // segmentIds may have rank > 1: tf treats x as [...segmentIds.shape, ...inner].
  const nIds = segmentIds.shape.reduce((a, d) => a * d, 1);
  const inner = x.shape.slice(segmentIds.shape.length).reduce((a, d) => a * d, 1);
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const xv = b.readSync(x.dataId) as Float32Array | Int32Array;
  const ids = b.readSync(segmentIds.dataId) as Int32Array;
  if (ids.length !== nIds) throw new Error(`UnsortedSegmentSum: expected ${nIds} segment ids, got ${ids.length}`);
  if (b.makeOutput && b.typedArrayFromHeap) {
    // wasm: write straight into the output's heap memory.
    const out = b.makeOutput(outShape, x.dtype);
    segmentSum(xv, ids, numSegments, inner, b.typedArrayFromHeap(out) as Float32Array);
    return out;
  }
  const out = x.dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
  segmentSum(xv, ids, numSegments, inner, out);
  return b.makeTensorInfo!(outShape, x.dtype, out);
}

/** Replaces (or adds) UnsortedSegmentSum for `backendName`. */
export function registerFastSegmentSum(backendName: string): void {
  if (tf.getKernel('UnsortedSegmentSum', backendName)) tf.unregisterKernel('UnsortedSegmentSum', backendName);
  tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName, kernelFunc: kernelFunc as tf.KernelFunc });
}
