// TensorFlow.js backend `torch`: every tensor is an at::Tensor owned by the native addon;
// a tfjs dataId maps to its integer handle. Kernels listed in native-kernels.ts run in
// ATen; every other kernel tfjs knows for `cpu` runs there through a copy, with a
// one-time warning naming it (never an error mid-run).
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { MULTI_OUTPUT, NATIVE_KERNELS } from './native-kernels.js';
import type { NativeAddon, NativeTensor } from './addon.js';

type Values = tf.backend_util.BackendValues;

interface Entry {
  handle: number;
  refCount: number;
}

export class TorchBackend extends tf.KernelBackend {
  private data = new WeakMap<tf.DataId, Entry>();
  private live = 0;
  /** The cpu backend that runs kernels with no native implementation. */
  readonly cpu = new MathBackendCPU();

  constructor(readonly addon: NativeAddon) {
    super();
  }

  // ---- storage

  private entry(dataId: tf.DataId): Entry {
    const e = this.data.get(dataId);
    if (!e) throw new Error('torch backend: tensor data is not on this backend (already disposed?)');
    return e;
  }

  handle(dataId: tf.DataId): number {
    return this.entry(dataId).handle;
  }

  /** Wraps a native tensor as a new dataId with refCount 1. */
  adopt(t: NativeTensor): tf.TensorInfo {
    const dataId = {};
    this.data.set(dataId, { handle: t.id, refCount: 1 });
    this.live++;
    return { dataId, shape: t.shape, dtype: t.dtype as tf.DataType };
  }

  override write(values: Values, shape: number[], dtype: tf.DataType): tf.DataId {
    const dataId = {};
    this.move(dataId, values, shape, dtype, 1);
    return dataId;
  }

  override move(dataId: tf.DataId, values: Values, shape: number[], dtype: tf.DataType, refCount: number): void {
    if (dtype === 'string' || dtype === 'complex64') throw new Error(`torch backend: dtype ${dtype} is not supported`);
    const typed =
      values ??
      (dtype === 'float32'
        ? new Float32Array(tf.util.sizeFromShape(shape))
        : dtype === 'int32'
          ? new Int32Array(tf.util.sizeFromShape(shape))
          : new Uint8Array(tf.util.sizeFromShape(shape)));
    const handle = this.addon.upload(toTyped(typed as Values, dtype), shape, dtype);
    if (!this.data.has(dataId)) this.live++;
    this.data.set(dataId, { handle, refCount });
  }

  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Values): tf.TensorInfo {
    return { dataId: this.write(values as Values, shape, dtype), shape, dtype };
  }

  override readSync(dataId: tf.DataId): Values {
    return this.addon.download(this.handle(dataId));
  }

  override async read(dataId: tf.DataId): Promise<Values> {
    return this.readSync(dataId);
  }

  override incRef(dataId: tf.DataId): void {
    this.entry(dataId).refCount++;
  }

  override refCount(dataId: tf.DataId): number {
    return this.data.get(dataId)?.refCount ?? 0;
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    const e = this.data.get(dataId);
    if (!e) return true;
    if (force) e.refCount = 0;
    else e.refCount--;
    if (e.refCount > 0) return false;
    this.addon.dispose(e.handle);
    this.data.delete(dataId);
    this.live--;
    return true;
  }

  override numDataIds(): number {
    return this.live;
  }

  /** Tensors alive in libtorch (must equal numDataIds: a check for leaks in the addon). */
  nativeCount(): number {
    return this.addon.count();
  }

  /** numBytesInBackend: bytes libtorch holds for live tensors, each storage once (tfjs's numBytes counts views twice). */
  /** tf.memory() adds these: the bytes live tensors hold, and on a GPU the allocator's peak (peakBytesOnDevice). */
  override memory(): {
    unreliable: boolean;
    reasons?: string[];
    numBytesInBackend: number;
    peakBytesOnDevice?: number;
  } {
    const device = this.addon.deviceMemory();
    return {
      unreliable: true,
      reasons: ['tfjs counts a view (reshape, clone) as its own bytes; numBytesInBackend does not'],
      numBytesInBackend: this.addon.bytes(),
      ...(device && { peakBytesOnDevice: device.peak }),
    };
  }

  override async time(f: () => void): Promise<tf.BackendTimingInfo> {
    const t0 = performance.now();
    f();
    return { kernelMs: performance.now() - t0 };
  }

  override floatPrecision(): 16 | 32 {
    return 32;
  }

  override epsilon(): number {
    return 1e-7;
  }

  override dispose(): void {
    this.cpu.dispose();
  }

  // ---- kernels

  /** Runs a native kernel: inputs in the order given, attrs passed through. */
  runNative(kernelName: string, inputs: tf.TensorInfo[], attrs: unknown): tf.TensorInfo[] {
    const outs = this.addon.run(
      kernelName,
      inputs.map((t) => this.handle(t.dataId)),
      attrs ?? {},
    );
    return outs.map((o) => this.adopt(o));
  }

  /** Runs the cpu backend's kernel on copies of the inputs and copies the outputs back. */
  runOnCpu(
    config: tf.KernelConfig,
    args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap },
  ): tf.TensorInfo | tf.TensorInfo[] {
    const copies: tf.TensorInfo[] = [];
    const toCpu = (t: tf.TensorInfo): tf.TensorInfo => {
      const c = this.cpu.makeTensorInfo(t.shape, t.dtype, this.readSync(t.dataId) as never);
      copies.push(c);
      return c;
    };
    const inputs: tf.NamedTensorInfoMap = Array.isArray(args.inputs)
      ? ((args.inputs as tf.TensorInfo[]).map(toCpu) as unknown as tf.NamedTensorInfoMap)
      : Object.fromEntries(Object.entries(args.inputs).map(([k, t]) => [k, toCpu(t as tf.TensorInfo)]));
    const out = config.kernelFunc({ inputs, attrs: args.attrs ?? {}, backend: this.cpu });
    const back = (t: tf.TensorInfo): tf.TensorInfo => {
      const moved = this.makeTensorInfo(t.shape, t.dtype, this.cpu.readSync(t.dataId) as Values);
      this.cpu.disposeData(t.dataId, true);
      return moved;
    };
    const result = Array.isArray(out) ? out.map(back) : back(out);
    for (const c of copies) this.cpu.disposeData(c.dataId, true);
    return result;
  }
}

function toTyped(values: Values, dtype: tf.DataType): Float32Array | Int32Array | Uint8Array {
  if (dtype === 'float32')
    return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
  if (dtype === 'int32') return values instanceof Int32Array ? values : Int32Array.from(values as ArrayLike<number>);
  return values instanceof Uint8Array ? values : Uint8Array.from(values as ArrayLike<number>);
}

export { MULTI_OUTPUT, NATIVE_KERNELS };
