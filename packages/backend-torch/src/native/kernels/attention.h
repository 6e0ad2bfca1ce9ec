// Attention: softmax(q kᵀ scale + bias) v and its backward. On a GPU with libtorch 2.x,
// at::scaled_dot_product_attention (flash / memory-efficient kernels) and its autograd backward.
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

#ifdef ANNEAL_TORCH2
// Attention on a GPU through at::scaled_dot_product_attention, which picks the flash or
// memory-efficient kernel (no [T, T] probabilities in memory). Its backward is the one
// libtorch's autograd records: q, k, v enter as leaves that require grad, and y keeps the
// graph. Returns y detached (for the forward), y with its graph, and the three leaves:
// AnnealAttentionGrad (autograd) takes those back. `causal` says the bias is exactly the
// causal mask (no padding, no cache), which lets the flash kernel run without a bias.
std::vector<at::Tensor> fusedAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias, double scale, bool causal) {
  c10::AutoGradMode grad_on(true);
  auto ql = q.detach().requires_grad_(), kl = k.detach().requires_grad_(), vl = v.detach().requires_grad_();
  auto cast = [](const at::Tensor& t) { return g_autocast_bf16 || g_precision_bf16 ? t.to(at::kBFloat16) : t; };
  c10::optional<at::Tensor> mask;
  if (!causal) mask = cast(bias);
  auto y = at::scaled_dot_product_attention(cast(ql), cast(kl), cast(vl), mask, 0.0, causal, scale);
  if (y.scalar_type() != at::kFloat && !g_precision_bf16) y = y.to(at::kFloat);
  return {y.detach(), y, ql, kl, vl};
}
#endif

// The scores q kᵀ scale + bias [B, H, T, S].
at::Tensor attentionScores(const at::Tensor& q, const at::Tensor& k, const at::Tensor& bias, double scale) {
  return at::add(at::mul(product(q, k.transpose(-2, -1)), scale), bias);
}

// Attention dropout's keep mask for probabilities like `p`, scaled by 1 / (1 - rate), drawn
// from the device's generator seeded with `seed`: the backward pass (and a checkpointed
// block's recomputation) draws the same mask again.
at::Tensor dropoutKeep(const at::Tensor& p, double rate, double seed) {
  auto gen = at::globalContext().defaultGenerator(p.device());
  {
    std::lock_guard<std::mutex> lock(gen.mutex());  // released before bernoulli takes it
    gen.set_current_seed(seedBits(seed));
  }
  return at::bernoulli(at::empty_like(p), 1.0 - rate, gen).div_(1.0 - rate);
}

// inputs q, k, v [B, H, T, D], additive bias [.., T, S] -> y, and the log-sum-exp of each
// query's scores [B, H, T, 1]: what the backward pass rebuilds the probabilities from (as
// flash attention does), so no [B, H, T, S] tensor outlives the call. (Keeping the
// probabilities instead made a step's memory grow with B·H·T² per layer.) Attributes
// dropout (a rate, 0 for none) and seed: dropout on the probabilities.
Outputs attention(const Inputs& in, [[maybe_unused]] const Attrs& a) {
  double rate = a.has("dropout") ? a.num("dropout") : 0.0;
#ifdef ANNEAL_TORCH2
  if (in.at(0).is_cuda() && rate == 0.0)
    return fusedAttention(in.at(0), in.at(1), in.at(2), in.at(3), a.num("scale"), a.flag("causal"));
#endif
  auto scores = attentionScores(in.at(0), in.at(1), in.at(3), a.num("scale"));
  auto lse = at::logsumexp(scores, {-1}, true);  // in float32, as softmax under torch.autocast
  auto probs = at::exp(at::sub(scores, lse));
  if (rate > 0.0) probs = at::mul(probs, dropoutKeep(probs, rate, a.num("seed")));
  return {product(probs, in.at(2)), lse};
}

// inputs dy, q, k, v, bias, lse -> dq, dk, dv; the probabilities recomputed from q, k, bias and
// lse (and the dropout mask from its seed)
Outputs attentionGrad(const Inputs& in, const Attrs& a) {
  const auto &dy = in.at(0), &q = in.at(1), &kk = in.at(2), &v = in.at(3);
  double scale = a.num("scale"), rate = a.has("dropout") ? a.num("dropout") : 0.0;
  auto p = at::exp(at::sub(attentionScores(q, kk, in.at(4), scale), in.at(5)));
  auto keep = rate > 0.0 ? dropoutKeep(p, rate, a.num("seed")) : at::Tensor();
  auto dv = product((rate > 0.0 ? at::mul(p, keep) : p).transpose(-2, -1), dy);
  auto dp = product(dy, v.transpose(-2, -1));
  if (rate > 0.0) dp = at::mul(dp, keep);
  auto ds = at::mul(p, at::sub(dp, at::sum(at::mul(dp, p), {-1}, true)));  // softmax backward
  return {at::mul(product(ds, kk), scale), at::mul(product(ds.transpose(-2, -1), q), scale), dv};
}

// inputs dy, y (with its graph), q, k, v -> dq, dk, dv: runs the backward of the SDPA kernel
// that produced y (flash or memory-efficient, whichever at::scaled_dot_product_attention
// chose) and frees its saved state.
Outputs attentionGradAutograd(const Inputs& in, const Attrs&) {
#ifdef ANNEAL_TORCH2
  auto dy = in.at(0).to(in.at(1).scalar_type());  // autograd wants the gradient in y's dtype
  auto g = torch::autograd::grad({in.at(1)}, {in.at(2), in.at(3), in.at(4)}, {dy}, /*retain_graph=*/false);
  return {g[0], g[1], g[2]};
#else
  throw std::runtime_error("AnnealAttentionGradAutograd needs libtorch 2 (fused attention)");
#endif
}

const KernelEntry kAttentionKernels[] = {
    {"AnnealAttention", attention},
    {"AnnealAttentionGrad", attentionGrad},
    {"AnnealAttentionGradAutograd", attentionGradAutograd},
};
