// Elementwise kernels: binary ops (operands harmonized to one dtype under precision bf16),
// unary ops, and AddN. tfjs keeps int32 results int32 where ATen would promote (like()).
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

// A binary kernel: a, b harmonized, then `expr`.
#define ANNEAL_BINARY(expr)                            \
  [](const Inputs& in, const Attrs&) -> Outputs {      \
    at::Tensor a = in.at(0), b = in.at(1);             \
    harmonize(a, b);                                   \
    return {expr};                                     \
  }

// A unary kernel on x (attributes in `a`).
#define ANNEAL_UNARY(expr)                                        \
  [](const Inputs& in, [[maybe_unused]] const Attrs& a) -> Outputs { \
    const at::Tensor& x = in.at(0);                               \
    return {expr};                                                \
  }

const KernelEntry kBinaryKernels[] = {
    {"Add", ANNEAL_BINARY(like(at::add(a, b), a.scalar_type()))},
    {"Sub", ANNEAL_BINARY(like(at::sub(a, b), a.scalar_type()))},
    {"Multiply", ANNEAL_BINARY(like(at::mul(a, b), a.scalar_type()))},
    // a bfloat16 quotient stays bfloat16 (precision bf16); else in float32, as tfjs divides ints
    {"RealDiv", ANNEAL_BINARY(a.scalar_type() == at::kBFloat16 ? at::div(a, b) : at::div(a.to(at::kFloat), b.to(at::kFloat)))},
    {"FloorDiv", ANNEAL_BINARY(like(at::div(a, b, "floor"), a.scalar_type()))},
    {"Maximum", ANNEAL_BINARY(at::maximum(a, b))},
    {"Minimum", ANNEAL_BINARY(at::minimum(a, b))},
    {"Pow", ANNEAL_BINARY(like(at::pow(a, b), a.scalar_type()))},
    {"SquaredDifference", ANNEAL_BINARY(at::square(at::sub(a, b)))},
    {"Mod", ANNEAL_BINARY(at::remainder(a, b))},
    {"Less", ANNEAL_BINARY(at::lt(a, b))},
    {"LessEqual", ANNEAL_BINARY(at::le(a, b))},
    {"Greater", ANNEAL_BINARY(at::gt(a, b))},
    {"GreaterEqual", ANNEAL_BINARY(at::ge(a, b))},
    {"Equal", ANNEAL_BINARY(at::eq(a, b))},
    {"NotEqual", ANNEAL_BINARY(at::ne(a, b))},
    {"LogicalAnd", ANNEAL_BINARY(at::logical_and(a, b))},
    {"LogicalOr", ANNEAL_BINARY(at::logical_or(a, b))},
    {"Atan2", ANNEAL_BINARY(at::atan2(a, b))},
    {"Prelu", ANNEAL_BINARY(at::where(a < 0, at::mul(a, b), a))},                    // inputs x, alpha
    {"EluGrad", ANNEAL_BINARY(at::where(b >= 0, a, at::mul(a, at::add(b, 1))))},  // inputs dy, y
};

const KernelEntry kUnaryKernels[] = {
    {"Neg", ANNEAL_UNARY(at::neg(x))},
    {"Exp", ANNEAL_UNARY(at::exp(x))},
    {"Log", ANNEAL_UNARY(at::log(x))},
    {"Log1p", ANNEAL_UNARY(at::log1p(x))},
    {"Expm1", ANNEAL_UNARY(at::expm1(x))},
    {"Sqrt", ANNEAL_UNARY(at::sqrt(x))},
    {"Rsqrt", ANNEAL_UNARY(at::rsqrt(x))},
    {"Square", ANNEAL_UNARY(at::square(x))},
    {"Abs", ANNEAL_UNARY(at::abs(x))},
    {"Tanh", ANNEAL_UNARY(at::tanh(x))},
    {"Sigmoid", ANNEAL_UNARY(at::sigmoid(x))},
    {"Relu", ANNEAL_UNARY(at::relu(x))},
    {"Erf", ANNEAL_UNARY(at::erf(x))},
    {"Sin", ANNEAL_UNARY(at::sin(x))},
    {"Cos", ANNEAL_UNARY(at::cos(x))},
    {"Floor", ANNEAL_UNARY(at::floor(x))},
    {"Ceil", ANNEAL_UNARY(at::ceil(x))},
    {"Round", ANNEAL_UNARY(at::round(x))},  // both round half to even, like tfjs
    {"Sign", ANNEAL_UNARY(at::sign(x))},
    {"Reciprocal", ANNEAL_UNARY(at::reciprocal(x))},
    {"LogicalNot", ANNEAL_UNARY(at::logical_not(x))},
    {"IsNan", ANNEAL_UNARY(at::isnan(x))},
    {"IsInf", ANNEAL_UNARY(at::isinf(x))},
    {"IsFinite", ANNEAL_UNARY(at::isfinite(x))},
    // x > 0 ? 1 : alpha (NaN stays NaN)
    {"Step", ANNEAL_UNARY(at::where(at::isnan(x), x, at::where(x > 0, at::ones_like(x), at::full_like(x, a.has("alpha") ? a.num("alpha") : 0.0))))},
    {"LeakyRelu", ANNEAL_UNARY(at::leaky_relu(x, a.num("alpha")))},
    {"Elu", ANNEAL_UNARY(at::elu(x))},
    {"ClipByValue", ANNEAL_UNARY(at::clamp(x, a.num("clipValueMin"), a.num("clipValueMax")))},
    {"ZerosLike", ANNEAL_UNARY(at::zeros_like(x))},
    {"OnesLike", ANNEAL_UNARY(at::ones_like(x))},
    {"Identity", ANNEAL_UNARY(x)},
    {"Softplus", ANNEAL_UNARY(at::softplus(x))},
    {"Relu6", ANNEAL_UNARY(at::clamp(x, 0, 6))},
    {"Selu", ANNEAL_UNARY(at::selu(x))},
    {"Tan", ANNEAL_UNARY(at::tan(x))},
    {"Asin", ANNEAL_UNARY(at::asin(x))},
    {"Acos", ANNEAL_UNARY(at::acos(x))},
    {"Atan", ANNEAL_UNARY(at::atan(x))},
    {"Sinh", ANNEAL_UNARY(at::sinh(x))},
    {"Cosh", ANNEAL_UNARY(at::cosh(x))},
    {"Asinh", ANNEAL_UNARY(at::asinh(x))},
    {"Acosh", ANNEAL_UNARY(at::acosh(x))},
    {"Atanh", ANNEAL_UNARY(at::atanh(x))},
};

#undef ANNEAL_BINARY
#undef ANNEAL_UNARY

Outputs addN(const Inputs& in, const Attrs&) {
  at::Tensor s = in.at(0).clone();
  for (size_t i = 1; i < in.size(); i++) s.add_(in[i]);
  return {s};
}

Outputs select(const Inputs& in, const Attrs&) {  // inputs condition, t, e
  auto t = in.at(1), e = in.at(2);
  harmonize(t, e);
  return {at::where(in.at(0), t, e)};
}

const KernelEntry kElementwiseKernels[] = {
    {"AddN", addN},
    {"Select", select},
};
