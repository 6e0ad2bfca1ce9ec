// Blockwise 4-bit quantization as bitsandbytes' quantize_4bit: each block of `blockSize`
// values is scaled by its absolute maximum into [-1, 1] and each value stored as the index
// of the nearest code value (two per byte, the first in the high nibble). With double
// quantization (bitsandbytes' compress_statistics) the float32 absmax of every block is
// itself quantized: its mean is subtracted, and blocks of 256 are stored as 8-bit indices
// into bitsandbytes' dynamic map, each block with one float32 absmax.
import { FP4_CODE, NF4_CODE, dynamicMap, nearestTable } from './codebooks.js';

export type FourBitType = 'nf4' | 'fp4';

export interface Quantized4bit {
  type: FourBitType;
  /** Number of values. */
  n: number;
  blockSize: number;
  /** ceil(n / 2) bytes: two codes per byte, high nibble first. */
  packed: Uint8Array;
  /** The per-block scales: float32, or (double quantization) 8-bit codes of absmax - offset. */
  absmax: Float32Array | NestedScales;
}

/** Block scales stored in 8 bits: value = code[codes[i]] * scales[i / blockSize] + offset. */
export interface NestedScales {
  codes: Uint8Array;
  /** 256 values: bitsandbytes' dynamic map (or the one a checkpoint stores). */
  code: Float32Array;
  scales: Float32Array;
  offset: number;
  blockSize: number;
}

const TABLES = { nf4: nearestTable(NF4_CODE), fp4: nearestTable(FP4_CODE) };
const CODES = { nf4: NF4_CODE, fp4: FP4_CODE };

function nearestIndex(t: ReturnType<typeof nearestTable>, v: number): number {
  let lo = 0;
  let hi = t.mids.length; // binary search over the midpoints
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (v > t.mids[m]) lo = m + 1;
    else hi = m;
  }
  return t.order[lo];
}

export function quantize4bit(
  data: Float32Array,
  o: { type?: FourBitType; blockSize?: number; doubleQuant?: boolean; doubleQuantBlockSize?: number } = {},
): Quantized4bit {
  const type = o.type ?? 'nf4';
  const blockSize = o.blockSize ?? 64;
  if (!Number.isInteger(blockSize) || blockSize < 2 || blockSize % 2)
    throw new RangeError(`blockSize ${blockSize}: an even integer >= 2 is needed`);
  const table = TABLES[type];
  const n = data.length;
  const blocks = Math.ceil(n / blockSize);
  const absmax = new Float32Array(blocks);
  const packed = new Uint8Array(Math.ceil(n / 2));
  for (let b = 0; b < blocks; b++) {
    const end = Math.min(n, (b + 1) * blockSize);
    let m = 0;
    for (let i = b * blockSize; i < end; i++) m = Math.max(m, Math.abs(data[i]));
    absmax[b] = m;
    const inv = m > 0 ? 1 / m : 0;
    for (let i = b * blockSize; i < end; i++) {
      const q = nearestIndex(table, data[i] * inv);
      packed[i >> 1] |= i % 2 === 0 ? q << 4 : q;
    }
  }
  return {
    type,
    n,
    blockSize,
    packed,
    absmax: o.doubleQuant ? quantizeScales(absmax, o.doubleQuantBlockSize ?? 256) : absmax,
  };
}

const DYNAMIC = dynamicMap();
const DYNAMIC_TABLE = nearestTable(DYNAMIC);

function quantizeScales(absmax: Float32Array, blockSize: number): NestedScales {
  const offset = Math.fround(absmax.reduce((a, b) => a + b, 0) / Math.max(1, absmax.length));
  const codes = new Uint8Array(absmax.length);
  const scales = new Float32Array(Math.ceil(absmax.length / blockSize));
  for (let b = 0; b < scales.length; b++) {
    const end = Math.min(absmax.length, (b + 1) * blockSize);
    let m = 0;
    for (let i = b * blockSize; i < end; i++) m = Math.max(m, Math.abs(absmax[i] - offset));
    scales[b] = m;
    const inv = m > 0 ? 1 / m : 0;
    for (let i = b * blockSize; i < end; i++) codes[i] = nearestIndex(DYNAMIC_TABLE, (absmax[i] - offset) * inv);
  }
  return { codes, code: DYNAMIC, scales, offset, blockSize };
}

/** The float32 absmax of every block (undoing double quantization). */
export function blockScales(q: Quantized4bit): Float32Array {
  const a = q.absmax;
  if (a instanceof Float32Array) return a;
  return Float32Array.from(a.codes, (c, i) => a.code[c] * a.scales[Math.floor(i / a.blockSize)] + a.offset);
}

/** The values back; into `out` when given (a scratch buffer of at least q.n values). */
export function dequantize4bit(
  q: Quantized4bit,
  out: Float32Array<ArrayBuffer> = new Float32Array(q.n),
): Float32Array<ArrayBuffer> {
  const code = CODES[q.type];
  const scales = blockScales(q);
  for (let i = 0; i < q.n; i++) {
    const byte = q.packed[i >> 1];
    out[i] = code[i % 2 === 0 ? byte >> 4 : byte & 15] * scales[Math.floor(i / q.blockSize)];
  }
  return out.length === q.n ? out : new Float32Array(out.buffer, out.byteOffset, q.n);
}

/** Bytes stored: the packed codes and the scales (with double quantization: 8-bit codes, their scales and offset). */
export function storedBytes4bit(q: Quantized4bit): number {
  const a = q.absmax;
  return (
    q.packed.byteLength + (a instanceof Float32Array ? a.byteLength : a.codes.byteLength + a.scales.byteLength + 4)
  );
}
