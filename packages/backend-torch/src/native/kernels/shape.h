// Kernels that move, cut or join values without arithmetic: reshape, transpose, cast,
// slices, concatenation and stacking, splits, tiling, padding, flips.
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

Outputs reshape(const Inputs& in, const Attrs& a) { return {in.at(0).reshape(a.ints("shape"))}; }

Outputs transpose(const Inputs& in, const Attrs& a) { return {in.at(0).permute(a.ints("perm")).contiguous()}; }

Outputs cast(const Inputs& in, const Attrs& a) {
  return {in.at(0).to(toScalarType(a.str("dtype")))};  // tfjs casts float -> int by truncation toward zero, as ATen does
}

Outputs expandDims(const Inputs& in, const Attrs& a) { return {in.at(0).unsqueeze(a.i64("dim"))}; }

Outputs reverse(const Inputs& in, const Attrs& a) { return {in.at(0).flip(axesOf(a, "dims", in.at(0).dim()))}; }

Outputs slice(const Inputs& in, const Attrs& a) {
  auto begin = a.ints("begin");
  auto size = a.ints("size");
  at::Tensor r = in.at(0);
  for (size_t d = 0; d < begin.size(); d++) {
    int64_t len = size[d] < 0 ? r.size(d) - begin[d] : size[d];
    r = r.narrow(static_cast<int64_t>(d), begin[d], len);
  }
  return {r.contiguous()};
}

Outputs stridedSlice(const Inputs& in, const Attrs& a) {  // register.ts resolves masks into per-dim begin/count/stride
  auto begin = a.ints("begin"), count = a.ints("count"), strides = a.ints("strides");
  at::Tensor r = in.at(0);
  for (int64_t d = 0; d < static_cast<int64_t>(begin.size()); d++) {
    int64_t b = begin[d], st = strides[d], n = count[d];
    if (st < 0) {  // ATen slices with positive steps only: flip, and count from the end
      r = r.flip(d);
      b = r.size(d) - 1 - b;
      st = -st;
    }
    r = n <= 0 ? r.narrow(d, 0, 0) : r.slice(d, b, b + (n - 1) * st + 1, st);
  }
  return {r.contiguous().reshape(a.ints("finalShape"))};
}

// Under precision bf16 one bfloat16 part makes them all bfloat16.
Inputs joinable(const Inputs& in) {
  Inputs parts = in;
  bool low = g_precision_bf16 && std::any_of(parts.begin(), parts.end(), [](const at::Tensor& t) { return t.scalar_type() == at::kBFloat16; });
  if (low)
    for (auto& t : parts)
      if (t.scalar_type() == at::kFloat) t = t.to(at::kBFloat16);
  return parts;
}

Outputs concat(const Inputs& in, const Attrs& a) { return {at::cat(joinable(in), normAxis(a.i64("axis"), in.at(0).dim()))}; }

Outputs pack(const Inputs& in, const Attrs& a) { return {at::stack(joinable(in), normAxis(a.i64("axis"), in.at(0).dim() + 1))}; }

Outputs unpack(const Inputs& in, const Attrs& a) {
  auto ax = normAxis(a.i64("axis"), in.at(0).dim());
  Outputs outs;
  for (auto& t : at::unbind(in.at(0), ax)) outs.push_back(t.contiguous());
  return outs;
}

Outputs splitV(const Inputs& in, const Attrs& a) {
  auto x = in.at(0);
  auto ax = normAxis(a.i64("axis"), x.dim());
  const Value spec = a.get("numOrSizeSplits");
  std::vector<at::Tensor> parts;
  if (spec.kind == Value::Num) {
    parts = at::chunk(x, static_cast<int64_t>(spec.num), ax);
  } else {
    auto sizes = intsOf(spec);
    int64_t known = 0, unknown = -1;
    for (size_t i = 0; i < sizes.size(); i++) {
      if (sizes[i] == -1) unknown = static_cast<int64_t>(i);
      else known += sizes[i];
    }
    if (unknown >= 0) sizes[unknown] = x.size(ax) - known;
    parts = at::split_with_sizes(x, sizes, ax);
  }
  Outputs outs;
  for (auto& p : parts) outs.push_back(p.contiguous());
  return outs;
}

Outputs tile(const Inputs& in, const Attrs& a) { return {in.at(0).repeat(a.ints("reps"))}; }

Outputs padV2(const Inputs& in, const Attrs& a) {
  const Value padsV = a.get("paddings");
  const auto& pads = padsV.arr;
  std::vector<int64_t> flat;  // ATen wants last dim first
  for (int64_t d = static_cast<int64_t>(pads.size()) - 1; d >= 0; d--) {
    auto pr = intsOf(pads[d]);
    flat.push_back(pr[0]);
    flat.push_back(pr[1]);
  }
  return {at::constant_pad_nd(in.at(0), flat, a.num("constantValue"))};
}

const KernelEntry kShapeKernels[] = {
    {"Reshape", reshape}, {"Transpose", transpose}, {"Cast", cast},     {"ExpandDims", expandDims},
    {"Reverse", reverse}, {"Slice", slice},         {"StridedSlice", stridedSlice}, {"Concat", concat},
    {"Pack", pack},       {"Unpack", unpack},       {"SplitV", splitV}, {"Tile", tile},
    {"PadV2", padV2},
};
