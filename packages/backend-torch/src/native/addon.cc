// Anneal's tfjs backend on libtorch: tensors live in ATen, addressed from JS by integer
// handles; `run(kernel, inputs, attrs)` executes one kernel with ATen calls. This file is
// the N-API surface; the tensor store and numeric policy are runtime.h, the kernels one
// family per file under kernels/, registered by name in kernels/table.h, and recorded
// steps recorder.h. All are one translation unit (ATen's headers are compiled once).
// Every entry point catches C++ exceptions (c10::Error included) and rethrows them as JS
// errors that name the kernel, so a shape or dtype error in libtorch never crashes Node.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <napi.h>
#include <cstdio>
#include <memory>
#include <torch/version.h>
#include "attrs.h"

// CUDA graphs for recorded steps (recorder.h): built when the CUDA runtime's headers are
// found next to a CUDA libtorch (tools/gpu/build-addon.sh defines ANNEAL_CUDA_GRAPHS).
#ifdef ANNEAL_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

// libtorch 2.x (a PyTorch install, CUDA builds included) adds fused attention (SDPA with
// flash / memory-efficient kernels) and a fused multi-tensor AdamW; both are used for
// CUDA tensors. Debian's libtorch 1.13 (the CPU path) has neither.
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/autograd/autograd.h>
#define ANNEAL_TORCH2 1
#endif

// Data parallelism through PyTorch's own collectives (c10d): a TCPStore rendezvous and a
// Gloo process group, when the build found Gloo's headers (Debian: libgloo-dev), and an
// NCCL one (GPUs) when built against a CUDA libtorch with NCCL's headers (ANNEAL_NCCL,
// tools/gpu/build-addon.sh).
#if defined(ANNEAL_GLOO) || defined(ANNEAL_NCCL)
#define ANNEAL_DIST 1
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef ANNEAL_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef ANNEAL_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

#include "runtime.h"

#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "kernels/shape.h"
#include "kernels/creation.h"
#include "kernels/gather.h"
#include "kernels/matmul.h"
#include "kernels/activations.h"
#include "kernels/norms.h"
#include "kernels/rope.h"
#include "kernels/attention.h"
#include "kernels/cache.h"
#include "kernels/sampling.h"
#include "kernels/loss.h"
#include "kernels/adamw.h"
#include "kernels/quant.h"
#include "kernels/io.h"
#include "kernels/random.h"
#include "kernels/collectives.h"
#include "kernels/table.h"

#include "recorder.h"

// ------------------------------------------------------------------ N-API

template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, const std::string& what, F f) {
  try {
    return f();
  } catch (const c10::Error& e) {
    throw Napi::Error::New(info.Env(), "torch backend, " + what + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), "torch backend, " + what + ": " + e.what());
  }
}

// upload(typedArray, shape, dtype) -> id
Napi::Value Upload(const Napi::CallbackInfo& info) {
  return guarded(info, "upload", [&]() -> Napi::Value {
    auto arr = info[0].As<Napi::TypedArray>();
    auto shape = toShape(info[1]);
    auto dtype = toScalarType(info[2].As<Napi::String>().Utf8Value());
    auto bytes = arr.ArrayBuffer().Data();
    auto data = static_cast<uint8_t*>(bytes) + arr.ByteOffset();
    at::ScalarType src = dtype;
    if (dtype == at::kBool) src = at::kByte;  // tfjs stores bool as Uint8Array
    auto host = at::from_blob(data, shape, at::TensorOptions().dtype(src));
    // Copy out of the JS buffer. To a GPU through pinned memory without waiting: a plain
    // copy from pageable memory would drain the device queue at every scalar tfjs uploads.
    auto t = g_device.is_cpu() ? host.clone() : host.pin_memory().to(at::TensorOptions().device(g_device), /*non_blocking=*/true);
    if (dtype == at::kBool) t = t.to(at::kBool);
    auto id = put(t);
    recordUpload(id);
    return Napi::Number::New(info.Env(), static_cast<double>(id));
  });
}

// download(id) -> Float32Array | Int32Array | Uint8Array
Napi::Value Download(const Napi::CallbackInfo& info) {
  return guarded(info, "download", [&]() -> Napi::Value {
    g_downloads++;
    recordDownload();
    auto t = get(info[0].As<Napi::Number>().Int64Value()).to(at::kCPU).contiguous();
    if (t.scalar_type() == at::kBFloat16) t = t.to(at::kFloat);
    auto env = info.Env();
    if (t.scalar_type() == at::kFloat) {
      auto out = Napi::Float32Array::New(env, t.numel());
      std::memcpy(out.Data(), t.data_ptr<float>(), t.numel() * sizeof(float));
      return out;
    }
    if (t.scalar_type() == at::kInt) {
      auto out = Napi::Int32Array::New(env, t.numel());
      std::memcpy(out.Data(), t.data_ptr<int32_t>(), t.numel() * sizeof(int32_t));
      return out;
    }
    auto b = t.to(at::kByte).contiguous();
    auto out = Napi::Uint8Array::New(env, b.numel());
    std::memcpy(out.Data(), b.data_ptr<uint8_t>(), b.numel());
    return out;
  });
}

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  g_tensors.erase(info[0].As<Napi::Number>().Int64Value());
  return info.Env().Undefined();
}

// Bytes held by live tensors, each storage counted once (views share their base's).
Napi::Value Bytes(const Napi::CallbackInfo& info) {
  std::unordered_map<const void*, size_t> storages;
  for (const auto& [id, t] : g_tensors) storages[t.storage().data()] = t.storage().nbytes();
  double total = 0;
  for (const auto& [ptr, n] : storages) total += static_cast<double>(n);
  return Napi::Number::New(info.Env(), total);
}

// deviceMemory() -> {allocated, peak}: bytes the CUDA caching allocator holds for tensors on
// the current device now and at most since the start (torch.cuda.memory_allocated /
// max_memory_allocated); null on the cpu, or in a build without the CUDA headers.
Napi::Value DeviceMemory(const Napi::CallbackInfo& info) {
#ifdef ANNEAL_CUDA_GRAPHS
  if (g_device.is_cuda()) {
    auto index = g_device.has_index() ? g_device.index() : c10::cuda::current_device();
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    auto o = Napi::Object::New(info.Env());
    o.Set("allocated", static_cast<double>(stats.allocated_bytes[0].current));  // [0]: StatType::AGGREGATE
    o.Set("peak", static_cast<double>(stats.allocated_bytes[0].peak));
    return o;
  }
#endif
  return info.Env().Null();
}

Napi::Value Downloads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(g_downloads));
}

Napi::Value Count(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(g_tensors.size()));
}

// run(kernelName, inputIds[], attrs) -> [{id, shape, dtype}, ...]
Napi::Value Run(const Napi::CallbackInfo& info) {
  auto name = info[0].As<Napi::String>().Utf8Value();
  return guarded(info, "kernel " + name, [&]() -> Napi::Value {
    auto ids = handlesOf(info[1]);
    Inputs in;
    for (auto id : ids) in.push_back(get(id));
    Attrs attrs = Attrs::of(info[2]);
    auto outs = run(name, in, attrs);
    std::vector<int64_t> outIds;
    auto result = Napi::Array::New(info.Env(), outs.size());
    for (size_t i = 0; i < outs.size(); i++) {
      outIds.push_back(put(outs[i]));
      result.Set(static_cast<uint32_t>(i), describe(info.Env(), outIds.back(), outs[i]));
    }
    recordCall(name, ids, attrs, outIds);
    return result;
  });
}

// ---- recorded steps (recorder.h)

// recordBegin(inputIds[]): from now on every kernel call and upload is recorded.
Napi::Value RecordBegin(const Napi::CallbackInfo& info) {
  return guarded(info, "recordBegin", [&]() -> Napi::Value {
    if (g_rec) throw std::runtime_error("a recording is already open (nested recordBegin)");
    auto rec = std::make_unique<Recording>();
    g_rec_slot.clear();
    for (auto id : handlesOf(info[0])) {
      rec->signature.push_back(signatureOf(get(id)));
      if (!g_rec_slot.count(id)) g_rec_slot[id] = rec->inputs;
      rec->inputs++;
      rec->slots++;
    }
    int64_t rid = g_next_recording++;
    g_rec = rec.get();
    g_rec_id = rid;
    g_recordings.emplace(rid, std::move(rec));
    return Napi::Number::New(info.Env(), static_cast<double>(rid));
  });
}

// recordEnd(outputIds[]) -> {id, calls, constants, invalid}: closes the recording.
Napi::Value RecordEnd(const Napi::CallbackInfo& info) {
  return guarded(info, "recordEnd", [&]() -> Napi::Value {
    if (!g_rec) throw std::runtime_error("no recording is open");
    Recording& r = *g_rec;
    for (auto id : handlesOf(info[0])) r.outputs.push_back(slotOf(id));
    planReleases(r);
    g_rec = nullptr;
    g_rec_slot.clear();
    auto o = Napi::Object::New(info.Env());
    o.Set("id", static_cast<double>(g_rec_id));
    o.Set("calls", static_cast<double>(r.calls.size()));
    o.Set("constants", static_cast<double>(r.constants.size()));
    o.Set("invalid", r.invalid);
    return o;
  });
}

// recordAbort(): drops the open recording (the step threw).
Napi::Value RecordAbort(const Napi::CallbackInfo& info) {
  if (g_rec) g_recordings.erase(g_rec_id);
  g_rec = nullptr;
  g_rec_slot.clear();
  return info.Env().Undefined();
}

// recordCompare(a, b) -> "" when two recordings are the same program, else why not.
Napi::Value RecordCompare(const Napi::CallbackInfo& info) {
  return guarded(info, "recordCompare", [&]() -> Napi::Value {
    auto& a = recording(info[0].As<Napi::Number>().Int64Value());
    auto& b = recording(info[1].As<Napi::Number>().Int64Value());
    return Napi::String::New(info.Env(), compareRecordings(a, b));
  });
}

// replay(id, inputIds[], cudaGraph) -> outputs as run() returns them.
Napi::Value Replay(const Napi::CallbackInfo& info) {
  return guarded(info, "replay", [&]() -> Napi::Value {
    if (g_rec) throw std::runtime_error("cannot replay while recording");
    auto& r = recording(info[0].As<Napi::Number>().Int64Value());
    if (!r.invalid.empty()) throw std::runtime_error("this recording cannot be replayed: " + r.invalid);
    auto ids = handlesOf(info[1]);
    if (static_cast<int>(ids.size()) != r.inputs) throw std::runtime_error("replay takes " + std::to_string(r.inputs) + " inputs, got " + std::to_string(ids.size()));
    std::vector<at::Tensor> in;
    for (size_t i = 0; i < ids.size(); i++) {
      in.push_back(get(ids[i]));
      if (signatureOf(in.back()) != r.signature[i]) throw std::runtime_error("replay: input " + std::to_string(i) + " is [" + signatureOf(in.back()) + "], recorded [" + r.signature[i] + "]");
    }
#ifdef ANNEAL_CUDA_GRAPHS
    if (info[2].ToBoolean().Value() && g_device.is_cuda() && r.graphPhase >= 0) return describeAll(info.Env(), replayGraph(r, in));
#endif
    return describeAll(info.Env(), execute(r, in));
  });
}

// recordInfo(id) -> {graph: 'none' | 'warm' | 'captured' | 'failed: why' | 'unavailable: why'}
Napi::Value RecordInfo(const Napi::CallbackInfo& info) {
  return guarded(info, "recordInfo", [&]() -> Napi::Value {
    auto& r = recording(info[0].As<Napi::Number>().Int64Value());
    auto o = Napi::Object::New(info.Env());
#ifdef ANNEAL_CUDA_GRAPHS
    o.Set("graph", r.graphPhase == 0 ? "none" : r.graphPhase == 1 ? "warm" : r.graphPhase == 2 ? "captured" : "failed: " + r.graphError);
#else
    (void)r;
    o.Set("graph", "unavailable: the addon was built without CUDA graphs (ANNEAL_CUDA_GRAPHS)");
#endif
    return o;
  });
}

Napi::Value RecordDispose(const Napi::CallbackInfo& info) {
  g_recordings.erase(info[0].As<Napi::Number>().Int64Value());
  return info.Env().Undefined();
}

// distInit({rank, worldSize, masterAddr, masterPort, timeoutMs, backend}): rendezvous through
// a TCPStore served by rank 0, then a Gloo process group over the interface that resolves
// masterAddr, or an NCCL one (backend 'nccl': tensors on this process's GPU). Errors and
// timeouts come back as JS errors naming the rank.
Napi::Value DistInit(const Napi::CallbackInfo& info) {
  Attrs a = Attrs::of(info[0]);
  int rank = static_cast<int>(a.num("rank"));
  return guarded(info, "rank " + std::to_string(rank) + " distInit", [&]() -> Napi::Value {
#ifdef ANNEAL_DIST
    int world = static_cast<int>(a.num("worldSize"));
    std::string backend = a.has("backend") ? a.str("backend") : "gloo";
    if (backend != "gloo" && backend != "nccl") throw std::runtime_error("backend " + backend + " is not a c10d backend here: use gloo or nccl");
#ifndef ANNEAL_NCCL
    if (backend == "nccl") throw std::runtime_error("this addon was built without NCCL (it needs a CUDA libtorch with NCCL: tools/gpu/build-addon.sh)");
#endif
#ifndef ANNEAL_GLOO
    if (backend == "gloo") throw std::runtime_error("this addon was built without Gloo (apt-get install libgloo-dev, then npm rebuild @anneal/backend-torch)");
#endif
    auto timeout = std::chrono::milliseconds(static_cast<int64_t>(a.num("timeoutMs")));
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(a.num("masterPort"));
    so.isServer = rank == 0;
    so.numWorkers = world;
    so.waitWorkers = true;
    so.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(a.str("masterAddr"), so);
#ifdef ANNEAL_NCCL
    if (backend == "nccl") {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      g_pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, options);
    }
#endif
#ifdef ANNEAL_GLOO
    if (backend == "gloo") {
      auto options = c10d::ProcessGroupGloo::Options::create();
      options->timeout = timeout;
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(a.str("masterAddr")));
      g_pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, options);
    }
#endif
    g_pg_backend = backend;
    g_rank = rank;
    g_world = world;
    return info.Env().Undefined();
#else
    throw std::runtime_error("this addon was built without collectives (Gloo: apt-get install libgloo-dev, then npm rebuild @anneal/backend-torch)");
#endif
  });
}

Napi::Value DistBarrier(const Napi::CallbackInfo& info) {
#ifdef ANNEAL_DIST
  return guarded(info, "rank " + std::to_string(g_rank) + " barrier", [&]() -> Napi::Value {
    group().barrier()->wait();
    return info.Env().Undefined();
  });
#else
  return guarded(info, "barrier", [&]() -> Napi::Value { throw std::runtime_error("built without collectives"); });
#endif
}

Napi::Value DistDestroy(const Napi::CallbackInfo& info) {
#ifdef ANNEAL_DIST
  g_pg.reset();
  g_pg_backend.clear();
  g_rank = -1;
  g_world = 0;
#endif
  return info.Env().Undefined();
}

Napi::Value DistAvailable(const Napi::CallbackInfo& info) {
#ifdef ANNEAL_GLOO
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// distBackends() -> the c10d backends this addon was built with ('gloo', 'nccl').
Napi::Value DistBackends(const Napi::CallbackInfo& info) {
  auto out = Napi::Array::New(info.Env());
  uint32_t n = 0;
#ifdef ANNEAL_GLOO
  out.Set(n++, "gloo");
#endif
#ifdef ANNEAL_NCCL
  out.Set(n++, "nccl");
#endif
  (void)n;
  return out;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  at::set_num_threads(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// configure({device, tf32, autocast, precision, padGemm}): where tensors live from now on,
// whether float32 matmuls may use TF32 on GPUs (cuBLAS and cuDNN), bf16 autocast on or off,
// bf16 activations on or off, and GEMM padding on or off.
Napi::Value Configure(const Napi::CallbackInfo& info) {
  return guarded(info, "configure", [&]() -> Napi::Value {
    Attrs a = Attrs::of(info[0]);
    if (a.has("device")) {
      at::Device dev(a.str("device"));
      if (dev.is_cuda()) {
        if (!at::hasCUDA())
          throw std::runtime_error("device " + a.str("device") + " needs a CUDA build of libtorch, and this one (" TORCH_VERSION ") has no CUDA (or no GPU driver)");
        auto n = static_cast<int64_t>(at::getNumGPUs());
        if (dev.index() >= n)
          throw std::runtime_error("device " + a.str("device") + " does not exist: " + std::to_string(n) + " CUDA device(s) visible");
      } else if (!dev.is_cpu()) {
        throw std::runtime_error("device " + a.str("device") + " is not supported: use cpu or cuda:N");
      }
      at::empty({1}, at::TensorOptions().device(dev));  // fails here, not mid-run, if unusable
      g_device = dev;
    }
    if (a.has("tf32")) {
      at::globalContext().setAllowTF32CuBLAS(a.flag("tf32"));
      at::globalContext().setAllowTF32CuDNN(a.flag("tf32"));
    }
    if (a.has("autocast")) {
      auto mode = a.str("autocast");
      if (mode != "bf16" && mode != "none") throw std::runtime_error("autocast " + mode + " is not supported: use bf16 or none");
      g_autocast_bf16 = mode == "bf16";
    }
    if (a.has("precision")) {
      auto mode = a.str("precision");
      if (mode != "bf16" && mode != "float32") throw std::runtime_error("precision " + mode + " is not supported: use bf16 or float32");
      g_precision_bf16 = mode == "bf16";
    }
    if (a.has("padGemm")) g_pad_gemm = a.flag("padGemm");
    return info.Env().Undefined();
  });
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("torchVersion", TORCH_VERSION);
  o.Set("threads", at::get_num_threads());
  o.Set("parallel", at::get_parallel_info());
  o.Set("config", at::show_config());
  o.Set("device", g_device.str());
  o.Set("cudaDevices", static_cast<double>(at::hasCUDA() ? at::getNumGPUs() : 0));
  o.Set("tf32", at::globalContext().allowTF32CuBLAS());
  o.Set("autocast", g_autocast_bf16 ? "bf16" : "none");
  o.Set("precision", g_precision_bf16 ? "bf16" : "float32");
  o.Set("padGemm", g_pad_gemm);
#ifdef ANNEAL_TORCH2
  o.Set("fused", "sdpa, adamw (cuda)");
#else
  o.Set("fused", "none (libtorch < 2)");
#endif
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("upload", Napi::Function::New(env, Upload));
  exports.Set("download", Napi::Function::New(env, Download));
  exports.Set("dispose", Napi::Function::New(env, Dispose));
  exports.Set("count", Napi::Function::New(env, Count));
  exports.Set("downloads", Napi::Function::New(env, Downloads));
  exports.Set("bytes", Napi::Function::New(env, Bytes));
  exports.Set("deviceMemory", Napi::Function::New(env, DeviceMemory));
  exports.Set("run", Napi::Function::New(env, Run));
  exports.Set("recordBegin", Napi::Function::New(env, RecordBegin));
  exports.Set("recordEnd", Napi::Function::New(env, RecordEnd));
  exports.Set("recordAbort", Napi::Function::New(env, RecordAbort));
  exports.Set("recordCompare", Napi::Function::New(env, RecordCompare));
  exports.Set("replay", Napi::Function::New(env, Replay));
  exports.Set("recordInfo", Napi::Function::New(env, RecordInfo));
  exports.Set("recordDispose", Napi::Function::New(env, RecordDispose));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("configure", Napi::Function::New(env, Configure));
  exports.Set("distInit", Napi::Function::New(env, DistInit));
  exports.Set("distBarrier", Napi::Function::New(env, DistBarrier));
  exports.Set("distDestroy", Napi::Function::New(env, DistDestroy));
  exports.Set("distAvailable", Napi::Function::New(env, DistAvailable));
  exports.Set("distBackends", Napi::Function::New(env, DistBackends));
  return exports;
}

}  // namespace

NODE_API_MODULE(anneal_torch, Init)
