// A projection whose weight is stored in 4 or 8 bits, as bitsandbytes' Linear4bit and
// Linear8bitLt: it takes the float32 layer's place in model.layers (the model then holds no
// float32 copy of the weight). The weight is kept in Linear layout [out, in] (GPT-2's Conv1D
// transposed, as transformers does for bitsandbytes) and dequantized when the layer runs, in
// the forward pass and again in the backward pass (which needs only dL/dx: the weight is
// frozen), so at most one layer's f32 weight exists at a time.
import * as tf from '@tensorflow/tfjs-core';
import { hasAnnealKernel, runAnnealKernel } from '@anneal/core';
import type { Layout, ProjectionLayer, ProjectionRole } from '@anneal/modeling';
import { blockScales, dequantize4bit, storedBytes4bit, type Quantized4bit } from './blockwise.js';
import { FP4_CODE, NF4_CODE } from './codebooks.js';
import { dequantizeInt8Rows, storedBytesInt8, type QuantizedInt8 } from './int8.js';
import type { QuantizationConfig } from './quantize-model.js';

/** A quantized weight [rows, cols] = [out, in]. */
export type StoredWeight = ({ kind: '4bit'; q: Quantized4bit } | { kind: 'int8'; q: QuantizedInt8 }) & {
  rows: number;
  cols: number;
  config: QuantizationConfig;
};

/** On a backend with the dequantization kernels: the codes live there (the host copy is dropped). */
interface DeviceCodes {
  codes: tf.Tensor;
  scales: tf.Tensor;
  book?: tf.Tensor;
}

/**
 * Dequantizes on the host into one scratch buffer per weight size, reused by every
 * dequantization: a fresh array each time would leave ~8 bytes per parameter per step to the
 * garbage collector. Safe because each dequantized tensor is disposed before the next is made.
 */
export class ScratchBuffers {
  private readonly buffers = new Map<number, Float32Array<ArrayBuffer>>();
  get(n: number): Float32Array<ArrayBuffer> {
    return this.buffers.get(n) ?? this.buffers.set(n, new Float32Array(n)).get(n)!;
  }
}

export class QuantLinear implements ProjectionLayer {
  readonly kind = 'projection';
  readonly type: string;
  readonly inDim: number;
  readonly outDim: number;
  private device?: DeviceCodes;
  /** The weight [out, in] in float32, made on each call. */
  private readonly weight: () => tf.Tensor;
  private readonly project: (x: tf.Tensor) => tf.Tensor;

  constructor(
    readonly name: string,
    private stored: StoredWeight,
    readonly bias: tf.Variable | undefined,
    /** How the float32 layer stored its weight (kept so adapters and files see the model's own layout). */
    readonly layout: Layout,
    readonly role: ProjectionRole,
    scratch: ScratchBuffers,
  ) {
    this.type = stored.kind === 'int8' ? 'Linear8bitLt' : 'Linear4bit';
    [this.outDim, this.inDim] = [stored.rows, stored.cols];
    this.weight = hasAnnealKernel(stored.kind === 'int8' ? 'AnnealDequantInt8' : 'AnnealDequant4bit')
      ? this.toDevice()
      : () => {
          const s = this.stored;
          const buf = scratch.get(s.rows * s.cols);
          return tf.tensor(s.kind === 'int8' ? dequantizeInt8Rows(s.q, buf) : dequantize4bit(s.q, buf), [
            s.rows,
            s.cols,
          ]);
        };
    // int8 on a backend with the fused kernel: few-row products (decoding) read the codes directly
    const d = this.device;
    const fused =
      stored.kind === 'int8' && d && hasAnnealKernel('AnnealInt8Linear')
        ? (x2d: tf.Tensor) =>
            runAnnealKernel(
              'AnnealInt8Linear',
              { x: x2d, codes: d.codes, scales: d.scales },
              { rows: this.outDim, cols: this.inDim },
            )[0]
        : undefined;
    this.project = quantizedProjection(this.weight, this.inDim, this.outDim, fused);
  }

  get config(): QuantizationConfig {
    return this.stored.config;
  }

  /** Bytes the quantized weight takes. */
  get storedBytes(): number {
    const s = this.stored;
    return s.kind === 'int8' ? storedBytesInt8(s.q) : storedBytes4bit(s.q);
  }

  forward(x: tf.Tensor): tf.Tensor {
    const y = this.project(x); // x W^T: [..., out]
    return this.bias ? tf.add(y, this.bias) : y;
  }

  variables(): Array<[string, tf.Variable]> {
    return this.bias ? [[`${this.name}.bias`, this.bias]] : [];
  }

  /** The weight in float32, laid out as the model's float32 layer stored it. */
  dequantized(): tf.Tensor {
    return tf.tidy(() => {
      // a copy: on the cpu backend the dequantized tensor aliases the shared scratch buffer
      const lin = tf.tensor(this.weight().dataSync().slice(), [this.outDim, this.inDim]); // [out, in]
      return this.layout === 'conv1d' ? tf.transpose(lin) : lin;
    });
  }

  /** The stored weight with its codes on the host (read back from the device when they live there). */
  async onHost(): Promise<StoredWeight> {
    const s = this.stored;
    if (!this.device) return s;
    const bytes = new Uint8Array(((await this.device.codes.data()) as Int32Array).buffer);
    if (s.kind === 'int8') return { ...s, q: { ...s.q, codes: new Int8Array(bytes.buffer, 0, s.rows * s.cols) } };
    return { ...s, q: { ...s.q, packed: bytes.subarray(0, Math.ceil(s.q.n / 2)) } };
  }

  dispose(): void {
    const d = this.device;
    if (d) tf.dispose([d.codes, d.scales, ...(d.book ? [d.book] : [])]);
  }

  /**
   * Moves the codes and scales to the backend (the torch backend: CPU or GPU memory) and
   * returns the dequantization there, one kernel per use, bit-identical to the host's
   * (code x scale, one float32 rounding). The host copy of the codes is dropped; 4-bit block
   * scales are held dequantized (float32: +0.047 bytes per parameter with double quantization).
   */
  private toDevice(): () => tf.Tensor {
    const s = this.stored;
    const { rows, cols } = s;
    if (s.kind === 'int8') {
      const d = { codes: words(s.q.codes), scales: tf.keep(tf.tensor1d(s.q.scales)) };
      this.device = d;
      this.stored = { ...s, q: { ...s.q, codes: new Int8Array(0) } };
      return () => runAnnealKernel('AnnealDequantInt8', { codes: d.codes, scales: d.scales }, { rows, cols })[0];
    }
    // the code book as a byte -> (high nibble's value, low nibble's value) table, built once here
    const code = s.q.type === 'nf4' ? NF4_CODE : FP4_CODE;
    const pairs = Float32Array.from({ length: 512 }, (_, i) => code[i % 2 === 0 ? i >> 5 : (i >> 1) & 15]);
    const d = {
      codes: words(s.q.packed),
      scales: tf.keep(tf.tensor1d(blockScales(s.q))),
      book: tf.keep(tf.tensor2d(pairs, [256, 2])),
    };
    this.device = d;
    this.stored = { ...s, q: { ...s.q, packed: new Uint8Array(0) } };
    const blockSize = s.q.blockSize;
    return () => runAnnealKernel('AnnealDequant4bit', { ...d, book: d.book! }, { rows, cols, blockSize })[0];
  }
}

/** Bytes as int32 words (zero-padded), to carry uint8/int8 data in a tfjs tensor. */
function words(bytes: Uint8Array | Int8Array): tf.Tensor {
  const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  padded.set(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return tf.keep(tf.tensor1d(new Int32Array(padded.buffer), 'int32'));
}

/** Rows of x up to which the fused int8 product beats dequantizing the weight for one GEMM. */
const FUSED_MAX_ROWS = 16;

/**
 * x [..., in] -> x W^T with W [out, in] dequantized on use (or, for at most FUSED_MAX_ROWS rows,
 * the fused int8 product); dL/dx alone flows back, through the dequantized weight.
 */
function quantizedProjection(
  weight: () => tf.Tensor,
  inDim: number,
  outDim: number,
  fused?: (x2d: tf.Tensor) => tf.Tensor,
): (x: tf.Tensor) => tf.Tensor {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const x = args[0] as tf.Tensor;
    const x2d = tf.reshape(x, [-1, inDim]);
    let y: tf.Tensor; // [N, out]
    if (fused && x2d.shape[0] <= FUSED_MAX_ROWS) y = fused(x2d);
    else {
      const w = weight();
      y = tf.matMul(x2d, w, false, true);
      w.dispose();
    }
    return {
      value: tf.reshape(y, [...x.shape.slice(0, -1), outDim]),
      gradFunc: (dy: tf.Tensor) => {
        const w2 = weight();
        const dx = tf.matMul(tf.reshape(dy, [-1, outDim]), w2); // [N, in]
        w2.dispose();
        return tf.reshape(dx, x.shape);
      },
    };
  });
  return (x) => f(x);
}
