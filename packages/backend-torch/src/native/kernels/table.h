// The registration table: every native kernel by name, gathered from the families in
// kernels/ (one file each, as tfjs's backends register theirs). The TypeScript side names
// the same kernels and the order of their inputs (src/native-kernels.ts for tfjs's own,
// @anneal/core's ANNEAL_KERNELS for Anneal's).
// Included by addon.cc inside its namespace (one translation unit), after the families.
#pragma once

const std::unordered_map<std::string, KernelFn>& kernelTable() {
  static const std::unordered_map<std::string, KernelFn> table = [] {
    std::unordered_map<std::string, KernelFn> t;
    auto add = [&](const auto& family) {
      for (const KernelEntry& e : family)
        if (!t.emplace(e.name, e.fn).second) throw std::logic_error(std::string("kernel ") + e.name + " is registered twice");
    };
    add(kBinaryKernels);
    add(kUnaryKernels);
    add(kElementwiseKernels);
    add(kReduceKernels);
    add(kShapeKernels);
    add(kCreationKernels);
    add(kGatherKernels);
    add(kMatmulKernels);
    add(kActivationKernels);
    add(kNormKernels);
    add(kRopeKernels);
    add(kAttentionKernels);
    add(kCacheKernels);
    add(kSamplingKernels);
    add(kLossKernels);
    add(kOptimizerKernels);
    add(kQuantKernels);
    add(kIoKernels);
    add(kRandomKernels);
    add(kCollectiveKernels);
    return t;
  }();
  return table;
}

/** Runs one kernel by name (what run() from JS and a recorded step's replay call). */
Outputs run(const std::string& k, const Inputs& in, const Attrs& a) {
  const auto& table = kernelTable();
  auto it = table.find(k);
  if (it == table.end()) throw std::runtime_error("no native kernel " + k);
  return it->second(in, a);
}
