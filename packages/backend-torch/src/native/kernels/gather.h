// Indexing kernels: gathers (GatherV2, GatherNd), scatters (ScatterNd) and segment sums
// (UnsortedSegmentSum: the gradient of an embedding lookup).
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

Outputs gatherV2(const Inputs& in, const Attrs& a) {
  auto x = in.at(0);
  auto idx = in.at(1);
  auto ax = normAxis(a.i64("axis"), x.dim());
  int64_t bd = a.has("batchDims") ? normAxis(a.i64("batchDims"), idx.dim()) : 0;
  if (bd > 0) {  // gather along the axis right after the batch dims (register.ts checks axis == batchDims)
    int64_t batch = 1, n = x.size(ax);
    for (int64_t d = 0; d < bd; d++) batch *= x.size(d);
    std::vector<int64_t> rows{batch * n};
    for (int64_t d = ax + 1; d < x.dim(); d++) rows.push_back(x.size(d));
    auto offsets = at::arange(batch, idx.options().dtype(at::kLong)).mul_(n).unsqueeze(1);
    auto flat = idx.reshape({batch, -1}).to(at::kLong).add(offsets).reshape({-1});
    std::vector<int64_t> shape(idx.sizes().begin(), idx.sizes().end());
    for (int64_t d = ax + 1; d < x.dim(); d++) shape.push_back(x.size(d));
    return {at::index_select(x.reshape(rows), 0, flat).reshape(shape)};
  }
  auto picked = at::index_select(x, ax, idx.reshape({-1}).to(at::kLong));
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().begin() + ax);
  for (auto s : idx.sizes()) shape.push_back(s);
  for (int64_t d = ax + 1; d < x.dim(); d++) shape.push_back(x.size(d));
  return {picked.reshape(shape)};
}

Outputs unsortedSegmentSum(const Inputs& in, const Attrs& a) {
  auto x = in.at(0);
  auto ids = in.at(1).reshape({-1}).to(at::kLong);
  int64_t n = a.i64("numSegments");
  auto rows = x.reshape({ids.size(0), -1});
  std::vector<int64_t> outShape{n};
  for (int64_t d = in.at(1).dim(); d < x.dim(); d++) outShape.push_back(x.size(d));
  auto valid = (ids >= 0).logical_and(ids < n);
  if (rows.scalar_type() == at::kBFloat16) rows = rows.to(at::kFloat);  // an embedding's gradient: accumulated in float32
  auto out = at::zeros({n, rows.size(1)}, rows.options());
  // Out-of-range ids add zero rows to segment 0 (tfjs drops them); no nonzero(), which
  // would read the mask back to the host and stall a GPU queue.
  auto masked = at::where(valid.unsqueeze(1), rows, at::zeros_like(rows));
  out.index_add_(0, at::where(valid, ids, at::zeros_like(ids)), masked);
  return {out.reshape(outShape)};
}

// indices [..., M] address the first M dims of `shape` (params' for GatherNd, the output's
// for ScatterNd): each index row as one offset into those dims flattened.
at::Tensor flatIndices(const at::Tensor& idx, const std::vector<int64_t>& shape, std::vector<int64_t>& flatShape) {
  int64_t m = idx.size(-1), rows = 1;
  for (int64_t d = 0; d < m; d++) rows *= shape[d];
  flatShape = {rows};
  flatShape.insert(flatShape.end(), shape.begin() + m, shape.end());
  std::vector<int64_t> strides(m);
  for (int64_t d = m - 1, st = 1; d >= 0; st *= shape[d], d--) strides[d] = st;
  return idx.to(at::kLong).reshape({-1, m}).mul(at::tensor(strides, opts(at::kLong))).sum(1);  // [L]
}

Outputs gatherNd(const Inputs& in, const Attrs&) {  // inputs params, indices
  const auto& idx = in.at(1);
  auto shape = in.at(0).sizes().vec();
  std::vector<int64_t> flatShape;
  auto flat = flatIndices(idx, shape, flatShape);
  std::vector<int64_t> out(idx.sizes().begin(), idx.sizes().end() - 1);
  out.insert(out.end(), shape.begin() + idx.size(-1), shape.end());
  return {at::index_select(in.at(0).reshape(flatShape), 0, flat).reshape(out)};
}

Outputs scatterNd(const Inputs& in, const Attrs& a) {  // inputs indices, updates
  const auto& idx = in.at(0);
  auto shape = a.ints("shape");
  std::vector<int64_t> flatShape;
  auto flat = flatIndices(idx, shape, flatShape);
  auto upd = in.at(1);
  std::vector<int64_t> updRows{flat.size(0)};
  updRows.insert(updRows.end(), shape.begin() + idx.size(-1), shape.end());
  auto out = at::zeros(flatShape, upd.options());
  out.index_add_(0, flat, upd.reshape(updRows));  // duplicates add up, as in tfjs
  return {out.reshape(shape)};
}

const KernelEntry kGatherKernels[] = {
    {"GatherV2", gatherV2},
    {"UnsortedSegmentSum", unsortedSegmentSum},
    {"GatherNd", gatherNd},
    {"ScatterNd", scatterNd},
};
