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

// Rows of queries per block: one block's [B, H, rows, S] float32 scores stay under 64 MiB, so
// attention's working set no longer grows with T² (14 heads at T 8192: 3.8 GB per score
// tensor unblocked, 64 MiB blocked). Attribute block (> 0) sets the rows (tests compare).
int64_t queryBlock(const at::Tensor& q, const at::Tensor& k, const Attrs& a) {
  int64_t T = q.size(-2);
  if (a.has("block") && a.i64("block") > 0) return std::min(T, a.i64("block"));
  int64_t rowBytes = q.numel() / std::max<int64_t>(1, q.size(-1) * T) * k.size(-2) * 4;  // B·H·S floats
  return std::clamp<int64_t>((int64_t{64} << 20) / std::max<int64_t>(1, rowBytes), 1, T);
}

// The bias rows of queries [s, s + n): a bias broadcast over queries (size 1 there) is whole.
at::Tensor biasRows(const at::Tensor& bias, int64_t s, int64_t n) { return bias.size(-2) == 1 ? bias : bias.narrow(-2, s, n); }

// Dropout's seed for query block i: the attribute itself when there is one block (so short
// sequences draw the mask they always drew), one per block otherwise; forward and backward
// cut the same blocks, so the backward pass draws the same masks.
double blockSeed(double seed, int64_t i, bool blocked) { return blocked ? seed + static_cast<double>(i) : seed; }

// inputs q, k, v [B, H, T, D], additive bias [.., T, S] -> y, and the log-sum-exp of each
// query's scores [B, H, T, 1]: what the backward pass rebuilds the probabilities from (as
// flash attention does), so no [B, H, T, S] tensor outlives the call. (Keeping the
// probabilities instead made a step's memory grow with B·H·T² per layer.) Queries run in
// blocks (queryBlock), so none exists inside it either. Attributes dropout (a rate, 0 for
// none) and seed: dropout on the probabilities.
Outputs attention(const Inputs& in, [[maybe_unused]] const Attrs& a) {
  double rate = a.has("dropout") ? a.num("dropout") : 0.0;
#ifdef ANNEAL_TORCH2
  if (in.at(0).is_cuda() && rate == 0.0)
    return fusedAttention(in.at(0), in.at(1), in.at(2), in.at(3), a.num("scale"), a.flag("causal"));
#endif
  const auto &q = in.at(0), &k = in.at(1), &v = in.at(2), &bias = in.at(3);
  double scale = a.num("scale"), seed = a.has("seed") ? a.num("seed") : 0.0;
  int64_t T = q.size(-2), rows = queryBlock(q, k, a);
  if (T == 1 && rate == 0.0 && !g_autocast_bf16 && !g_precision_bf16 && q.scalar_type() == at::kFloat) {
    // One query per head (a decode step): B·H dot products and one weighted sum, as
    // elementwise products and sums; a batched GEMM of B·H [1, D] × [D, S] products costs
    // 2.5× as much in per-matrix overhead (GPT-2 at batch 8: 0.21 against 0.53 ms a layer).
    auto scores = at::add(at::mul(at::mul(q, k).sum(-1).unsqueeze(-2), scale), bias);  // [B, H, 1, S]
    auto lse = at::logsumexp(scores, {-1}, true);
    auto probs = at::exp(at::sub(scores, lse));
    return {at::mul(probs.transpose(-2, -1), v).sum(-2, true), lse};  // [B, H, 1, D]
  }
  std::vector<at::Tensor> ys, lses;
  for (int64_t s = 0, i = 0; s < T; s += rows, i++) {
    int64_t n = std::min(rows, T - s);
    auto scores = attentionScores(q.narrow(-2, s, n), k, biasRows(bias, s, n), scale);  // [B, H, n, S]
    auto lse = at::logsumexp(scores, {-1}, true);  // in float32, as softmax under torch.autocast
    auto probs = at::exp(at::sub(scores, lse));
    if (rate > 0.0) probs = at::mul(probs, dropoutKeep(probs, rate, blockSeed(seed, i, rows < T)));
    ys.push_back(product(probs, v));
    lses.push_back(lse);
  }
  if (ys.size() == 1) return {ys[0], lses[0]};
  return {at::cat(ys, -2), at::cat(lses, -2)};
}

// inputs dy, q, k, v, bias, lse -> dq, dk, dv; the probabilities recomputed from q, k, bias and
// lse (and the dropout mask from its seed), in the forward pass's query blocks: dq block by
// block, dk and dv summed over blocks in float32.
Outputs attentionGrad(const Inputs& in, const Attrs& a) {
  const auto &dy = in.at(0), &q = in.at(1), &kk = in.at(2), &v = in.at(3), &bias = in.at(4), &lse = in.at(5);
  double scale = a.num("scale"), rate = a.has("dropout") ? a.num("dropout") : 0.0;
  double seed = a.has("seed") ? a.num("seed") : 0.0;
  int64_t T = q.size(-2), rows = queryBlock(q, kk, a);
  std::vector<at::Tensor> dqs;
  at::Tensor dk, dv;
  at::ScalarType dkType = at::kFloat, dvType = at::kFloat;
  for (int64_t s = 0, i = 0; s < T; s += rows, i++) {
    int64_t n = std::min(rows, T - s);
    auto qb = q.narrow(-2, s, n), dyb = dy.narrow(-2, s, n);
    auto p = at::exp(at::sub(attentionScores(qb, kk, biasRows(bias, s, n), scale), lse.narrow(-2, s, n)));
    auto keep = rate > 0.0 ? dropoutKeep(p, rate, blockSeed(seed, i, rows < T)) : at::Tensor();
    auto dvb = product((rate > 0.0 ? at::mul(p, keep) : p).transpose(-2, -1), dyb);
    auto dp = product(dyb, v.transpose(-2, -1));
    if (rate > 0.0) dp = at::mul(dp, keep);
    auto ds = at::mul(p, at::sub(dp, at::sum(at::mul(dp, p), {-1}, true)));  // softmax backward
    dqs.push_back(at::mul(product(ds, kk), scale));
    auto dkb = at::mul(product(ds.transpose(-2, -1), qb), scale);
    if (rows >= T) return {dqs[0], dkb, dvb};
    if (i == 0) {
      dkType = dkb.scalar_type(), dvType = dvb.scalar_type();
      dk = dkb.to(at::kFloat, /*non_blocking=*/false, /*copy=*/true), dv = dvb.to(at::kFloat, false, true);
    } else {
      dk.add_(dkb), dv.add_(dvb);
    }
  }
  return {at::cat(dqs, -2), dk.to(dkType), dv.to(dvType)};
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
