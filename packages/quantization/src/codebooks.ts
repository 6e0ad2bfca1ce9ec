// The 4-bit code books of bitsandbytes (Dettmers et al. 2023, "QLoRA"), by code index.
//
// NF4: quantiles of N(0, 1) normalised to [-1, 1], with an exact zero: 8 positive values
// from norm.ppf(linspace(0.9677083, 0.5, 9)[:-1]), 7 negative from
// -norm.ppf(linspace(0.9677083, 0.5, 8)[:-1]), and 0, sorted and divided by the largest
// (bitsandbytes' create_normal_map); these are the float32 values its kernels use.
export const NF4_CODE = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

// FP4 (e2m1 as bitsandbytes defines it): bit 3 is the sign; the low three bits index the
// magnitudes {0, 1/192, 2/3, 1, 1/3, 1/2, 1/6, 1/4} (its dDequantizeFP4Tree).
const FP4_MAGNITUDE = [0, 0.005208333333, 0.6666666667, 1, 0.3333333333, 0.5, 0.1666666667, 0.25];
export const FP4_CODE = Float32Array.from({ length: 16 }, (_, i) => (i & 8 ? -1 : 1) * FP4_MAGNITUDE[i & 7]);

/** For each code value in ascending order, its index; and the midpoints between neighbours. */
export function nearestTable(code: Float32Array): { order: Int32Array; sorted: Float32Array; mids: Float32Array } {
  // -0 and +0 in FP4 are one value: keep the first index of each distinct value.
  const idx = Array.from(code.keys()).sort((a, b) => code[a] - code[b] || a - b).filter((i, k, all) => k === 0 || code[i] !== code[all[k - 1]]);
  const sorted = Float32Array.from(idx, (i) => code[i]);
  const mids = Float32Array.from({ length: sorted.length - 1 }, (_, k) => (sorted[k] + sorted[k + 1]) / 2);
  return { order: Int32Array.from(idx), sorted, mids };
}
