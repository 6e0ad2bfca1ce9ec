// Dequantization of 4-bit (NF4/FP4) and int8 weights on the device (@anneal/quantization's
// QuantLinear), bit-identical to the host's.
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

#include "simd.h"

Outputs dequant4bit(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs packed 4-bit codes (bytes carried in int32), byte table [256, 2] (a byte's two code values, high nibble first), block absmax [blocks] -> [rows, cols]
  int64_t rows = a.i64("rows"), cols = a.i64("cols"), n = rows * cols, block = a.i64("blockSize");
  const auto& pairs = in.at(1);
  auto bytes = in.at(0).contiguous().view(at::kByte).slice(0, 0, (n + 1) / 2).to(at::kInt);  // int32 indices: half the bytes of int64
  auto vals = pairs.index_select(0, bytes).view({-1}).slice(0, 0, n);  // [n]
  int64_t full = n / block;  // whole blocks scale as one broadcast; a last partial block after
  if (full > 0) vals.slice(0, 0, full * block).view({full, block}).mul_(in.at(2).slice(0, 0, full).unsqueeze(1));
  if (n % block) vals.slice(0, full * block, n).mul_(in.at(2)[full]);
  return {vals.view({rows, cols})};
}

Outputs dequantInt8(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs int8 codes (bytes carried in int32), one scale per row [rows] -> [rows, cols]
  int64_t rows = a.i64("rows"), cols = a.i64("cols");
  auto codes = in.at(0).contiguous().view(at::kChar).slice(0, 0, rows * cols).to(at::kFloat).view({rows, cols});
  return {at::mul(codes, in.at(1).unsqueeze(1))};
}

// Σ_i w[i] · x_r[i] for n ≤ 8 rows x_r (stride ldx) against one int8 row w of length k.
static void int8DotsScalar(const int8_t* w, const float* x, int64_t n, int64_t k, int64_t ldx, float* out) {
  for (int64_t r = 0; r < n; r++) {
    float acc = 0;
    for (int64_t i = 0; i < k; i++) acc += static_cast<float>(w[i]) * x[r * ldx + i];
    out[r] = acc;
  }
}

#ifdef ANNEAL_X86
// The same with AVX2/FMA for N rows (N a compile-time constant, so the accumulators stay in
// registers): each 16 codes widened to float32 once and used for every row. Up to 4 rows, two
// accumulators per row so consecutive FMAs do not wait on each other; from 5 rows one (the rows
// give the FMAs their independence, and two per row would not fit the 16 vector registers).
template <int N>
__attribute__((target("avx2,fma"))) static void int8DotsAvx2(const int8_t* w, const float* x, int64_t k, int64_t ldx,
                                                              float* out) {
  constexpr bool split = N <= 4;
  __m256 a0[N], a1[split ? N : 1];
  #pragma GCC unroll 16
  for (int r = 0; r < N; r++) a0[r] = a1[split ? r : 0] = _mm256_setzero_ps();  // (a1 unused unless split)
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i));
    __m256 w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
    __m256 w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8)));
    #pragma GCC unroll 16
    for (int r = 0; r < N; r++) {
      a0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + r * ldx + i), a0[r]);
      if constexpr (split)
        a1[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + r * ldx + i + 8), a1[r]);
      else
        a0[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + r * ldx + i + 8), a0[r]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < N; r++) {
    float total;
    if constexpr (split)
      total = hsum256(_mm256_add_ps(a0[r], a1[r]));
    else
      total = hsum256(a0[r]);
    for (int64_t j = i; j < k; j++) total += static_cast<float>(w[j]) * x[r * ldx + j];
    out[r] = total;
  }
}

static void int8DotsAvx2(const int8_t* w, const float* x, int64_t n, int64_t k, int64_t ldx, float* out) {
  switch (n) {
    case 1: return int8DotsAvx2<1>(w, x, k, ldx, out);
    case 2: return int8DotsAvx2<2>(w, x, k, ldx, out);
    case 3: return int8DotsAvx2<3>(w, x, k, ldx, out);
    case 4: return int8DotsAvx2<4>(w, x, k, ldx, out);
    case 5: return int8DotsAvx2<5>(w, x, k, ldx, out);
    case 6: return int8DotsAvx2<6>(w, x, k, ldx, out);
    case 7: return int8DotsAvx2<7>(w, x, k, ldx, out);
    default: return int8DotsAvx2<8>(w, x, k, ldx, out);
  }
}
#endif

// y = x Wᵀ for an int8 weight W [out, in] (codes × a float32 scale per row) and x [N, in]:
// on the CPU the codes are widened in registers and never become a float32 matrix, so a
// decoding step reads one byte per weight instead of four (batch-1 matrix–vector products
// are bound by the bytes they read); rows of W split across threads, x in groups of 8 rows.
// On CUDA (or for other dtypes): the dequantized weight and one product.
Outputs int8Linear(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs x [N, in], int8 codes (bytes carried in int32), scales [out] -> [N, out]
  int64_t rows = a.i64("rows"), cols = a.i64("cols");
  const auto& x0 = in.at(0);
  auto codes = in.at(1).contiguous().view(at::kChar).slice(0, 0, rows * cols);
  const auto& scales = in.at(2);
  if (x0.is_cuda() || x0.scalar_type() != at::kFloat)
    return {at::matmul(x0, at::mul(codes.to(x0.scalar_type()).view({rows, cols}), scales.unsqueeze(1)).t())};
  auto x = x0.contiguous();
  auto sc = scales.contiguous();
  int64_t n = x.size(0);
  auto y = at::empty({n, rows}, x.options());
  const int8_t* w = codes.data_ptr<int8_t>();
  const float* xp = x.data_ptr<float>();
  const float* sp = sc.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    float dots[8];
    for (int64_t o = begin; o < end; o++)
      for (int64_t r0 = 0; r0 < n; r0 += 8) {
        int64_t m = std::min<int64_t>(8, n - r0);
#ifdef ANNEAL_X86
        if (kHasAvx2)
          int8DotsAvx2(w + o * cols, xp + r0 * cols, m, cols, cols, dots);
        else
#endif
          int8DotsScalar(w + o * cols, xp + r0 * cols, m, cols, cols, dots);
        for (int64_t r = 0; r < m; r++) yp[(r0 + r) * rows + o] = dots[r] * sp[o];
      }
  });
  return {y};
}

const KernelEntry kQuantKernels[] = {
    {"AnnealInt8Linear", int8Linear},
    {"AnnealDequant4bit", dequant4bit},
    {"AnnealDequantInt8", dequantInt8},
};
