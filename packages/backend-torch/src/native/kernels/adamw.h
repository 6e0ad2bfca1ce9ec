// AdamW over all parameters in one kernel (@anneal/core's AdamW): in place where the buffers
// are ours alone, with torch's fused multi-tensor kernel on a GPU.
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

#ifdef ANNEAL_TORCH2
// One AdamW step for all parameters on a GPU with at::_fused_adamw_ (one multi-tensor
// kernel per weight-decay group, as torch.optim.AdamW(fused=True)), updating in place.
// `n` inputs are (p, g, m, v) quadruples; with `lr` and `step` given as device tensors (a
// recorded step replays with new values) the kernel reads both on the device.
// Returns false, changing nothing, when it does not apply (see the caller).
bool fusedAdamW(const Inputs& in, size_t n, const at::Tensor& lrT, const at::Tensor& stepT, const Attrs& a, std::vector<at::Tensor>& outs) {
  if ((!stepT.defined() && !a.has("step")) || n == 0 || !in[0].is_cuda()) return false;
  for (size_t i = 0; i < n; i++) {
    if (in[i].scalar_type() != at::kFloat || !in[i].is_contiguous()) return false;
    if (i % 4 != 1 && in[i].storage().use_count() != 1) return false;  // p, m, v must be ours alone
  }
  const Value wdArr = a.get("weightDecays");
  std::vector<double> decays;
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i * 4 < n; i++) {
    double wd = wdArr.arr.at(i).num;
    auto pos = std::find(decays.begin(), decays.end(), wd);
    if (pos == decays.end()) {
      decays.push_back(wd);
      groups.emplace_back();
      pos = decays.end() - 1;
    }
    groups[pos - decays.begin()].push_back(i);
  }
  c10::NoGradGuard no_grad;
  auto step = stepT.defined() ? stepT : at::full({}, a.num("step"), in[0].options());  // read by the kernel for bias correction
  for (size_t gi = 0; gi < groups.size(); gi++) {
    std::vector<at::Tensor> p, g, m, v, steps;
    for (auto i : groups[gi]) {
      p.push_back(in[4 * i]);
      g.push_back(in[4 * i + 1]);
      m.push_back(in[4 * i + 2]);
      v.push_back(in[4 * i + 3]);
      steps.push_back(step);
    }
    if (lrT.defined())
      at::_fused_adamw_(p, g, m, v, {}, steps, lrT, a.num("beta1"), a.num("beta2"), decays[gi], a.num("eps"), false, false, c10::nullopt, c10::nullopt);
    else
      at::_fused_adamw_(p, g, m, v, {}, steps, a.num("lr"), a.num("beta1"), a.num("beta2"), decays[gi], a.num("eps"), false, false, c10::nullopt, c10::nullopt);
  }
  for (size_t i = 0; i * 4 < n; i++) {
    outs.push_back(in[4 * i]);
    outs.push_back(in[4 * i + 2]);
    outs.push_back(in[4 * i + 3]);
  }
  return true;
}
#endif

Outputs adamW(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs: (param, grad, exp_avg, exp_avg_sq) per parameter [, lr, step as 0-d tensors]
  double b1 = a.num("beta1"), b2 = a.num("beta2"), eps = a.num("eps");
  // The per-step scalars come as attributes, or (attr scalarInputs) as the last two
  // inputs, so that a recorded step replays with the new learning rate and step count.
  bool tensors = a.flag("scalarInputs");
  size_t n = in.size() - (tensors ? 2 : 0);
  Inputs ins = in;  // gradients in float32 (bfloat16 ones come from precision bf16)
  for (size_t i = 1; i < n; i += 4)
    if (ins[i].scalar_type() == at::kBFloat16) ins[i] = ins[i].to(at::kFloat);
  at::Tensor lrT = tensors ? ins.at(n) : at::Tensor(), stepT = tensors ? ins.at(n + 1) : at::Tensor();
  std::vector<at::Tensor> outs;
#ifdef ANNEAL_TORCH2
  if (fusedAdamW(ins, n, lrT, stepT, a, outs)) return outs;
#endif
  const Value wdArr = a.get("weightDecays");
  c10::NoGradGuard no_grad;
  // Learning rate and bias corrections: numbers, or 0-d tensors computed on the device.
  at::Tensor bc1T, bc2T;
  if (tensors) {
    bc1T = at::rsub(at::pow(b1, stepT), 1);  // 1 - b1^t
    bc2T = at::rsub(at::pow(b2, stepT), 1);
  }
  double lr = tensors ? 0 : a.num("lr"), bc1 = tensors ? 0 : a.num("biasCorrection1"), bc2 = tensors ? 0 : a.num("biasCorrection2");
  for (size_t i = 0; i * 4 < n; i++) {
    const auto &p = ins[4 * i], &g = ins[4 * i + 1], &m = ins[4 * i + 2], &v = ins[4 * i + 3];
    double wd = wdArr.arr.at(i).num;
    // In place (as torch.optim does) when nothing else views these buffers: tfjs treats
    // tensors as immutable, so a buffer shared with another tensor must not change.
    bool exclusive = p.storage().use_count() == 1 && m.storage().use_count() == 1 && v.storage().use_count() == 1;
    auto m2 = exclusive ? m.mul_(b1).add_(g, 1 - b1) : at::add(at::mul(m, b1), at::mul(g, 1 - b1));
    auto v2 = exclusive ? v.mul_(b2).addcmul_(g, g, 1 - b2) : at::add(at::mul(v, b2), at::mul(at::square(g), 1 - b2));
    at::Tensor p2 = p, update;
    if (tensors) {
      if (wd != 0) p2 = exclusive ? p2.mul_(at::rsub(lrT * wd, 1)) : at::mul(p2, at::rsub(lrT * wd, 1));
      update = at::div(m2, bc1T).div_(at::div(v2, bc2T).sqrt_().add_(eps)).mul_(lrT);
    } else {
      if (wd != 0) p2 = exclusive ? p2.mul_(1 - lr * wd) : at::mul(p2, 1 - lr * wd);
      update = at::div(m2, bc1).div_(at::div(v2, bc2).sqrt_().add_(eps)).mul_(lr);
    }
    outs.push_back(exclusive ? p2.sub_(update) : at::sub(p2, update));
    outs.push_back(m2);
    outs.push_back(v2);
  }
  return outs;
}

const KernelEntry kOptimizerKernels[] = {
    {"AnnealAdamW", adamW},
};
