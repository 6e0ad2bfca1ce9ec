// Reductions over axes (Sum, Mean, Prod, Max, Min, All, Any), arg-extremes, top-k and the
// cumulative scans. Sums of bfloat16 activations and means are taken in float32.
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

// The axes of a reduction (tfjs names them reductionIndices for Max only); an empty list or a scalar: a copy.
std::vector<int64_t> reductionAxes(const at::Tensor& x, const Attrs& a, const char* key = "axis") {
  return axesOf(a, key, x.dim());
}

// Reduces over each axis in turn, last first (for ATen ops that take one dim).
template <typename F>
at::Tensor eachAxis(at::Tensor r, std::vector<int64_t> axes, F f) {
  std::sort(axes.rbegin(), axes.rend());
  for (auto ax : axes) r = f(r, ax);
  return r;
}

Outputs reduceSum(const Inputs& in, const Attrs& a) {
  const auto& x = in.at(0);
  auto axes = reductionAxes(x, a);
  if (x.dim() == 0 || axes.empty()) return {x.clone()};
  bool keep = a.flag("keepDims");
  if (x.scalar_type() == at::kBFloat16) return {at::sum(x, axes, keep, at::kFloat)};  // sums and norms in float32
  return {like(at::sum(x, axes, keep), x.scalar_type() == at::kBool ? at::kInt : x.scalar_type())};
}

Outputs reduceMean(const Inputs& in, const Attrs& a) {
  const auto& x = in.at(0);
  auto axes = reductionAxes(x, a);
  if (x.dim() == 0 || axes.empty()) return {x.clone()};
  return {at::mean(x.to(at::kFloat), axes, a.flag("keepDims"))};
}

Outputs reduceProd(const Inputs& in, const Attrs& a) {
  const auto& x = in.at(0);
  auto axes = reductionAxes(x, a);
  if (x.dim() == 0 || axes.empty()) return {x.clone()};
  bool keep = a.flag("keepDims");
  return {like(eachAxis(x, axes, [&](const at::Tensor& r, int64_t ax) { return at::prod(r, ax, keep); }), x.scalar_type())};
}

Outputs reduceMax(const Inputs& in, const Attrs& a) {
  const auto& x = in.at(0);
  auto axes = reductionAxes(x, a, "reductionIndices");
  if (x.dim() == 0 || axes.empty()) return {x.clone()};
  return {at::amax(x, axes, a.flag("keepDims"))};
}

Outputs reduceMin(const Inputs& in, const Attrs& a) {
  const auto& x = in.at(0);
  auto axes = reductionAxes(x, a);
  if (x.dim() == 0 || axes.empty()) return {x.clone()};
  return {at::amin(x, axes, a.flag("keepDims"))};
}

Outputs reduceAll(const Inputs& in, const Attrs& a) {
  const auto& x = in.at(0);
  auto axes = reductionAxes(x, a);
  if (x.dim() == 0 || axes.empty()) return {x.clone()};
  bool keep = a.flag("keepDims");
  return {eachAxis(x, axes, [&](const at::Tensor& r, int64_t ax) { return at::all(r, ax, keep); })};
}

Outputs reduceAny(const Inputs& in, const Attrs& a) {
  const auto& x = in.at(0);
  auto axes = reductionAxes(x, a);
  if (x.dim() == 0 || axes.empty()) return {x.clone()};
  bool keep = a.flag("keepDims");
  return {eachAxis(x, axes, [&](const at::Tensor& r, int64_t ax) { return at::any(r, ax, keep); })};
}

Outputs argMax(const Inputs& in, const Attrs& a) {
  return {at::argmax(in.at(0), normAxis(a.ints("axis").at(0), in.at(0).dim())).to(at::kInt)};
}

Outputs argMin(const Inputs& in, const Attrs& a) {
  return {at::argmin(in.at(0), normAxis(a.ints("axis").at(0), in.at(0).dim())).to(at::kInt)};
}

Outputs topK(const Inputs& in, const Attrs& a) {  // values and int32 indices of the k largest along the last axis
  auto r = at::topk(in.at(0), a.i64("k"), -1, true, true);
  return {std::get<0>(r), std::get<1>(r).to(at::kInt)};
}

Outputs cumsum(const Inputs& in, const Attrs& a) {
  auto x = in.at(0);
  auto ax = normAxis(a.i64("axis"), x.dim());
  bool reverse = a.flag("reverse");
  auto v = reverse ? x.flip(ax) : x;
  auto c = like(at::cumsum(v, ax), x.scalar_type());
  if (a.flag("exclusive")) c = at::sub(c, v);
  return {reverse ? c.flip(ax) : c};
}

Outputs cumprod(const Inputs& in, const Attrs& a) {
  auto x = in.at(0);
  auto ax = normAxis(a.i64("axis"), x.dim());
  bool reverse = a.flag("reverse");
  auto v = reverse ? x.flip(ax) : x;
  auto c = like(at::cumprod(v, ax), x.scalar_type());
  if (a.flag("exclusive")) c = at::cat({at::ones_like(c.narrow(ax, 0, 1)), c.narrow(ax, 0, c.size(ax) - 1)}, ax);
  return {reverse ? c.flip(ax) : c};
}

const KernelEntry kReduceKernels[] = {
    {"Sum", reduceSum},   {"Mean", reduceMean}, {"Prod", reduceProd}, {"Max", reduceMax},
    {"Min", reduceMin},   {"All", reduceAll},   {"Any", reduceAny},   {"ArgMax", argMax},
    {"ArgMin", argMin},   {"TopK", topK},       {"Cumsum", cumsum},   {"Cumprod", cumprod},
};
