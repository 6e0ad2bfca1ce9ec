// Float32 products of a few rows by a weight (1 to 16 rows: a decoding step's batch), in place
// of OpenBLAS's GEMM and GEMV. Such a product reads every weight once per token and is bound by
// how fast the weight streams in from memory; OpenBLAS's GEMM packs its panels for large M and
// on this shape reads the weight at 7–9 GB/s, its GEMV at ~20, on one thread (ATen's threads
// leave BLAS to itself). These kernels read it once, in its stored order, on every intra-op thread: x Wᵀ (nn.Linear's [out, in], and a tied LM head)
// as dot products along contiguous rows, 4 rows of x by 3 rows of W in 12 registers; x W
// (GPT-2's Conv1D [in, out]) as panels of up to 1024 columns accumulated 8 rows of W at a time.
// Measured at 8 rows on 2 cores, weights from memory: [768, 3072] 0.60 ms (x Wᵀ) and 0.70 ms
// (x W) against OpenBLAS's 1.47 and 1.10 ms (docs/benchmarks.md, "Generation").
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

#include "simd.h"

constexpr int64_t kFewRowsMin = 1, kFewRowsMax = 16;

#ifdef ANNEAL_X86
// y[m, o] = Σ_k x[m, k] w[o, k] for MB rows of x (stride K) and O rows of w (stride K), into
// y (stride ldy); the accumulators stay in registers (MB · O ≤ 12 of the 16).
template <int MB, int O>
__attribute__((target("avx2,fma"))) static void dotTile(const float* x, const float* w, float* y, int64_t K,
                                                        int64_t ldy) {
  __m256 acc[MB][O];
  #pragma GCC unroll 16
  for (int m = 0; m < MB; m++)
    #pragma GCC unroll 16
    for (int o = 0; o < O; o++) acc[m][o] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[O];
    #pragma GCC unroll 16
    for (int o = 0; o < O; o++) wv[o] = _mm256_loadu_ps(w + o * K + k);
    #pragma GCC unroll 16
    for (int m = 0; m < MB; m++) {
      __m256 xv = _mm256_loadu_ps(x + m * K + k);
      #pragma GCC unroll 16
      for (int o = 0; o < O; o++) acc[m][o] = _mm256_fmadd_ps(xv, wv[o], acc[m][o]);
    }
  }
  #pragma GCC unroll 16
  for (int m = 0; m < MB; m++)
    #pragma GCC unroll 16
    for (int o = 0; o < O; o++) {
      float s = hsum256(acc[m][o]);
      for (int64_t j = k; j < K; j++) s += x[m * K + j] * w[o * K + j];
      y[m * ldy + o] = s;
    }
}

template <int O>
static void dotTileRows(int64_t mb, const float* x, const float* w, float* y, int64_t K, int64_t ldy) {
  switch (mb) {
    case 1: return dotTile<1, O>(x, w, y, K, ldy);
    case 2: return dotTile<2, O>(x, w, y, K, ldy);
    case 3: return dotTile<3, O>(x, w, y, K, ldy);
    default: return dotTile<4, O>(x, w, y, K, ldy);
  }
}

// x [M, K] · w [N, K]ᵀ -> [M, N]: threads split W's rows in groups of 3.
static at::Tensor fewRowsTimesTransposed(const at::Tensor& x, const at::Tensor& w) {
  int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  auto y = at::empty({M, N}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, (N + 2) / 3, std::max<int64_t>(1, 16384 / std::max<int64_t>(K, 1)), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++) {
      int64_t o0 = 3 * t, o = std::min<int64_t>(3, N - o0);
      for (int64_t m0 = 0; m0 < M; m0 += 4) {
        int64_t mb = std::min<int64_t>(4, M - m0);
        const float* xs = xp + m0 * K;
        float* ys = yp + m0 * N + o0;
        if (o == 3)
          dotTileRows<3>(mb, xs, wp + o0 * K, ys, K, N);
        else if (o == 2)
          dotTileRows<2>(mb, xs, wp + o0 * K, ys, K, N);
        else
          dotTileRows<1>(mb, xs, wp + o0 * K, ys, K, N);
      }
    }
  });
  return y;
}

// acc[m, c] += Σ_{j<KR} x[m, k + j] w[k + j, p0 + c] for the rows k in [k0, k1) (a multiple of
// KR), c < pw: KR rows of w per pass over the panel, so each accumulator is loaded and stored
// once for KR FMAs.
template <int KR>
__attribute__((target("avx2,fma"))) static void panelRows(const float* x, const float* w, float* acc, int64_t M,
                                                          int64_t K, int64_t N, int64_t p0, int64_t pw, int64_t k0,
                                                          int64_t k1) {
  int64_t pv = pw - pw % 8;
  for (int64_t k = k0; k < k1; k += KR) {
    const float* wk = w + k * N + p0;
    for (int64_t m = 0; m < M; m++) {
      __m256 b[KR];
      #pragma GCC unroll 16
      for (int j = 0; j < KR; j++) b[j] = _mm256_broadcast_ss(x + m * K + k + j);
      float* a = acc + m * pw;
      for (int64_t c = 0; c < pv; c += 8) {
        __m256 s = _mm256_loadu_ps(a + c);
        #pragma GCC unroll 16
        for (int j = 0; j < KR; j++) s = _mm256_fmadd_ps(b[j], _mm256_loadu_ps(wk + j * N + c), s);
        _mm256_storeu_ps(a + c, s);
      }
      for (int64_t c = pv; c < pw; c++)
        #pragma GCC unroll 16
        for (int j = 0; j < KR; j++) a[c] += x[m * K + k + j] * wk[j * N + c];
    }
  }
}

// x [M, K] · w [K, N] -> [M, N]: threads split the columns into panels of at most 1024, each
// accumulated in a buffer of M × 1024 floats that stays in the core's cache while W streams past.
static at::Tensor fewRowsTimes(const at::Tensor& x, const at::Tensor& w) {
  int64_t M = x.size(0), K = x.size(1), N = w.size(1);
  auto y = at::empty({M, N}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  int64_t most = std::clamp<int64_t>(6144 / M / 8 * 8, 64, 1024);  // M × most floats: 24 KB of the core's 32 KB L1
  int64_t panels = std::max<int64_t>({static_cast<int64_t>(at::get_num_threads()), (N + most - 1) / most, 1});
  int64_t width = std::max<int64_t>(8, ((N + panels - 1) / panels + 7) / 8 * 8);
  panels = (N + width - 1) / width;
  at::parallel_for(0, panels, 1, [&](int64_t b, int64_t e) {
    std::vector<float> acc(M * width);
    for (int64_t p = b; p < e; p++) {
      int64_t p0 = p * width, pw = std::min(width, N - p0);
      std::fill(acc.begin(), acc.begin() + M * pw, 0.0f);
      int64_t k8 = K - K % 8;
      panelRows<8>(xp, wp, acc.data(), M, K, N, p0, pw, 0, k8);
      panelRows<1>(xp, wp, acc.data(), M, K, N, p0, pw, k8, K);
      for (int64_t m = 0; m < M; m++) std::copy(acc.data() + m * pw, acc.data() + (m + 1) * pw, yp + m * N + p0);
    }
  });
  return y;
}
#endif

// x [M, K] @ y [K, N] through the kernels above when x has 1 to 16 rows, both are float32 on
// the CPU, and y is W or Wᵀ of a contiguous W; an undefined tensor otherwise (the caller
// takes BLAS, which also reports mismatched shapes).
at::Tensor fewRowsProduct(const at::Tensor& x, const at::Tensor& y) {
#ifdef ANNEAL_X86
  int64_t M = x.size(0);
  if (!kHasAvx2 || M < kFewRowsMin || M > kFewRowsMax || x.size(1) == 0 || y.size(1) == 0) return {};
  if (x.size(1) != y.size(0)) return {};  // at::mm raises the shape error
  if (x.is_cuda() || x.scalar_type() != at::kFloat || y.scalar_type() != at::kFloat) return {};
  if (y.t().is_contiguous()) return fewRowsTimesTransposed(x.contiguous(), y.t());
  if (y.is_contiguous()) return fewRowsTimes(x.contiguous(), y);
#endif
  return {};
}
