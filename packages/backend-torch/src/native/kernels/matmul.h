// Matrix products: tfjs's BatchMatMul, and y + u bᵀ for LoRA (AnnealAddProduct), with the
// precision policy of product() (bf16 autocast, bf16 activations, GEMM padding).
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

#include "fewrow.h"

int64_t gemmPad(int64_t d) { return (!g_pad_gemm || d < 1024 || d % 8 == 0) ? d : (d + 63) / 64 * 64; }

// t [..., r0, c0] as dtype [..., r, c], zeros in the padding (one copy, the cast included).
at::Tensor padCast(const at::Tensor& t, int64_t r, int64_t c, at::ScalarType dtype) {
  int64_t r0 = t.size(-2), c0 = t.size(-1);
  if (r == r0 && c == c0) return t.to(dtype);
  auto sizes = t.sizes().vec();
  sizes[sizes.size() - 2] = r;
  sizes.back() = c;
  auto out = at::empty(sizes, t.options().dtype(dtype));
  out.narrow(-2, 0, r0).narrow(-1, 0, c0).copy_(t);
  if (c > c0) out.narrow(-1, c0, c - c0).zero_();
  if (r > r0) out.narrow(-2, r0, r - r0).narrow(-1, 0, c0).zero_();
  return out;
}

// x [M, K] @ y [K, N]: the few-row kernels of fewrow.h for 1 to 16 rows (decoding multiplies one
// row per sequence by every weight, once per token), else one BLAS call. Without AVX2, one or
// two rows are matrix-vector products: OpenBLAS's GEMM with M = 1 streams the weight at a quarter
// of the rate its GEMV does (GPT-2's tied head, [1, 768] by [768, 50257]: 29.9 ms as mm, 8.4 ms
// as mv, in PyTorch on the same OpenBLAS; 5.4 ms in fewrow.h on 2 threads).
at::Tensor plainProduct(const at::Tensor& x, const at::Tensor& y) {
  if (auto few = fewRowsProduct(x, y); few.defined()) return few;
  bool cpuFloat = !x.is_cuda() && x.scalar_type() == at::kFloat && y.scalar_type() == at::kFloat;
  if (cpuFloat && x.size(0) == 1) return at::mv(y.t(), x[0]).unsqueeze(0);  // [N, K] · [K] -> [N]
  if (cpuFloat && x.size(0) == 2) return at::stack({at::mv(y.t(), x[0]), at::mv(y.t(), x[1])});  // (still faster than GEMM)
  return at::mm(x, y);
}

// A float matrix product. Under bf16 autocast the inputs are bfloat16 and the sum is
// accumulated in float32, as cuBLAS does for torch.autocast; on cpu the inputs are rounded
// to bfloat16 and multiplied in float32 (the same numbers, not faster), because CPU
// builds without oneDNN accumulate bfloat16 products in bfloat16 (errors of ~10%). The
// result is bfloat16, as torch.autocast returns it: what later ops save for backward is
// half the size of float32 (norms, softmax and the loss widen it again). With GEMM padding,
// large unaligned dimensions are padded with zeros and the result narrowed back (exact).
at::Tensor product(const at::Tensor& x, const at::Tensor& y) {
  if ((g_autocast_bf16 || g_precision_bf16) && isFloat(x) && isFloat(y)) {
    int64_t M = x.size(-2), K = x.size(-1), N = y.size(-1);
    int64_t Mp = gemmPad(M), Kp = gemmPad(K), Np = gemmPad(N);
    bool pad = Mp != M || Kp != K || Np != N;
    at::ScalarType dt = x.is_cuda() ? at::kBFloat16 : at::kFloat;
    auto in = [&](const at::Tensor& t, int64_t r, int64_t c) {
      auto rounded = x.is_cuda() ? t : t.to(at::kBFloat16);  // cpu: bf16-rounded, multiplied in float32
      return pad ? padCast(rounded, r, c, dt) : rounded.to(dt);
    };
    auto out = at::matmul(in(x, Mp, Kp), in(y, Kp, Np));
    if (pad) out = out.narrow(-2, 0, M).narrow(-1, 0, N);
    return out.to(at::kBFloat16).contiguous();
  }
  // A product of matrices (tfjs hands them over as rank 2, or rank 3 with a batch of one) is
  // one BLAS call, and at::mm passes the transposes to BLAS instead of copying (as nn.Linear does).
  if (x.dim() == 2 && y.dim() == 2) return plainProduct(x, y);
  if (x.dim() == 3 && y.dim() == 3 && x.size(0) == 1 && y.size(0) == 1) return plainProduct(x[0], y[0]).unsqueeze(0);
  return at::matmul(x, y);
}

Outputs batchMatMul(const Inputs& in, const Attrs& a) {
  at::Tensor x = a.flag("transposeA") ? in.at(0).transpose(-2, -1) : in.at(0);
  at::Tensor y = a.flag("transposeB") ? in.at(1).transpose(-2, -1) : in.at(1);
  return {product(x, y)};
}

// y + u bᵀ with the sum inside the product (addmm: cuBLAS adds into C), for LoRA's term on
// its base projection: one small GEMM, no separate pass over [N, out]. Under bf16 autocast
// or precision the sum is bfloat16, as peft's base(x) + lora_B(lora_A(x)) under torch.autocast.
Outputs addProduct(const Inputs& in, const Attrs&) {  // inputs y [N, out], u [N, r], b [out, r] -> y + u bᵀ
  auto y = in.at(0), u = in.at(1), b = in.at(2);
  if (g_autocast_bf16 || g_precision_bf16) {
    y = y.to(at::kBFloat16);
    u = u.to(at::kBFloat16);
    b = b.to(at::kBFloat16);
    if (!y.is_cuda()) return {at::add(y, product(u, b.t()))};  // cpu: bf16-rounded inputs, float32 products (see product)
  }
  return {at::addmm(y, u, b.t())};
}

const KernelEntry kMatmulKernels[] = {
    {"BatchMatMul", batchMatMul},
    {"AnnealAddProduct", addProduct},
};
