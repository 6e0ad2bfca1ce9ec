// Layer norm and RMS norm with their backward kernels (used through tf.customGrad by
// @anneal/modeling). Norms compute in float32 (a bfloat16 activation is widened); their
// outputs and input gradients are activations (bfloat16 under precision bf16), weight
// gradients float32.
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

// Fused ops with their backward kernels (used through tf.customGrad by @anneal/modeling).
// Norms compute in float32 (a bfloat16 activation is widened), their outputs and input
// gradients are activations (bfloat16 under precision bf16), weight gradients float32.
Outputs layerNorm(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs x, gamma, beta over the last dim -> y, mean, rstd
  auto x = in.at(0).to(at::kFloat);
  auto r = at::native_layer_norm(x, {x.size(-1)}, in.at(1), in.at(2), a.num("eps"));
  return {act(std::get<0>(r)), std::get<1>(r), std::get<2>(r)};
}

Outputs layerNormGrad(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs dy, x, gamma, beta, mean, rstd -> dx, dgamma, dbeta
  auto x = in.at(1).to(at::kFloat);
  auto r = at::native_layer_norm_backward(in.at(0).to(at::kFloat), x, {x.size(-1)}, in.at(4), in.at(5), in.at(2), in.at(3), {true, true, true});
  return {act(std::get<0>(r)), std::get<1>(r), std::get<2>(r)};
}

Outputs rmsNorm(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs x, weight over the last dim -> y, rstd
  auto x = in.at(0).to(at::kFloat);
  const auto& w = in.at(1);
  auto rstd = at::rsqrt(at::add(at::mean(at::square(x), {-1}, true), a.num("eps")));
  return {act(at::mul(at::mul(x, rstd), w)), rstd};
}

Outputs rmsNormGrad(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs dy, x, weight, rstd -> dx, dweight
  auto dy = in.at(0).to(at::kFloat), x = in.at(1).to(at::kFloat);
  const auto &w = in.at(2), &rstd = in.at(3);
  auto xhat = at::mul(x, rstd);
  auto g = at::mul(dy, w);
  auto dx = at::mul(rstd, at::sub(g, at::mul(xhat, at::mean(at::mul(g, xhat), {-1}, true))));
  auto dw = at::mul(dy, xhat).reshape({-1, x.size(-1)}).sum(0);
  return {act(dx), dw};
}

const KernelEntry kNormKernels[] = {
    {"AnnealLayerNorm", layerNorm},
    {"AnnealLayerNormGrad", layerNormGrad},
    {"AnnealRmsNorm", rmsNorm},
    {"AnnealRmsNormGrad", rmsNormGrad},
};
