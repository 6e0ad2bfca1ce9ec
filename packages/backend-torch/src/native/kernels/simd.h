// What the hand-written CPU kernels (fewrow.h, quant.h) share: the x86 SIMD intrinsics, a
// horizontal sum, and whether this CPU has AVX2 and FMA (checked once, at load).
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ANNEAL_X86 1

// The sum of a register's 8 floats.
__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static bool hasAvx2() {
  __builtin_cpu_init();  // a static initializer may run before the compiler's own CPU detection
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static const bool kHasAvx2 = hasAvx2();
#endif
