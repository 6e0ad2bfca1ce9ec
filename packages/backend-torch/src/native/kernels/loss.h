// Softmax cross-entropy (summed over rows, -100 ignored) and the LM head fused with it in
// row chunks, with their backward kernels.
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

Outputs crossEntropySum(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs logits [N, V], targets [N] (-100 = ignore) -> sum, log-probs
  auto lsm = at::log_softmax(in.at(0).to(at::kFloat), -1);  // in float32 whatever the logits' dtype
  auto loss = at::nll_loss(lsm, in.at(1).to(at::kLong), {}, at::Reduction::Sum, -100);
  return {loss, lsm};
}

Outputs crossEntropySumGrad(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs dy (scalar), log-probs, targets -> dlogits
  auto t = in.at(2).to(at::kLong);
  auto valid = t.ne(-100).to(at::kFloat).unsqueeze(1);
  auto g = at::exp(in.at(1));
  g.scatter_add_(1, t.clamp_min(0).unsqueeze(1), -valid);
  return {g.mul_(valid).mul_(in.at(0))};
}

// The LM head and the loss as one kernel, in row chunks: logits [n, V] exist for one chunk
// at a time (recomputed in backward) instead of [N, V] float32 logits, log-probs and their
// gradient at once (3 x 3.3 GB for GPT-2 at 16 x 1024 tokens). One more product of the
// head than the unfused pair (the recomputation); chunk = rows per chunk.
Outputs linearCrossEntropy(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs h [N, C], weight [V, C], targets [N] (-100 = ignore) -> loss sum, logsumexp [N]
  const auto &h = in.at(0), &w = in.at(1);
  auto t = in.at(2).to(at::kLong);
  int64_t N = h.size(0), chunk = std::max<int64_t>(1, a.i64("chunk"));
  auto loss = at::zeros({}, h.options().dtype(at::kFloat));
  std::vector<at::Tensor> lses;
  for (int64_t s = 0; s < N; s += chunk) {
    int64_t n = std::min(chunk, N - s);
    auto logits = product(h.narrow(0, s, n), w.t()).to(at::kFloat);  // [n, V]
    auto lse = at::logsumexp(logits, {1});                            // [n]
    auto tc = t.narrow(0, s, n);
    auto picked = logits.gather(1, tc.clamp(0, w.size(0) - 1).unsqueeze(1)).squeeze(1);  // (out-of-range ids: clamped, never a device assert)
    loss.add_(at::where(tc.ne(-100), lse - picked, at::zeros_like(lse)).sum());
    lses.push_back(lse);
  }
  return {loss, at::cat(lses)};
}

Outputs linearCrossEntropyGrad(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs dy (scalar), h, weight, targets, logsumexp -> dh [N, C], dweight [V, C]
  const auto &dy = in.at(0), &h = in.at(1), &w = in.at(2), &lse = in.at(4);
  auto t = in.at(3).to(at::kLong);
  int64_t N = h.size(0), chunk = std::max<int64_t>(1, a.i64("chunk"));
  auto dw = at::zeros(w.sizes(), w.options().dtype(at::kFloat));
  std::vector<at::Tensor> dhs;
  for (int64_t s = 0; s < N; s += chunk) {
    int64_t n = std::min(chunk, N - s);
    auto hc = h.narrow(0, s, n);
    auto tc = t.narrow(0, s, n);
    auto valid = tc.ne(-100).to(at::kFloat).unsqueeze(1);                                  // [n, 1]
    auto g = at::exp(product(hc, w.t()).to(at::kFloat).sub_(lse.narrow(0, s, n).unsqueeze(1)));  // softmax [n, V]
    g.scatter_add_(1, tc.clamp(0, w.size(0) - 1).unsqueeze(1), -valid);                              // - one-hot of the target
    g.mul_(valid).mul_(dy);                                                                 // d loss / d logits
    dhs.push_back(act(product(g, w)));     // [n, C]
    dw.add_(product(g.t(), hc));           // [V, C], summed over chunks in float32
  }
  return {at::cat(dhs), dw};
}

const KernelEntry kLossKernels[] = {
    {"AnnealCrossEntropySum", crossEntropySum},
    {"AnnealCrossEntropySumGrad", crossEntropySumGrad},
    {"AnnealLinearCrossEntropy", linearCrossEntropy},
    {"AnnealLinearCrossEntropyGrad", linearCrossEntropyGrad},
};
