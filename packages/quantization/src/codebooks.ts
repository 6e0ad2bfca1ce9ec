// The 4-bit code books of bitsandbytes (Dettmers et al. 2023, "QLoRA"), by code index.
//
// NF4: quantiles of N(0, 1) normalised to [-1, 1], with an exact zero: 8 positive values
// from norm.ppf(linspace(0.9677083, 0.5, 9)[:-1]), 7 negative from
// -norm.ppf(linspace(0.9677083, 0.5, 8)[:-1]), and 0, sorted and divided by the largest
// (bitsandbytes' create_normal_map); these are the float32 values its kernels use.
export const NF4_CODE = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

// FP4 (e2m1 as bitsandbytes defines it): bit 3 is the sign; the low three bits index the
// magnitudes {0, 1/192, 2/3, 1, 1/3, 1/2, 1/6, 1/4} (its dDequantizeFP4Tree).
const FP4_MAGNITUDE = [0, 0.005208333333, 0.6666666667, 1, 0.3333333333, 0.5, 0.1666666667, 0.25];
export const FP4_CODE = Float32Array.from({ length: 16 }, (_, i) => (i & 8 ? -1 : 1) * FP4_MAGNITUDE[i & 7]);

/** For each code value in ascending order, its index; and the midpoints between neighbours. */
export function nearestTable(code: Float32Array): { order: Int32Array; sorted: Float32Array; mids: Float32Array } {
  // -0 and +0 in FP4 are one value: keep the first index of each distinct value.
  const idx = Array.from(code.keys())
    .sort((a, b) => code[a] - code[b] || a - b)
    .filter((i, k, all) => k === 0 || code[i] !== code[all[k - 1]]);
  const sorted = Float32Array.from(idx, (i) => code[i]);
  const mids = Float32Array.from({ length: sorted.length - 1 }, (_, k) => (sorted[k] + sorted[k + 1]) / 2);
  return { order: Int32Array.from(idx), sorted, mids };
}

/**
 * bitsandbytes' 8-bit dynamic map (create_dynamic_map(signed=True, max_exponent_bits=7,
 * total_bits=8); Dettmers 2016, "8-Bit Approximations for Parallelism in Deep Learning"): for
 * exponents 10^-6 … 10^0, the midpoints of a linear grid on [0.1, 1] with 2^i + 1 points,
 * both signs, plus 0 and 1; 256 values ascending. Double quantization stores block scales in it.
 */
export function dynamicMap(): Float32Array {
  const maxExponentBits = 7;
  const nonSignBits = 7; // total_bits - 1
  const data: number[] = [];
  // computed in double, rounded once: within one float32 ulp of bitsandbytes' values (its
  // torch.linspace rounds on the way); files carry their map, so reading never depends on it
  const linspace = (n: number) => Array.from({ length: n }, (_, k) => 0.1 + (0.9 * k) / (n - 1));
  for (let i = 0; i < maxExponentBits; i++) {
    const b = linspace(2 ** (i + nonSignBits - maxExponentBits) + 1);
    const means = b.slice(1).map((v, k) => (b[k] + v) / 2);
    const scale = 10 ** (-(maxExponentBits - 1) + i);
    for (const m of means) data.push(scale * m);
    for (const m of means) data.push(-scale * m);
  }
  // additional_items = 2^(non_sign_bits - max_exponent_bits) - 1 = 0: none
  data.push(0, 1);
  if (data.length !== 256) throw new Error(`dynamic map has ${data.length} values, expected 256`);
  return Float32Array.from(data.sort((a, b) => a - b));
}
