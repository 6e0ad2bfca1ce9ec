// Generation's choice of the next token inside the decode step: temperature, top-k, top-p and
// min-p in transformers' order, then a draw by inverse CDF, computed as @anneal/modeling's JS path
// computes them (processLogits, then draw: float32 scores, float64 softmax, the same loops),
// with the uniform numbers the JS generator drew; so the tokens are the JS path's, and only
// the ids and their log-probs go back to JS. (On a GPU the [B, V] scores are copied to the
// host for the loops: correct, not fast.)
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

// float64 softmax of float32 scores as JS's softmax(): max, exp(s - max) summed in order, divided.
std::vector<double> softmax64(const std::vector<float>& s, double* logTotalOut = nullptr, double* maxOut = nullptr) {
  double max = -INFINITY;
  for (float v : s) if (v > max) max = v;
  std::vector<double> out(s.size());
  double total = 0;
  for (size_t i = 0; i < s.size(); i++) total += out[i] = std::exp(static_cast<double>(s[i]) - max);
  for (auto& p : out) p /= total;
  if (logTotalOut) *logTotalOut = std::log(total);
  if (maxOut) *maxOut = max;
  return out;
}

// inputs logits [B, V], uniforms int32 [B] (the generator's 32-bit words: r = word / 2^32);
// attributes temperature, topK (0: off), topP (1: off), minP (0: off) -> ids int32 [B], log-probs float32 [B]
// (of each chosen id under the processed distribution)
Outputs sampleTokens(const Inputs& in, const Attrs& a) {
  auto logits = in.at(0).to(at::kCPU).to(at::kFloat).contiguous();
  auto words = in.at(1).to(at::kCPU).to(at::kInt).contiguous();
  double temperature = a.num("temperature"), topP = a.num("topP"), minP = a.has("minP") ? a.num("minP") : 0.0;
  int64_t B = logits.size(0), V = logits.size(1), topK = a.i64("topK");
  auto ids = at::empty({B}, at::TensorOptions().dtype(at::kInt));
  auto logprobs = at::empty({B}, at::TensorOptions().dtype(at::kFloat));
  const float* L = logits.data_ptr<float>();
  const int32_t* W = words.data_ptr<int32_t>();
  int32_t* I = ids.data_ptr<int32_t>();
  float* P = logprobs.data_ptr<float>();
  for (int64_t b = 0; b < B; b++) {
    std::vector<float> s(L + b * V, L + (b + 1) * V);
    if (temperature != 1.0)
      for (auto& v : s) v = static_cast<float>(static_cast<double>(v) / temperature);
    if (topK > 0 && topK < V) {
      std::vector<float> sorted(s);
      std::nth_element(sorted.begin(), sorted.begin() + (topK - 1), sorted.end(), std::greater<float>());
      float kth = sorted[topK - 1];
      for (auto& v : s) if (v < kth) v = -INFINITY;
    }
    if (topP < 1.0) {
      std::vector<int64_t> order(V);
      for (int64_t i = 0; i < V; i++) order[i] = i;
      std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return s[x] > s[y]; });
      auto probs = softmax64(s);
      double cum = 0;
      int64_t keep = 0;  // the most likely tokens until their probability reaches p (at least one)
      while (keep < V && (keep == 0 || cum < topP)) cum += probs[order[keep++]];
      for (int64_t j = keep; j < V; j++) s[order[j]] = -INFINITY;
    }
    if (minP > 0.0) {  // tokens below minP × the top probability go (the top one stays)
      auto probs = softmax64(s);
      double top = 0;
      for (double q : probs) if (q > top) top = q;
      for (int64_t i = 0; i < V; i++) if (probs[i] < minP * top) s[i] = -INFINITY;
    }
    double logTotal = 0, max = 0;
    auto probs = softmax64(s, &logTotal, &max);
    double r = static_cast<double>(static_cast<uint32_t>(W[b])) / 4294967296.0;
    int64_t chosen = -1;
    for (int64_t i = 0; i < V && chosen < 0; i++) {
      r -= probs[i];
      if (r <= 0 && probs[i] > 0) chosen = i;
    }
    if (chosen < 0) chosen = std::max_element(s.begin(), s.end()) - s.begin();  // rounding left r above 0: the argmax, as JS
    I[b] = static_cast<int32_t>(chosen);
    P[b] = static_cast<float>(static_cast<double>(s[chosen]) - max - logTotal);
  }
  return {ids.to(g_device), logprobs.to(g_device)};
}

const KernelEntry kSamplingKernels[] = {
    {"AnnealSampleTokens", sampleTokens},
};
