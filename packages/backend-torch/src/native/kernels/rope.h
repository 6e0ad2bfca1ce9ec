// Rotary position embedding (RoPE) and its backward.
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

// Rotary position embedding (RoPE, Su et al. 2021): x cos + rotate_half(x) sin with
// rotate_half(x) = [-x2, x1] over the halves of the last axis; the backward is the
// transposed rotation, dy cos + [z2, -z1] for z = dy sin. cos and sin stay float32.
Outputs rope(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs x [B, H, T, D], cos, sin [B|1, 1, T, D] -> y
  const auto &x = in.at(0), &cos = in.at(1), &sin = in.at(2);
  int64_t half = x.size(-1) / 2;
  auto rot = at::cat({at::neg(x.narrow(-1, half, half)), x.narrow(-1, 0, half)}, -1);
  return {at::add(at::mul(x, cos), at::mul(rot, sin)).to(x.scalar_type())};
}

Outputs ropeGrad(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs dy, cos, sin -> dx
  const auto &dy = in.at(0), &cos = in.at(1), &sin = in.at(2);
  int64_t half = dy.size(-1) / 2;
  auto z = at::mul(dy, sin);
  auto back = at::cat({z.narrow(-1, half, half), at::neg(z.narrow(-1, 0, half))}, -1);
  return {at::add(at::mul(dy, cos), back).to(dy.scalar_type())};
}

const KernelEntry kRopeKernels[] = {
    {"AnnealRope", rope},
    {"AnnealRopeGrad", ropeGrad},
};
