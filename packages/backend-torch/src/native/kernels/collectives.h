// Collectives through PyTorch's c10d (data parallelism): all-reduce (sum or average) and
// broadcast over the process group distInit made (Gloo; NCCL on GPUs), in ~25 MB buckets.
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

#ifdef ANNEAL_DIST
// The process group's common base: c10d::Backend in libtorch 2.x, ProcessGroup before.
#if TORCH_VERSION_MAJOR >= 2
using ProcessGroupBase = c10d::Backend;
#else
using ProcessGroupBase = c10d::ProcessGroup;
#endif
c10::intrusive_ptr<ProcessGroupBase> g_pg;
std::string g_pg_backend;
int g_rank = -1;
int g_world = 0;

ProcessGroupBase& group() {
  if (!g_pg) throw std::runtime_error("no process group: call distInit first");
  return *g_pg;
}

// Runs one collective over the inputs in buckets of about 25 MB (as DDP's bucket_cap_mb):
// each bucket is copied into one fresh buffer (tfjs tensors are immutable), reduced or
// broadcast in place, and handed back as views of that buffer in the inputs' shapes.
std::vector<at::Tensor> collective(const Inputs& in, const std::function<void(std::vector<at::Tensor>&)>& op) {
  const int64_t cap = 25 << 20;
  std::vector<at::Tensor> out(in.size());
  size_t start = 0;
  while (start < in.size()) {
    size_t end = start;
    int64_t bytes = 0;
    std::vector<at::Tensor> flat;
    while (end < in.size() && (end == start || bytes + in[end].nbytes() <= cap)) {
      if (!isFloat(in[end])) throw std::runtime_error("collectives take float32 tensors");
      flat.push_back(in[end].to(at::kFloat).reshape({-1}));  // a bf16 gradient (precision bf16) is reduced in float32
      bytes += in[end].nbytes();
      end++;
    }
    std::vector<at::Tensor> buffer{flat.size() == 1 ? flat[0].clone(at::MemoryFormat::Contiguous) : at::cat(flat)};
    op(buffer);
    int64_t off = 0;
    for (size_t i = start; i < end; i++) {
      out[i] = buffer[0].narrow(0, off, in[i].numel()).view(in[i].sizes());
      off += in[i].numel();
    }
    start = end;
  }
  return out;
}
#endif

#ifndef ANNEAL_DIST
[[noreturn]] void noCollectives(const char* kernel) {
  throw std::runtime_error(std::string(kernel) + ": this addon was built without collectives (Gloo: apt-get install libgloo-dev, then npm rebuild @anneal/backend-torch)");
}
#endif

Outputs allReduce(const Inputs& in, const Attrs& a) {  // inputs: the tensors to reduce; attr op: sum | avg
#ifdef ANNEAL_DIST
  bool avg = a.str("op") == "avg";
  return collective(in, [&](std::vector<at::Tensor>& buf) {
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    group().allreduce(buf, o)->wait();
    if (avg) buf[0].div_(g_world);
  });
#else
  noCollectives("AnnealAllReduce");
#endif
}

Outputs broadcast(const Inputs& in, const Attrs& a) {  // inputs: the tensors; attr root: the rank whose values all get
#ifdef ANNEAL_DIST
  c10d::BroadcastOptions o;
  o.rootRank = static_cast<int64_t>(a.num("root"));
  return collective(in, [&](std::vector<at::Tensor>& buf) { group().broadcast(buf, o)->wait(); });
#else
  noCollectives("AnnealBroadcast");
#endif
}

const KernelEntry kCollectiveKernels[] = {
    {"AnnealAllReduce", allReduce},
    {"AnnealBroadcast", broadcast},
};
