// A recorded training step: the sequence of kernel calls one step made, with its tensors
// in numbered slots, replayed later without going back to JS for each kernel.
//
// Why: a GPT-2 step is ~2000 kernels; dispatching each from JS through tfjs and N-API costs
// a few µs, which shows when the GPU finishes its work faster than JS issues it (small
// batches). A replay runs the same `run(kernel, inputs, attrs)` calls from C++, so its
// results are the dispatched step's bit for bit. On CUDA the replay is captured once as a
// CUDA graph (a private memory pool) and the graph is launched each step, which also skips
// libtorch's own per-op launch cost.
//
// Slots: [0, inputs) are the step's declared inputs, bound anew at each replay; tensors a
// call used that were neither inputs nor made inside the step (uploads of constants, tensors
// from before the step such as a cached mask) are captured as constants; every call's
// outputs get fresh slots. A slot is released after its last use, so a replay holds no more
// memory than the dispatched step.
//
// What makes a recording unusable (say so, never replay it): a read back to the host inside
// the step (its control flow may depend on the value). What the recorder cannot see alone —
// a value uploaded from JS that differs between steps (dropout masks, a token count) — the
// caller finds by recording two steps and comparing them (recordCompare): any difference in
// calls, attributes or constant values means the step is not the same program every time.
//
// Included by addon.cc after `run`, `put`, `get` and the tensor table (one translation unit).
// (The CUDA headers it needs are included at the top of addon.cc, outside its namespace.)
#pragma once

struct RecordedCall {
  std::string kernel;
  std::vector<int> in;
  Attrs attrs;
  std::vector<int> out;
  std::vector<int> release;  // slots whose last use is this call (freed after it)
};

struct Recording {
  int inputs = 0;
  int slots = 0;
  std::vector<std::pair<int, at::Tensor>> constants;
  std::vector<RecordedCall> calls;
  std::vector<int> outputs;
  std::vector<std::string> signature;  // dtype and shape of each input
  std::string invalid;                 // why it cannot be replayed; empty when it can
#ifdef ANNEAL_CUDA_GRAPHS
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  int graphPhase = 0;  // 0 none yet, 1 warmed up on the capture stream, 2 captured
  std::string graphError;
  std::vector<at::Tensor> staticIn, staticOut;
  std::vector<bool> inPlace;     // inputs the step updates in place (parameters, moments)
  std::vector<bool> outAliased;  // outputs that are such an input (handed back as they are)
#endif
};

Recording* g_rec = nullptr;                       // the one being recorded
int64_t g_rec_id = 0;                             // and its id
std::unordered_map<int64_t, int> g_rec_slot;      // while recording: tensor handle -> slot
std::unordered_map<int64_t, std::unique_ptr<Recording>> g_recordings;
int64_t g_next_recording = 1;

std::string signatureOf(const at::Tensor& t) {
  std::string s = c10::toString(t.scalar_type());
  for (auto d : t.sizes()) s += "," + std::to_string(d);
  return s;
}

int slotOf(int64_t handle) {
  auto it = g_rec_slot.find(handle);
  if (it != g_rec_slot.end()) return it->second;
  int slot = g_rec->slots++;
  g_rec->constants.emplace_back(slot, get(handle));
  g_rec_slot[handle] = slot;
  return slot;
}

// Hooks called by the N-API entry points while a recording is open.
void recordUpload(int64_t handle) {
  if (g_rec) slotOf(handle);
}

void recordDownload() {
  if (g_rec && g_rec->invalid.empty()) g_rec->invalid = "the step reads a tensor back to the host (its control flow may depend on the value)";
}

void recordCall(const std::string& kernel, const std::vector<int64_t>& in, const Attrs& attrs, const std::vector<int64_t>& out) {
  if (!g_rec) return;
  RecordedCall c{kernel, {}, attrs.frozen(), {}, {}};
  for (auto h : in) c.in.push_back(slotOf(h));
  for (auto h : out) {
    int slot = g_rec->slots++;
    g_rec_slot[h] = slot;
    c.out.push_back(slot);
  }
  if (kernel == "Multinomial" && g_rec->invalid.empty()) g_rec->invalid = "the step samples (Multinomial): a replay would draw the same numbers";
  g_rec->calls.push_back(std::move(c));
}

// Last use of every slot: inputs and outputs are never released; constants stay with the
// recording; everything else goes after the call that reads it last (or at once if unread).
void planReleases(Recording& r) {
  std::vector<int> last(r.slots, -1);
  std::vector<bool> keep(r.slots, false);
  for (int i = 0; i < r.inputs; i++) keep[i] = true;
  for (auto s : r.outputs) keep[s] = true;
  for (auto& [s, t] : r.constants) keep[s] = true;
  for (size_t i = 0; i < r.calls.size(); i++) {
    for (auto s : r.calls[i].in) last[s] = static_cast<int>(i);
    for (auto s : r.calls[i].out) last[s] = std::max(last[s], static_cast<int>(i));
  }
  for (int s = 0; s < r.slots; s++)
    if (!keep[s] && last[s] >= 0) r.calls[last[s]].release.push_back(s);
}

// Runs the recorded calls on `in` (one tensor per input slot) and returns the outputs.
std::vector<at::Tensor> execute(const Recording& r, const std::vector<at::Tensor>& in) {
  std::vector<at::Tensor> slots(r.slots);
  for (int i = 0; i < r.inputs; i++) slots[i] = in[i];
  for (const auto& [s, t] : r.constants) slots[s] = t;
  for (const auto& c : r.calls) {
    Inputs args;
    args.reserve(c.in.size());
    for (auto s : c.in) args.push_back(slots[s]);
    auto outs = run(c.kernel, args, c.attrs);
    if (outs.size() != c.out.size())
      throw std::runtime_error("replay: kernel " + c.kernel + " returned " + std::to_string(outs.size()) + " tensors, recorded " + std::to_string(c.out.size()));
    for (size_t j = 0; j < outs.size(); j++) slots[c.out[j]] = std::move(outs[j]);
    for (auto s : c.release) slots[s].reset();
  }
  std::vector<at::Tensor> outs;
  for (auto s : r.outputs) outs.push_back(slots[s]);
  return outs;
}

Recording& recording(int64_t id) {
  auto it = g_recordings.find(id);
  if (it == g_recordings.end()) throw std::runtime_error("unknown recording " + std::to_string(id));
  return *it->second;
}

// Why two recordings of consecutive steps are not the same program, or "" when they are.
std::string compareRecordings(const Recording& a, const Recording& b) {
  if (!a.invalid.empty()) return a.invalid;
  if (!b.invalid.empty()) return b.invalid;
  if (a.signature != b.signature) return "the inputs' shapes or dtypes differ";
  if (a.calls.size() != b.calls.size()) return "the steps ran " + std::to_string(a.calls.size()) + " and " + std::to_string(b.calls.size()) + " kernels";
  for (size_t i = 0; i < a.calls.size(); i++) {
    const auto &x = a.calls[i], &y = b.calls[i];
    if (x.kernel != y.kernel) return "call " + std::to_string(i) + " is " + x.kernel + " in one step and " + y.kernel + " in the other";
    if (x.in != y.in || x.out != y.out) return "call " + std::to_string(i) + " (" + x.kernel + ") reads or writes other tensors in the two steps";
    if (!(*x.attrs.v == *y.attrs.v)) return "call " + std::to_string(i) + " (" + x.kernel + ") has other attributes in the two steps (a value computed in JS per step?)";
  }
  if (a.outputs != b.outputs) return "the outputs come from other calls in the two steps";
  if (a.constants.size() != b.constants.size()) return "the steps captured " + std::to_string(a.constants.size()) + " and " + std::to_string(b.constants.size()) + " constant tensors";
  for (size_t i = 0; i < a.constants.size(); i++) {
    const auto &x = a.constants[i], &y = b.constants[i];
    if (x.first != y.first) return "constants sit in other slots in the two steps";
    if (x.second.unsafeGetTensorImpl() == y.second.unsafeGetTensorImpl()) continue;
    if (signatureOf(x.second) != signatureOf(y.second) || !at::equal(x.second, y.second))
      return "a tensor made in JS during the step (slot " + std::to_string(x.first) + ", [" + signatureOf(x.second) + "]) has other values in the two steps: pass it as an input";
  }
  return "";
}

#ifdef ANNEAL_CUDA_GRAPHS
// A replay through a CUDA graph. Step 1: an eager replay on a side stream (warms up cuBLAS
// and the allocator there, as CUDA graph capture needs; it is a real step). Step 2: capture
// on that stream into a private pool, then launch the graph (the real step). Later steps:
// copy the inputs that are not updated in place into the graph's static inputs and launch.
// Outputs that alias an input in place are handed back as they are; others are copied out,
// since the next launch overwrites them. A failed capture falls back to eager replays.
std::vector<at::Tensor> replayGraph(Recording& r, const std::vector<at::Tensor>& in) {
  if (r.graphPhase == 0) {
    c10::cuda::device_synchronize();
    auto side = c10::cuda::getStreamFromPool();
    std::vector<at::Tensor> outs;
    {
      c10::cuda::CUDAStreamGuard guard(side);
      outs = execute(r, in);
    }
    c10::cuda::device_synchronize();
    r.inPlace.assign(r.inputs, false);
    for (int i = 0; i < r.inputs; i++)
      for (const auto& o : outs)
        if (o.defined() && in[i].defined() && o.data_ptr() == in[i].data_ptr()) r.inPlace[i] = true;
    r.graphPhase = 1;
    return outs;
  }
  if (r.graphPhase == 1) {
    r.staticIn.clear();
    for (int i = 0; i < r.inputs; i++) r.staticIn.push_back(r.inPlace[i] ? in[i] : in[i].clone());
    c10::cuda::device_synchronize();
    auto side = c10::cuda::getStreamFromPool();
    r.graph = std::make_unique<at::cuda::CUDAGraph>();
    try {
      c10::cuda::CUDAStreamGuard guard(side);
      r.graph->capture_begin();
      try {
        r.staticOut = execute(r, r.staticIn);
      } catch (...) {
        try {
          r.graph->capture_end();
        } catch (...) {
        }
        throw;
      }
      r.graph->capture_end();
    } catch (const c10::Error& e) {
      r.graphError = e.what_without_backtrace();
    } catch (const std::exception& e) {
      r.graphError = e.what();
    }
    c10::cuda::device_synchronize();
    if (!r.graphError.empty()) {
      r.graph.reset();
      r.staticIn.clear();
      r.staticOut.clear();
      r.graphPhase = -1;
      (void)cudaGetLastError();  // a failed capture leaves an error behind; the eager path must not see it
      return execute(r, in);
    }
    c10::cuda::CUDACachingAllocator::emptyCache();  // the eager pool's blocks: the graph has its own now
    r.outAliased.clear();
    for (const auto& o : r.staticOut) {
      bool aliased = false;
      for (int i = 0; i < r.inputs; i++)
        if (r.inPlace[i] && o.data_ptr() == r.staticIn[i].data_ptr()) aliased = true;
      r.outAliased.push_back(aliased);
    }
    r.graphPhase = 2;
  } else {
    for (int i = 0; i < r.inputs; i++)
      if (r.staticIn[i].data_ptr() != in[i].data_ptr()) r.staticIn[i].copy_(in[i], /*non_blocking=*/true);
  }
  r.graph->replay();
  std::vector<at::Tensor> outs;
  for (size_t j = 0; j < r.staticOut.size(); j++) outs.push_back(r.outAliased[j] ? r.staticOut[j] : r.staticOut[j].clone());
  return outs;
}
#endif
