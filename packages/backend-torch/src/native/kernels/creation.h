// Kernels that make tensors from attributes: Fill, Range, LinSpace, and OneHot from indices.
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

Outputs fill(const Inputs&, const Attrs& a) {
  return {at::full(a.ints("shape"), a.num("value"), opts(toScalarType(a.str("dtype"))))};
}

Outputs range(const Inputs&, const Attrs& a) {  // tfjs: ceil((stop - start) / step) elements, like arange
  auto dtype = toScalarType(a.str("dtype"));
  double start = a.num("start"), stop = a.num("stop"), step = a.num("step");
  if ((stop - start) * step <= 0) return {at::empty({0}, opts(dtype))};
  return {at::arange(start, stop, step, opts(at::kDouble)).to(dtype)};
}

Outputs linSpace(const Inputs&, const Attrs& a) {
  return {at::linspace(a.num("start"), a.num("stop"), a.i64("num"), opts(at::kFloat))};
}

Outputs oneHot(const Inputs& in, const Attrs& a) {
  auto idx = in.at(0).to(at::kLong);
  int64_t depth = a.i64("depth");
  auto valid = (idx >= 0).logical_and(idx < depth);
  auto hot = at::one_hot(idx.clamp(0, depth - 1), depth).logical_and(valid.unsqueeze(-1));
  auto dtype = a.has("dtype") ? toScalarType(a.str("dtype")) : at::kInt;
  auto on = at::full({}, a.num("onValue"), opts(dtype));
  auto off = at::full({}, a.num("offValue"), opts(dtype));
  return {at::where(hot, on, off)};
}

const KernelEntry kCreationKernels[] = {
    {"Fill", fill},
    {"Range", range},
    {"LinSpace", linSpace},
    {"OneHot", oneHot},
};
