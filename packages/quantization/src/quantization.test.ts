// The code books against their published construction, round trips with error bounds, the
// mean error NF4 is known for on normal weights, and the bytes stored per parameter.
import { describe, expect, it } from 'vitest';
import { Rng } from '@anneal/core';
import {
  FP4_CODE,
  NF4_CODE,
  blockScales,
  dynamicMap,
  dequantize4bit,
  dequantizeInt8Rows,
  quantize4bit,
  quantizeInt8Rows,
  storedBytes4bit,
  storedBytesInt8,
} from './index.js';

/** Inverse of the standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
function normPpf(p: number): number {
  const a = [
    -3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1,
    2.506628277459239,
  ];
  const b = [
    -5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1,
  ];
  const c = [
    -7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    );
  }
  if (p > 1 - lo) return -normPpf(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
  );
}

const linspace = (a: number, b: number, n: number) => Array.from({ length: n }, (_, i) => a + ((b - a) * i) / (n - 1));

function normals(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from(
    { length: n },
    () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next()),
  ); // Box-Muller
}

const mae = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

describe('4-bit code books', () => {
  it("NF4 is bitsandbytes' create_normal_map: normal quantiles from 0.9677083, an exact zero, scaled to [-1, 1]", () => {
    const offset = 0.9677083;
    const pos = linspace(offset, 0.5, 9).slice(0, -1).map(normPpf);
    const neg = linspace(offset, 0.5, 8)
      .slice(0, -1)
      .map((p) => -normPpf(p));
    const values = [...pos, 0, ...neg].sort((x, y) => x - y);
    const max = Math.max(...values);
    values.forEach((v, i) => expect(Math.abs(v / max - NF4_CODE[i]), `code ${i}`).toBeLessThan(1e-6));
  });

  it('FP4 has a sign bit over eight magnitudes up to 1 (bitsandbytes: {0, 1/192, 2/3, 1, 1/3, 1/2, 1/6, 1/4})', () => {
    for (let i = 0; i < 8; i++) expect(FP4_CODE[i + 8]).toBe(-FP4_CODE[i]);
    expect(Array.from(FP4_CODE.slice(0, 8)).map((v) => Math.round(v * 192))).toEqual([0, 1, 128, 192, 64, 96, 32, 48]);
  });
});

describe('blockwise 4-bit quantization', () => {
  it('stores values that lie on the code book (times their block absmax) exactly, two per byte, high nibble first', () => {
    const data = Float32Array.from([...NF4_CODE].map((v) => v * 2.5));
    const q = quantize4bit(data, { type: 'nf4', blockSize: 16 });
    expect(q.packed.length).toBe(8);
    expect(q.packed[0]).toBe((0 << 4) | 1); // codes 0 and 1
    expect(Array.from(dequantize4bit(q))).toEqual(Array.from(data));
  });

  it('on N(0, 1) weights: every error within half a code gap of its block, NF4 more accurate than FP4 and than uniform 4-bit', () => {
    const w = normals(1 << 16, 3);
    const nf4 = quantize4bit(w, { type: 'nf4' });
    const back = dequantize4bit(nf4);
    const scales = blockScales(nf4);
    const halfGap = Math.max(...NF4_CODE.slice(1).map((v, i) => (v - NF4_CODE[i]) / 2));
    back.forEach((v, i) =>
      expect(Math.abs(v - w[i])).toBeLessThanOrEqual(halfGap * scales[Math.floor(i / 64)] * (1 + 1e-6)),
    );
    const errNf4 = mae(w, back);
    const errFp4 = mae(w, dequantize4bit(quantize4bit(w, { type: 'fp4' })));
    // uniform 4-bit absmax (int4: 15 levels in [-1, 1]) on the same blocks, for comparison
    const uniform = Float32Array.from(
      w,
      (v, i) => (Math.round((v / scales[Math.floor(i / 64)]) * 7) / 7) * scales[Math.floor(i / 64)],
    );
    const errInt4 = mae(w, uniform);
    expect(errNf4).toBeLessThan(errFp4);
    expect(errNf4).toBeLessThan(errInt4);
    // measured here: NF4 0.073, FP4 0.096, uniform int4 0.092 mean absolute error per N(0, 1) weight at block 64
    expect(errNf4).toBeGreaterThan(0.06);
    expect(errNf4).toBeLessThan(0.085);
  });

  it("the double-quantization map is bitsandbytes' create_dynamic_map: 127 magnitudes per sign over 7 decades, plus 0 and 1", () => {
    const m = dynamicMap();
    expect(m.length).toBe(256);
    for (let i = 1; i < 256; i++) expect(m[i]).toBeGreaterThan(m[i - 1]);
    expect(m[0]).toBeCloseTo(-0.99296875, 7); // 10^0 x mean of the last two of linspace(0.1, 1, 65)
    expect(m[255]).toBe(1);
    expect(m[127]).toBe(0);
    expect(m[128]).toBeCloseTo(0.55e-6, 12); // 10^-6 x mean of linspace(0.1, 1, 2)
    // decade 10^-(6-i) holds 2^i positive values
    for (let i = 0; i < 7; i++)
      expect(Array.from(m).filter((v) => v > 0 && v < 1 && v >= 0.1 * 10 ** (i - 6) && v < 10 ** (i - 6)).length).toBe(
        2 ** i,
      );
  });

  it('double quantization keeps the error (< 0.5% more) and stores at most 0.52 bytes per parameter', () => {
    const w = normals(1 << 18, 5);
    const plain = quantize4bit(w, { type: 'nf4' });
    const dq = quantize4bit(w, { type: 'nf4', doubleQuant: true });
    expect(mae(w, dequantize4bit(dq))).toBeLessThan(mae(w, dequantize4bit(plain)) * 1.005);
    expect(storedBytes4bit(plain) / w.length).toBeCloseTo(0.5 + 4 / 64, 6); // 4 bits + a float32 per 64
    expect(storedBytes4bit(dq) / w.length).toBeLessThanOrEqual(0.52); // 4 bits + 8 bits per 64 + a float32 per 64 x 256
    expect(() => quantize4bit(w, { blockSize: 63 })).toThrow(/blockSize 63/);
  });
});

describe('int8 per row', () => {
  it('round-trips within half a step of each row and stores a byte per value plus a scale per row', () => {
    const w = normals(64 * 48, 9).map((v, i) => v * (1 + Math.floor(i / 48))); // rows of growing scale
    const q = quantizeInt8Rows(w, 64, 48);
    const back = dequantizeInt8Rows(q);
    back.forEach((v, i) => expect(Math.abs(v - w[i])).toBeLessThanOrEqual(q.scales[Math.floor(i / 48)] / 2 + 1e-6));
    expect(storedBytesInt8(q)).toBe(64 * 48 + 64 * 4);
    expect(() => quantizeInt8Rows(w, 10, 10)).toThrow(/are not 10 x 10/);
  });
});
