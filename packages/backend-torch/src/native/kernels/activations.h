// Activations: softmax, GELU and the gated MLP activations (SwiGLU, GeGLU), with backward kernels.
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

// Softmax of bfloat16 scores is taken in float32 (torch.autocast's float32 list), then kept
// as an activation (bfloat16 under precision bf16).
Outputs softmax(const Inputs& in, const Attrs& a) {
  auto x = in.at(0).scalar_type() == at::kBFloat16 ? in.at(0).to(at::kFloat) : in.at(0);
  return {act(at::softmax(x, normAxis(a.has("dim") ? a.i64("dim") : -1, x.dim())))};
}

Outputs gelu(const Inputs& in, const Attrs& a) { return {at::gelu(in.at(0), a.str("approximate"))}; }

Outputs geluGrad(const Inputs& in, const Attrs& a) {  // inputs dy, x
  return {at::gelu_backward(in.at(0).to(in.at(1).scalar_type()), in.at(1), a.str("approximate"))};
}

// Gated MLP activations, SwiGLU silu(gate) * up and GeGLU gelu(gate) * up, with their
// backward: one kernel each way, saving gate and up only (the op chain keeps four [.., I]
// tensors for backward: gate, sigmoid(gate), their product, up).
Outputs gatedAct(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs gate, up; attr act: silu | gelu | gelu_tanh -> y
  auto g = in.at(0), u = in.at(1);
  harmonize(g, u);
  auto act = a.str("act");
  return {at::mul(act == "silu" ? at::silu(g) : at::gelu(g, act == "gelu_tanh" ? "tanh" : "none"), u)};
}

Outputs gatedActGrad(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs dy, gate, up -> dgate, dup
  auto g = in.at(1), u = in.at(2);
  harmonize(g, u);
  auto dy = in.at(0).to(g.scalar_type());
  auto act = a.str("act");
  auto dyu = at::mul(dy, u);
  if (act == "silu") return {at::silu_backward(dyu, g), at::mul(dy, at::silu(g))};
  auto approx = act == "gelu_tanh" ? "tanh" : "none";
  return {at::gelu_backward(dyu, g, approx), at::mul(dy, at::gelu(g, approx))};
}

const KernelEntry kActivationKernels[] = {
    {"Softmax", softmax},
    {"AnnealGelu", gelu},
    {"AnnealGeluGrad", geluGrad},
    {"AnnealGatedAct", gatedAct},
    {"AnnealGatedActGrad", gatedActGrad},
};
