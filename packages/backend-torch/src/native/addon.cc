// Anneal's tfjs backend on libtorch: tensors live in ATen, addressed from JS by integer
// handles; `run(kernel, inputs, attrs)` executes one tfjs kernel with ATen calls.
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

std::unordered_map<int64_t, at::Tensor> g_tensors;
int64_t g_next_id = 1;
// Downloads (device -> host reads) so far: on a GPU each one waits for the queue to drain,
// so a training step should have none but the logged loss (benchmarks count them).
int64_t g_downloads = 0;
// Where new tensors live (configure({device})), and whether float matmuls and attention
// run in bfloat16 with float32 results (configure({autocast: 'bf16'}); weights stay f32).
at::Device g_device(at::kCPU);
bool g_autocast_bf16 = false;
// precision bf16 (configure({precision: 'bf16'})): activations and their gradients are kept in
// bfloat16 (JS still sees float32 tensors); parameters, optimizer state, reductions, norms and
// the loss stay float32. Products run as under bf16 autocast but keep their bf16 results.
bool g_precision_bf16 = false;
// Pad GEMM dimensions (>= 1024, not a multiple of 8) to a multiple of 64 in bf16 products:
// cuBLAS falls back to slow unaligned kernels for an odd leading dimension such as GPT-2's
// vocabulary of 50257 (configure({padGemm}) / ANNEAL_PAD_GEMM=1).
bool g_pad_gemm = false;

at::TensorOptions opts(at::ScalarType dtype) { return at::TensorOptions().dtype(dtype).device(g_device); }

// ------------------------------------------------------------------ handles

int64_t put(at::Tensor t) {
  int64_t id = g_next_id++;
  g_tensors.emplace(id, std::move(t));
  return id;
}

const at::Tensor& get(int64_t id) {
  auto it = g_tensors.find(id);
  if (it == g_tensors.end()) throw std::runtime_error("unknown tensor handle " + std::to_string(id));
  return it->second;
}

at::ScalarType toScalarType(const std::string& dtype) {
  if (dtype == "float32") return at::kFloat;
  if (dtype == "int32") return at::kInt;
  if (dtype == "bool") return at::kBool;
  throw std::runtime_error("dtype " + dtype + " is not supported by the torch backend");
}

std::string dtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kInt: return "int32";
    case at::kBool: return "bool";
    case at::kBFloat16: return "float32";  // precision bf16: an activation; JS sees float32
    default: throw std::runtime_error(std::string("unexpected ATen dtype ") + c10::toString(t));
  }
}

std::vector<int64_t> toShape(const Napi::Value& v) {
  std::vector<int64_t> out;
  if (v.IsNumber()) {
    out.push_back(v.As<Napi::Number>().Int64Value());
    return out;
  }
  auto a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).As<Napi::Number>().Int64Value());
  return out;
}

Napi::Object describe(Napi::Env env, int64_t id, const at::Tensor& t) {
  auto o = Napi::Object::New(env);
  o.Set("id", Napi::Number::New(env, static_cast<double>(id)));
  auto shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); i++) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.size(i))));
  o.Set("shape", shape);
  o.Set("dtype", dtypeName(t.scalar_type()));
  return o;
}

std::vector<int64_t> handlesOf(const Napi::Value& v) {
  std::vector<int64_t> out;
  auto a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).As<Napi::Number>().Int64Value());
  return out;
}

Napi::Array describeAll(Napi::Env env, const std::vector<at::Tensor>& outs) {
  auto result = Napi::Array::New(env, outs.size());
  for (size_t i = 0; i < outs.size(); i++) result.Set(static_cast<uint32_t>(i), describe(env, put(outs[i]), outs[i]));
  return result;
}

int64_t normAxis(int64_t a, int64_t rank) { return a < 0 ? a + rank : a; }

std::vector<int64_t> axesOf(const Attrs& a, const char* key, int64_t rank) {
  std::vector<int64_t> axes;
  if (!a.has(key)) {
    for (int64_t i = 0; i < rank; i++) axes.push_back(i);
    return axes;
  }
  for (auto x : a.ints(key)) axes.push_back(normAxis(x, rank));
  return axes;
}

// tfjs keeps int32 results int32 where ATen would promote (e.g. sum of int32 -> int64).
at::Tensor like(const at::Tensor& out, at::ScalarType dtype) {
  return out.scalar_type() == dtype ? out : out.to(dtype);
}

// ------------------------------------------------------------------ kernels

using Inputs = std::vector<at::Tensor>;

bool isFloat(const at::Tensor& t) { return t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16; }

// The dtype an activation is kept in: bfloat16 under precision bf16, else as it is.
at::Tensor act(const at::Tensor& t) { return g_precision_bf16 && t.scalar_type() == at::kFloat ? t.to(at::kBFloat16) : t; }

// Under precision bf16, a float32 operand meeting a bfloat16 one is cast down (bias, scale,
// mask), so activations stay bfloat16 instead of being promoted back to float32.
void harmonize(at::Tensor& a, at::Tensor& b) {
  if (!g_precision_bf16) return;
  if (a.scalar_type() == at::kBFloat16 && b.scalar_type() == at::kFloat) b = b.to(at::kBFloat16);
  else if (b.scalar_type() == at::kBFloat16 && a.scalar_type() == at::kFloat) a = a.to(at::kBFloat16);
}

int64_t gemmPad(int64_t d) { return (!g_pad_gemm || d < 1024 || d % 8 == 0) ? d : (d + 63) / 64 * 64; }

// t [..., r0, c0] as dtype [..., r, c], zeros in the padding (one copy, the cast included).
at::Tensor padCast(const at::Tensor& t, int64_t r, int64_t c, at::ScalarType dtype) {
  int64_t r0 = t.size(-2), c0 = t.size(-1);
  if (r == r0 && c == c0) return t.to(dtype);
  auto sizes = t.sizes().vec();
  sizes[sizes.size() - 2] = r;
  sizes.back() = c;
  auto out = at::empty(sizes, t.options().dtype(dtype));
  out.narrow(-2, 0, r0).narrow(-1, 0, c0).copy_(t);
  if (c > c0) out.narrow(-1, c0, c - c0).zero_();
  if (r > r0) out.narrow(-2, r0, r - r0).narrow(-1, 0, c0).zero_();
  return out;
}

// A float matrix product. Under bf16 autocast the inputs are bfloat16 and the sum is
// accumulated in float32, as cuBLAS does for torch.autocast; on cpu the inputs are rounded
// to bfloat16 and multiplied in float32 (the same numbers, not faster), because CPU
// builds without oneDNN accumulate bfloat16 products in bfloat16 (errors of ~10%). The
// result is float32 under autocast and bfloat16 under precision bf16. With GEMM padding,
// large unaligned dimensions are padded with zeros and the result narrowed back (exact).
at::Tensor product(const at::Tensor& x, const at::Tensor& y) {
  if ((g_autocast_bf16 || g_precision_bf16) && isFloat(x) && isFloat(y)) {
    int64_t M = x.size(-2), K = x.size(-1), N = y.size(-1);
    int64_t Mp = gemmPad(M), Kp = gemmPad(K), Np = gemmPad(N);
    bool pad = Mp != M || Kp != K || Np != N;
    at::ScalarType dt = x.is_cuda() ? at::kBFloat16 : at::kFloat;
    auto in = [&](const at::Tensor& t, int64_t r, int64_t c) {
      auto rounded = x.is_cuda() ? t : t.to(at::kBFloat16);  // cpu: bf16-rounded, multiplied in float32
      return pad ? padCast(rounded, r, c, dt) : rounded.to(dt);
    };
    auto out = at::matmul(in(x, Mp, Kp), in(y, Kp, Np));
    if (pad) out = out.narrow(-2, 0, M).narrow(-1, 0, N);
    return g_precision_bf16 ? out.to(at::kBFloat16).contiguous() : out.to(at::kFloat).contiguous();
  }
  // tfjs hands every product over as rank 3; a batch of one is a plain GEMM, and
  // at::mm passes the transposes to BLAS instead of copying (as nn.Linear does).
  if (x.dim() == 3 && y.dim() == 3 && x.size(0) == 1 && y.size(0) == 1) return at::mm(x[0], y[0]).unsqueeze(0);
  return at::matmul(x, y);
}

#ifdef ANNEAL_TORCH2
// Attention on a GPU through at::scaled_dot_product_attention, which picks the flash or
// memory-efficient kernel (no [T, T] probabilities in memory). Its backward is the one
// libtorch's autograd records: q, k, v enter as leaves that require grad, and y keeps the
// graph. Returns y detached (for the forward), y with its graph, and the three leaves:
// AnnealAttentionGrad (autograd) takes those back. `causal` says the bias is exactly the
// causal mask (no padding, no cache), which lets the flash kernel run without a bias.
std::vector<at::Tensor> fusedAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias, double scale, bool causal) {
  c10::AutoGradMode grad_on(true);
  auto ql = q.detach().requires_grad_(), kl = k.detach().requires_grad_(), vl = v.detach().requires_grad_();
  auto cast = [](const at::Tensor& t) { return g_autocast_bf16 || g_precision_bf16 ? t.to(at::kBFloat16) : t; };
  c10::optional<at::Tensor> mask;
  if (!causal) mask = cast(bias);
  auto y = at::scaled_dot_product_attention(cast(ql), cast(kl), cast(vl), mask, 0.0, causal, scale);
  if (y.scalar_type() != at::kFloat && !g_precision_bf16) y = y.to(at::kFloat);
  return {y.detach(), y, ql, kl, vl};
}

// One AdamW step for all parameters on a GPU with at::_fused_adamw_ (one multi-tensor
// kernel per weight-decay group, as torch.optim.AdamW(fused=True)), updating in place.
// `n` inputs are (p, g, m, v) quadruples; with `lr` and `step` given as device tensors (a
// recorded step replays with new values) the kernel reads both on the device.
// Returns false, changing nothing, when it does not apply (see the caller).
bool fusedAdamW(const Inputs& in, size_t n, const at::Tensor& lrT, const at::Tensor& stepT, const Attrs& a, std::vector<at::Tensor>& outs) {
  if ((!stepT.defined() && !a.has("step")) || n == 0 || !in[0].is_cuda()) return false;
  for (size_t i = 0; i < n; i++) {
    if (in[i].scalar_type() != at::kFloat || !in[i].is_contiguous()) return false;
    if (i % 4 != 1 && in[i].storage().use_count() != 1) return false;  // p, m, v must be ours alone
  }
  const Value wdArr = a.get("weightDecays");
  std::vector<double> decays;
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i * 4 < n; i++) {
    double wd = wdArr.arr.at(i).num;
    auto pos = std::find(decays.begin(), decays.end(), wd);
    if (pos == decays.end()) {
      decays.push_back(wd);
      groups.emplace_back();
      pos = decays.end() - 1;
    }
    groups[pos - decays.begin()].push_back(i);
  }
  c10::NoGradGuard no_grad;
  auto step = stepT.defined() ? stepT : at::full({}, a.num("step"), in[0].options());  // read by the kernel for bias correction
  for (size_t gi = 0; gi < groups.size(); gi++) {
    std::vector<at::Tensor> p, g, m, v, steps;
    for (auto i : groups[gi]) {
      p.push_back(in[4 * i]);
      g.push_back(in[4 * i + 1]);
      m.push_back(in[4 * i + 2]);
      v.push_back(in[4 * i + 3]);
      steps.push_back(step);
    }
    if (lrT.defined())
      at::_fused_adamw_(p, g, m, v, {}, steps, lrT, a.num("beta1"), a.num("beta2"), decays[gi], a.num("eps"), false, false, c10::nullopt, c10::nullopt);
    else
      at::_fused_adamw_(p, g, m, v, {}, steps, a.num("lr"), a.num("beta1"), a.num("beta2"), decays[gi], a.num("eps"), false, false, c10::nullopt, c10::nullopt);
  }
  for (size_t i = 0; i * 4 < n; i++) {
    outs.push_back(in[4 * i]);
    outs.push_back(in[4 * i + 2]);
    outs.push_back(in[4 * i + 3]);
  }
  return true;
}
#endif

at::Tensor binary(const std::string& k, at::Tensor a, at::Tensor b) {
  harmonize(a, b);
  if (k == "RealDiv" && a.scalar_type() == at::kBFloat16) return at::div(a, b);
  if (k == "Add") return like(at::add(a, b), a.scalar_type());
  if (k == "Sub") return like(at::sub(a, b), a.scalar_type());
  if (k == "Multiply") return like(at::mul(a, b), a.scalar_type());
  if (k == "RealDiv") return at::div(a.to(at::kFloat), b.to(at::kFloat));
  if (k == "FloorDiv") return like(at::div(a, b, "floor"), a.scalar_type());
  if (k == "Maximum") return at::maximum(a, b);
  if (k == "Minimum") return at::minimum(a, b);
  if (k == "Pow") return like(at::pow(a, b), a.scalar_type());
  if (k == "SquaredDifference") return at::square(at::sub(a, b));
  if (k == "Mod") return at::remainder(a, b);
  if (k == "Less") return at::lt(a, b);
  if (k == "LessEqual") return at::le(a, b);
  if (k == "Greater") return at::gt(a, b);
  if (k == "GreaterEqual") return at::ge(a, b);
  if (k == "Equal") return at::eq(a, b);
  if (k == "NotEqual") return at::ne(a, b);
  if (k == "LogicalAnd") return at::logical_and(a, b);
  if (k == "LogicalOr") return at::logical_or(a, b);
  if (k == "Atan2") return at::atan2(a, b);
  if (k == "Prelu") return at::where(a < 0, at::mul(a, b), a);  // inputs x, alpha
  if (k == "EluGrad") return at::where(b >= 0, a, at::mul(a, at::add(b, 1)));  // inputs dy, y
  throw std::runtime_error("no binary kernel");
}

at::Tensor unary(const std::string& k, const at::Tensor& x, const Attrs& a) {
  if (k == "Neg") return at::neg(x);
  if (k == "Exp") return at::exp(x);
  if (k == "Log") return at::log(x);
  if (k == "Log1p") return at::log1p(x);
  if (k == "Expm1") return at::expm1(x);
  if (k == "Sqrt") return at::sqrt(x);
  if (k == "Rsqrt") return at::rsqrt(x);
  if (k == "Square") return at::square(x);
  if (k == "Abs") return at::abs(x);
  if (k == "Tanh") return at::tanh(x);
  if (k == "Sigmoid") return at::sigmoid(x);
  if (k == "Relu") return at::relu(x);
  if (k == "Erf") return at::erf(x);
  if (k == "Sin") return at::sin(x);
  if (k == "Cos") return at::cos(x);
  if (k == "Floor") return at::floor(x);
  if (k == "Ceil") return at::ceil(x);
  if (k == "Round") return at::round(x);  // both round half to even, like tfjs
  if (k == "Sign") return at::sign(x);
  if (k == "Reciprocal") return at::reciprocal(x);
  if (k == "LogicalNot") return at::logical_not(x);
  if (k == "IsNan") return at::isnan(x);
  if (k == "IsInf") return at::isinf(x);
  if (k == "IsFinite") return at::isfinite(x);
  if (k == "Step") {  // x > 0 ? 1 : alpha (NaN stays NaN)
    auto alpha = a.has("alpha") ? a.num("alpha") : 0.0;
    return at::where(at::isnan(x), x, at::where(x > 0, at::ones_like(x), at::full_like(x, alpha)));
  }
  if (k == "LeakyRelu") return at::leaky_relu(x, a.num("alpha"));
  if (k == "Elu") return at::elu(x);
  if (k == "ClipByValue") return at::clamp(x, a.num("clipValueMin"), a.num("clipValueMax"));
  if (k == "ZerosLike") return at::zeros_like(x);
  if (k == "OnesLike") return at::ones_like(x);
  if (k == "Identity") return x;
  if (k == "Softplus") return at::softplus(x);
  if (k == "Relu6") return at::clamp(x, 0, 6);
  if (k == "Selu") return at::selu(x);
  if (k == "Tan") return at::tan(x);
  if (k == "Asin") return at::asin(x);
  if (k == "Acos") return at::acos(x);
  if (k == "Atan") return at::atan(x);
  if (k == "Sinh") return at::sinh(x);
  if (k == "Cosh") return at::cosh(x);
  if (k == "Asinh") return at::asinh(x);
  if (k == "Acosh") return at::acosh(x);
  if (k == "Atanh") return at::atanh(x);
  if (k == "ExpandDims") return x.unsqueeze(a.i64("dim"));
  if (k == "Reverse") return x.flip(axesOf(a, "dims", x.dim()));
  throw std::runtime_error("no unary kernel");
}

at::Tensor reduce(const std::string& k, const at::Tensor& x, const Attrs& a) {
  const char* axisKey = k == "Max" ? "reductionIndices" : "axis";  // tfjs names it so for Max only
  auto axes = axesOf(a, axisKey, x.dim());
  bool keep = a.flag("keepDims");
  if (x.dim() == 0 || axes.empty()) return x.clone();
  if (k == "Sum" && x.scalar_type() == at::kBFloat16) return at::sum(x, axes, keep, at::kFloat);  // sums and norms in float32
  if (k == "Sum") return like(at::sum(x, axes, keep), x.scalar_type() == at::kBool ? at::kInt : x.scalar_type());
  if (k == "Mean") return at::mean(x.to(at::kFloat), axes, keep);
  if (k == "Prod") {
    at::Tensor r = x;
    std::vector<int64_t> sorted(axes);
    std::sort(sorted.rbegin(), sorted.rend());
    for (auto ax : sorted) r = at::prod(r, ax, keep);
    return like(r, x.scalar_type());
  }
  if (k == "Max") return at::amax(x, axes, keep);
  if (k == "Min") return at::amin(x, axes, keep);
  if (k == "All" || k == "Any") {
    at::Tensor r = x;
    std::vector<int64_t> sorted(axes);
    std::sort(sorted.rbegin(), sorted.rend());
    for (auto ax : sorted) r = k == "All" ? at::all(r, ax, keep) : at::any(r, ax, keep);
    return r;
  }
  throw std::runtime_error("no reduction kernel");
}

// ------------------------------------------------------------------ collectives (c10d)

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

std::vector<at::Tensor> runCollective(const std::string& k, const Inputs& in, const Attrs& a) {
#ifdef ANNEAL_DIST
  if (k == "AnnealAllReduce") {
    bool avg = a.str("op") == "avg";
    return collective(in, [&](std::vector<at::Tensor>& buf) {
      c10d::AllreduceOptions o;
      o.reduceOp = c10d::ReduceOp::SUM;
      group().allreduce(buf, o)->wait();
      if (avg) buf[0].div_(g_world);
    });
  }
  c10d::BroadcastOptions o;
  o.rootRank = static_cast<int64_t>(a.num("root"));
  return collective(in, [&](std::vector<at::Tensor>& buf) { group().broadcast(buf, o)->wait(); });
#else
  (void)in;
  (void)a;
  throw std::runtime_error(k + ": this addon was built without collectives (Gloo: apt-get install libgloo-dev, then npm rebuild @anneal/backend-torch)");
#endif
}

std::vector<at::Tensor> run(const std::string& k, const Inputs& in, const Attrs& a) {
  if (k == "AnnealAllReduce" || k == "AnnealBroadcast") return runCollective(k, in, a);
  static const char* kBinary[] = {"Add", "Sub", "Multiply", "RealDiv", "FloorDiv", "Maximum", "Minimum", "Pow",
                                  "SquaredDifference", "Mod", "Less", "LessEqual", "Greater", "GreaterEqual",
                                  "Equal", "NotEqual", "LogicalAnd", "LogicalOr", "Atan2", "Prelu", "EluGrad"};
  for (auto b : kBinary)
    if (k == b) return {binary(k, in.at(0), in.at(1))};
  if (k == "Sum" || k == "Mean" || k == "Prod" || k == "Max" || k == "Min" || k == "All" || k == "Any") return {reduce(k, in.at(0), a)};

  if (k == "BatchMatMul") {
    at::Tensor x = a.flag("transposeA") ? in.at(0).transpose(-2, -1) : in.at(0);
    at::Tensor y = a.flag("transposeB") ? in.at(1).transpose(-2, -1) : in.at(1);
    return {product(x, y)};
  }
  if (k == "Reshape") return {in.at(0).reshape(a.ints("shape"))};
  if (k == "Transpose") return {in.at(0).permute(a.ints("perm")).contiguous()};
  if (k == "Cast") {
    auto to = toScalarType(a.str("dtype"));
    // tfjs casts float -> int by truncation toward zero, as ATen does.
    return {in.at(0).to(to)};
  }
  if (k == "Softmax") return {at::softmax(in.at(0), normAxis(a.has("dim") ? a.i64("dim") : -1, in.at(0).dim()))};
  if (k == "ArgMax" || k == "ArgMin") {
    auto ax = normAxis(a.ints("axis").at(0), in.at(0).dim());
    auto r = k == "ArgMax" ? at::argmax(in.at(0), ax) : at::argmin(in.at(0), ax);
    return {r.to(at::kInt)};
  }
  if (k == "Slice") {
    auto begin = a.ints("begin");
    auto size = a.ints("size");
    at::Tensor r = in.at(0);
    for (size_t d = 0; d < begin.size(); d++) {
      int64_t len = size[d] < 0 ? r.size(d) - begin[d] : size[d];
      r = r.narrow(static_cast<int64_t>(d), begin[d], len);
    }
    return {r.contiguous()};
  }
  if (k == "Concat" || k == "Pack") {
    Inputs parts = in;  // under precision bf16 one bfloat16 part makes them all bfloat16
    bool low = g_precision_bf16 && std::any_of(parts.begin(), parts.end(), [](const at::Tensor& t) { return t.scalar_type() == at::kBFloat16; });
    if (low)
      for (auto& t : parts)
        if (t.scalar_type() == at::kFloat) t = t.to(at::kBFloat16);
    if (k == "Concat") return {at::cat(parts, normAxis(a.i64("axis"), in.at(0).dim()))};
    return {at::stack(parts, normAxis(a.i64("axis"), in.at(0).dim() + 1))};
  }
  if (k == "Unpack") {
    auto ax = normAxis(a.i64("axis"), in.at(0).dim());
    std::vector<at::Tensor> outs;
    for (auto& t : at::unbind(in.at(0), ax)) outs.push_back(t.contiguous());
    return outs;
  }
  if (k == "SplitV") {
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
    std::vector<at::Tensor> outs;
    for (auto& p : parts) outs.push_back(p.contiguous());
    return outs;
  }
  if (k == "Tile") return {in.at(0).repeat(a.ints("reps"))};
  if (k == "PadV2") {
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
  if (k == "GatherV2") {
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
  if (k == "UnsortedSegmentSum") {
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
  if (k == "OneHot") {
    auto idx = in.at(0).to(at::kLong);
    int64_t depth = a.i64("depth");
    auto valid = (idx >= 0).logical_and(idx < depth);
    auto hot = at::one_hot(idx.clamp(0, depth - 1), depth).logical_and(valid.unsqueeze(-1));
    auto dtype = a.has("dtype") ? toScalarType(a.str("dtype")) : at::kInt;
    auto on = at::full({}, a.num("onValue"), opts(dtype));
    auto off = at::full({}, a.num("offValue"), opts(dtype));
    return {at::where(hot, on, off)};
  }
  if (k == "Select") {
    auto t = in.at(1), e = in.at(2);
    harmonize(t, e);
    return {at::where(in.at(0), t, e)};
  }
  if (k == "AddN") {
    at::Tensor s = in.at(0).clone();
    for (size_t i = 1; i < in.size(); i++) s.add_(in[i]);
    return {s};
  }
  // Fused ops with their backward kernels (used through tf.customGrad by @anneal/modeling).
  // Norms compute in float32 (a bfloat16 activation is widened), their outputs and input
  // gradients are activations (bfloat16 under precision bf16), weight gradients float32.
  if (k == "AnnealLayerNorm") {  // inputs x, gamma, beta over the last dim -> y, mean, rstd
    auto x = in.at(0).to(at::kFloat);
    auto r = at::native_layer_norm(x, {x.size(-1)}, in.at(1), in.at(2), a.num("eps"));
    return {act(std::get<0>(r)), std::get<1>(r), std::get<2>(r)};
  }
  if (k == "AnnealLayerNormGrad") {  // inputs dy, x, gamma, beta, mean, rstd -> dx, dgamma, dbeta
    auto x = in.at(1).to(at::kFloat);
    auto r = at::native_layer_norm_backward(in.at(0).to(at::kFloat), x, {x.size(-1)}, in.at(4), in.at(5), in.at(2), in.at(3), {true, true, true});
    return {act(std::get<0>(r)), std::get<1>(r), std::get<2>(r)};
  }
  if (k == "AnnealCrossEntropySum") {  // inputs logits [N, V], targets [N] (-100 = ignore) -> sum, log-probs
    auto lsm = at::log_softmax(in.at(0).to(at::kFloat), -1);  // in float32 whatever the logits' dtype
    auto loss = at::nll_loss(lsm, in.at(1).to(at::kLong), {}, at::Reduction::Sum, -100);
    return {loss, lsm};
  }
  if (k == "AnnealCrossEntropySumGrad") {  // inputs dy (scalar), log-probs, targets -> dlogits
    auto t = in.at(2).to(at::kLong);
    auto valid = t.ne(-100).to(at::kFloat).unsqueeze(1);
    auto g = at::exp(in.at(1));
    g.scatter_add_(1, t.clamp_min(0).unsqueeze(1), -valid);
    return {g.mul_(valid).mul_(in.at(0))};
  }
  // The LM head and the loss as one kernel, in row chunks: logits [n, V] exist for one chunk
  // at a time (recomputed in backward) instead of [N, V] float32 logits, log-probs and their
  // gradient at once (3 x 3.3 GB for GPT-2 at 16 x 1024 tokens). One more product of the
  // head than the unfused pair (the recomputation); chunk = rows per chunk.
  if (k == "AnnealLinearCrossEntropy") {  // inputs h [N, C], weight [V, C], targets [N] (-100 = ignore) -> loss sum, logsumexp [N]
    const auto &h = in.at(0), &w = in.at(1);
    auto t = in.at(2).to(at::kLong);
    int64_t N = h.size(0), chunk = std::max<int64_t>(1, a.i64("chunk"));
    auto loss = at::zeros({}, h.options().dtype(at::kFloat));
    std::vector<at::Tensor> lses;
    for (int64_t s = 0; s < N; s += chunk) {
      int64_t n = std::min(chunk, N - s);
      auto logits = product(h.narrow(0, s, n), w.t()).to(at::kFloat);  // [n, V]
      auto lse = at::logsumexp(logits, {1});                            // [n]
      auto tc = t.narrow(0, s, n);
      auto picked = logits.gather(1, tc.clamp(0, w.size(0) - 1).unsqueeze(1)).squeeze(1);  // (out-of-range ids: clamped, never a device assert)
      loss.add_(at::where(tc.ne(-100), lse - picked, at::zeros_like(lse)).sum());
      lses.push_back(lse);
    }
    return {loss, at::cat(lses)};
  }
  if (k == "AnnealLinearCrossEntropyGrad") {  // inputs dy (scalar), h, weight, targets, logsumexp -> dh [N, C], dweight [V, C]
    const auto &dy = in.at(0), &h = in.at(1), &w = in.at(2), &lse = in.at(4);
    auto t = in.at(3).to(at::kLong);
    int64_t N = h.size(0), chunk = std::max<int64_t>(1, a.i64("chunk"));
    auto dw = at::zeros(w.sizes(), w.options().dtype(at::kFloat));
    std::vector<at::Tensor> dhs;
    for (int64_t s = 0; s < N; s += chunk) {
      int64_t n = std::min(chunk, N - s);
      auto hc = h.narrow(0, s, n);
      auto tc = t.narrow(0, s, n);
      auto valid = tc.ne(-100).to(at::kFloat).unsqueeze(1);                                  // [n, 1]
      auto g = at::exp(product(hc, w.t()).to(at::kFloat).sub_(lse.narrow(0, s, n).unsqueeze(1)));  // softmax [n, V]
      g.scatter_add_(1, tc.clamp(0, w.size(0) - 1).unsqueeze(1), -valid);                              // - one-hot of the target
      g.mul_(valid).mul_(dy);                                                                 // d loss / d logits
      dhs.push_back(act(product(g, w)));     // [n, C]
      dw.add_(product(g.t(), hc));           // [V, C], summed over chunks in float32
    }
    return {at::cat(dhs), dw};
  }
  if (k == "AnnealAttention") {  // inputs q, k, v [B, H, T, D], additive bias [.., T, T] -> y, probs
#ifdef ANNEAL_TORCH2
    if (in.at(0).is_cuda()) return fusedAttention(in.at(0), in.at(1), in.at(2), in.at(3), a.num("scale"), a.flag("causal"));
#endif
    auto scores = at::add(at::mul(product(in.at(0), in.at(1).transpose(-2, -1)), a.num("scale")), in.at(3));
    auto probs = at::softmax(scores, -1);  // in float32, as under torch.autocast
    return {product(probs, in.at(2)), probs};
  }
#ifdef ANNEAL_TORCH2
  if (k == "AnnealAttentionGrad" && a.flag("autograd")) {  // inputs dy, y (with its graph), q, k, v -> dq, dk, dv
    // Runs the backward of the SDPA kernel that produced y (flash or memory-efficient,
    // whichever at::scaled_dot_product_attention chose) and frees its saved state.
    auto dy = in.at(0).to(in.at(1).scalar_type());  // autograd wants the gradient in y's dtype
    auto g = torch::autograd::grad({in.at(1)}, {in.at(2), in.at(3), in.at(4)}, {dy}, /*retain_graph=*/false);
    return {g[0], g[1], g[2]};
  }
#endif
  if (k == "AnnealAttentionGrad") {  // inputs dy, q, k, v, probs -> dq, dk, dv
    const auto &dy = in.at(0), &q = in.at(1), &kk = in.at(2), &v = in.at(3), &p = in.at(4);
    double scale = a.num("scale");
    auto dv = product(p.transpose(-2, -1), dy);
    auto dp = product(dy, v.transpose(-2, -1));
    auto ds = at::mul(p, at::sub(dp, at::sum(at::mul(dp, p), {-1}, true)));  // softmax backward
    return {at::mul(product(ds, kk), scale), at::mul(product(ds.transpose(-2, -1), q), scale), dv};
  }
  if (k == "AnnealReadFile") {  // no inputs; a safetensors tensor's bytes (F32/F16/BF16) read from the file straight into a float32 tensor
    auto path = a.str("path");
    auto dt = a.str("dtype");
    at::ScalarType src = dt == "F16" ? at::kHalf : dt == "BF16" ? at::kBFloat16 : at::kFloat;
    if (dt != "F32" && dt != "F16" && dt != "BF16") throw std::runtime_error("AnnealReadFile: dtype " + dt + " is not F32, F16 or BF16");
    auto host = at::empty(a.ints("shape"), at::TensorOptions().dtype(src));
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) throw std::runtime_error("cannot open " + path);
    size_t want = host.nbytes();
    if (fseeko(f.get(), static_cast<off_t>(a.i64("offset")), SEEK_SET) != 0 || std::fread(host.data_ptr(), 1, want, f.get()) != want)
      throw std::runtime_error(path + ": the file ended inside a tensor the header describes (changed while reading?)");
    auto t = src == at::kFloat ? host : host.to(at::kFloat);  // safetensors is little-endian, as the hosts libtorch runs on
    return {g_device.is_cpu() ? t : t.pin_memory().to(g_device, /*non_blocking=*/true)};
  }
  if (k == "AnnealDequant4bit") {  // inputs packed 4-bit codes (bytes carried in int32), byte table [256, 2] (a byte's two code values, high nibble first), block absmax [blocks] -> [rows, cols]
    int64_t rows = a.i64("rows"), cols = a.i64("cols"), n = rows * cols, block = a.i64("blockSize");
    const auto& pairs = in.at(1);
    auto bytes = in.at(0).contiguous().view(at::kByte).slice(0, 0, (n + 1) / 2).to(at::kInt);  // int32 indices: half the bytes of int64
    auto vals = pairs.index_select(0, bytes).view({-1}).slice(0, 0, n);  // [n]
    int64_t full = n / block;  // whole blocks scale as one broadcast; a last partial block after
    if (full > 0) vals.slice(0, 0, full * block).view({full, block}).mul_(in.at(2).slice(0, 0, full).unsqueeze(1));
    if (n % block) vals.slice(0, full * block, n).mul_(in.at(2)[full]);
    return {vals.view({rows, cols})};
  }
  if (k == "AnnealDequantInt8") {  // inputs int8 codes (bytes carried in int32), one scale per row [rows] -> [rows, cols]
    int64_t rows = a.i64("rows"), cols = a.i64("cols");
    auto codes = in.at(0).contiguous().view(at::kChar).slice(0, 0, rows * cols).to(at::kFloat).view({rows, cols});
    return {at::mul(codes, in.at(1).unsqueeze(1))};
  }
  // Gated MLP activations, SwiGLU silu(gate) * up and GeGLU gelu(gate) * up, with their
  // backward: one kernel each way, saving gate and up only (the op chain keeps four [.., I]
  // tensors for backward: gate, sigmoid(gate), their product, up).
  if (k == "AnnealGatedAct") {  // inputs gate, up; attr act: silu | gelu | gelu_tanh -> y
    auto g = in.at(0), u = in.at(1);
    harmonize(g, u);
    auto act = a.str("act");
    return {at::mul(act == "silu" ? at::silu(g) : at::gelu(g, act == "gelu_tanh" ? "tanh" : "none"), u)};
  }
  if (k == "AnnealGatedActGrad") {  // inputs dy, gate, up -> dgate, dup
    auto g = in.at(1), u = in.at(2);
    harmonize(g, u);
    auto dy = in.at(0).to(g.scalar_type());
    auto act = a.str("act");
    auto dyu = at::mul(dy, u);
    if (act == "silu") return {at::silu_backward(dyu, g), at::mul(dy, at::silu(g))};
    auto approx = act == "gelu_tanh" ? "tanh" : "none";
    return {at::gelu_backward(dyu, g, approx), at::mul(dy, at::gelu(g, approx))};
  }
  // Rotary position embedding (RoPE, Su et al. 2021): x cos + rotate_half(x) sin with
  // rotate_half(x) = [-x2, x1] over the halves of the last axis; the backward is the
  // transposed rotation, dy cos + [z2, -z1] for z = dy sin. cos and sin stay float32.
  if (k == "AnnealRope") {  // inputs x [B, H, T, D], cos, sin [B|1, 1, T, D] -> y
    const auto &x = in.at(0), &cos = in.at(1), &sin = in.at(2);
    int64_t half = x.size(-1) / 2;
    auto rot = at::cat({at::neg(x.narrow(-1, half, half)), x.narrow(-1, 0, half)}, -1);
    return {at::add(at::mul(x, cos), at::mul(rot, sin)).to(x.scalar_type())};
  }
  if (k == "AnnealRopeGrad") {  // inputs dy, cos, sin -> dx
    const auto &dy = in.at(0), &cos = in.at(1), &sin = in.at(2);
    int64_t half = dy.size(-1) / 2;
    auto z = at::mul(dy, sin);
    auto back = at::cat({z.narrow(-1, half, half), at::neg(z.narrow(-1, 0, half))}, -1);
    return {at::add(at::mul(dy, cos), back).to(dy.scalar_type())};
  }
  // y + u bᵀ with the sum inside the product (addmm: cuBLAS adds into C), for LoRA's term on
  // its base projection: one small GEMM, no separate pass over [N, out]. Under bf16 autocast
  // (float32 y, bfloat16 products) the sum stays outside, as before.
  if (k == "AnnealAddProduct") {  // inputs y [N, out], u [N, r], b [out, r] -> y + u bᵀ
    auto y = in.at(0), u = in.at(1), b = in.at(2);
    if (g_autocast_bf16 && !g_precision_bf16) return {at::add(y, product(u, b.t()))};
    if (g_precision_bf16) {
      y = y.to(at::kBFloat16);
      u = u.to(at::kBFloat16);
      b = b.to(at::kBFloat16);
      if (!y.is_cuda()) return {at::add(y, product(u, b.t()))};  // cpu: bf16-rounded inputs, float32 products (see product)
    }
    return {at::addmm(y, u, b.t())};
  }
  if (k == "AnnealGelu") return {at::gelu(in.at(0), a.str("approximate"))};
  if (k == "AnnealGeluGrad") return {at::gelu_backward(in.at(0).to(in.at(1).scalar_type()), in.at(1), a.str("approximate"))};
  if (k == "AnnealAdamW") {  // inputs: (param, grad, exp_avg, exp_avg_sq) per parameter [, lr, step as 0-d tensors]
    double b1 = a.num("beta1"), b2 = a.num("beta2"), eps = a.num("eps");
    // The per-step scalars come as attributes, or (attr scalarInputs) as the last two
    // inputs, so that a recorded step replays with the new learning rate and step count.
    bool tensors = a.flag("scalarInputs");
    size_t n = in.size() - (tensors ? 2 : 0);
    Inputs ins = in;  // gradients in float32 (bfloat16 ones come from precision bf16)
    for (size_t i = 1; i < n; i += 4)
      if (ins[i].scalar_type() == at::kBFloat16) ins[i] = ins[i].to(at::kFloat);
    at::Tensor lrT = tensors ? ins.at(n) : at::Tensor(), stepT = tensors ? ins.at(n + 1) : at::Tensor();
    std::vector<at::Tensor> outs;
#ifdef ANNEAL_TORCH2
    if (fusedAdamW(ins, n, lrT, stepT, a, outs)) return outs;
#endif
    const Value wdArr = a.get("weightDecays");
    c10::NoGradGuard no_grad;
    // Learning rate and bias corrections: numbers, or 0-d tensors computed on the device.
    at::Tensor bc1T, bc2T;
    if (tensors) {
      bc1T = at::rsub(at::pow(b1, stepT), 1);  // 1 - b1^t
      bc2T = at::rsub(at::pow(b2, stepT), 1);
    }
    double lr = tensors ? 0 : a.num("lr"), bc1 = tensors ? 0 : a.num("biasCorrection1"), bc2 = tensors ? 0 : a.num("biasCorrection2");
    for (size_t i = 0; i * 4 < n; i++) {
      const auto &p = ins[4 * i], &g = ins[4 * i + 1], &m = ins[4 * i + 2], &v = ins[4 * i + 3];
      double wd = wdArr.arr.at(i).num;
      // In place (as torch.optim does) when nothing else views these buffers: tfjs treats
      // tensors as immutable, so a buffer shared with another tensor must not change.
      bool exclusive = p.storage().use_count() == 1 && m.storage().use_count() == 1 && v.storage().use_count() == 1;
      auto m2 = exclusive ? m.mul_(b1).add_(g, 1 - b1) : at::add(at::mul(m, b1), at::mul(g, 1 - b1));
      auto v2 = exclusive ? v.mul_(b2).addcmul_(g, g, 1 - b2) : at::add(at::mul(v, b2), at::mul(at::square(g), 1 - b2));
      at::Tensor p2 = p, update;
      if (tensors) {
        if (wd != 0) p2 = exclusive ? p2.mul_(at::rsub(lrT * wd, 1)) : at::mul(p2, at::rsub(lrT * wd, 1));
        update = at::div(m2, bc1T).div_(at::div(v2, bc2T).sqrt_().add_(eps)).mul_(lrT);
      } else {
        if (wd != 0) p2 = exclusive ? p2.mul_(1 - lr * wd) : at::mul(p2, 1 - lr * wd);
        update = at::div(m2, bc1).div_(at::div(v2, bc2).sqrt_().add_(eps)).mul_(lr);
      }
      outs.push_back(exclusive ? p2.sub_(update) : at::sub(p2, update));
      outs.push_back(m2);
      outs.push_back(v2);
    }
    return outs;
  }
  if (k == "Range") {  // tfjs: ceil((stop - start) / step) elements, like arange
    auto dtype = toScalarType(a.str("dtype"));
    double start = a.num("start"), stop = a.num("stop"), step = a.num("step");
    if ((stop - start) * step <= 0) return {at::empty({0}, opts(dtype))};
    return {at::arange(start, stop, step, opts(at::kDouble)).to(dtype)};
  }
  if (k == "Cumsum") {
    auto x = in.at(0);
    auto ax = normAxis(a.i64("axis"), x.dim());
    bool reverse = a.flag("reverse"), exclusive = a.flag("exclusive");
    auto v = reverse ? x.flip(ax) : x;
    auto c = like(at::cumsum(v, ax), x.scalar_type());
    if (exclusive) c = at::sub(c, v);
    return {reverse ? c.flip(ax) : c};
  }
  if (k == "Fill") {
    auto dtype = toScalarType(a.str("dtype"));
    return {at::full(a.ints("shape"), a.num("value"), opts(dtype))};
  }
  if (k == "TopK") {  // values and int32 indices of the k largest along the last axis
    auto r = at::topk(in.at(0), a.i64("k"), -1, true, true);
    return {std::get<0>(r), std::get<1>(r).to(at::kInt)};
  }
  if (k == "Multinomial") {  // logits (or probabilities if normalized) [B, N] -> int32 samples [B, numSamples]
    auto probs = a.flag("normalized") ? in.at(0) : at::softmax(in.at(0), -1);
    // tfjs passes Math.random() when no seed is given: keep its fraction too.
    double seed = a.num("seed");
    uint64_t s = static_cast<uint64_t>(std::fabs(seed)) ^ static_cast<uint64_t>(std::fmod(std::fabs(seed), 1.0) * 9007199254740992.0);
    auto gen = at::globalContext().defaultGenerator(g_device);
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_current_seed(s);
    }
    return {at::multinomial(probs, a.i64("numSamples"), true, gen).to(at::kInt)};
  }
  if (k == "GatherNd" || k == "ScatterNd") {
    // indices [..., M] address the first M dims of params (or of the output shape for ScatterNd).
    const auto& idx = k == "GatherNd" ? in.at(1) : in.at(0);
    std::vector<int64_t> shape = k == "GatherNd" ? in.at(0).sizes().vec() : a.ints("shape");
    int64_t m = idx.size(-1), rows = 1;
    for (int64_t d = 0; d < m; d++) rows *= shape[d];
    std::vector<int64_t> flatShape{rows};
    flatShape.insert(flatShape.end(), shape.begin() + m, shape.end());
    std::vector<int64_t> strides(m);
    for (int64_t d = m - 1, st = 1; d >= 0; st *= shape[d], d--) strides[d] = st;
    auto flat = idx.to(at::kLong).reshape({-1, m}).mul(at::tensor(strides, opts(at::kLong))).sum(1);  // [L]
    if (k == "GatherNd") {
      std::vector<int64_t> out(idx.sizes().begin(), idx.sizes().end() - 1);
      out.insert(out.end(), shape.begin() + m, shape.end());
      return {at::index_select(in.at(0).reshape(flatShape), 0, flat).reshape(out)};
    }
    auto upd = in.at(1);
    std::vector<int64_t> updRows{flat.size(0)};
    updRows.insert(updRows.end(), shape.begin() + m, shape.end());
    auto out = at::zeros(flatShape, upd.options());
    out.index_add_(0, flat, upd.reshape(updRows));  // duplicates add up, as in tfjs
    return {out.reshape(shape)};
  }
  if (k == "StridedSlice") {  // register.ts resolves masks into per-dim begin/count/stride
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
  if (k == "Cumprod") {
    auto x = in.at(0);
    auto ax = normAxis(a.i64("axis"), x.dim());
    bool reverse = a.flag("reverse");
    auto v = reverse ? x.flip(ax) : x;
    auto c = like(at::cumprod(v, ax), x.scalar_type());
    if (a.flag("exclusive")) c = at::cat({at::ones_like(c.narrow(ax, 0, 1)), c.narrow(ax, 0, c.size(ax) - 1)}, ax);
    return {reverse ? c.flip(ax) : c};
  }
  if (k == "LinSpace") return {at::linspace(a.num("start"), a.num("stop"), a.i64("num"), opts(at::kFloat))};
  if (k == "AnnealRmsNorm") {  // inputs x, weight over the last dim -> y, rstd
    auto x = in.at(0).to(at::kFloat);
    const auto& w = in.at(1);
    auto rstd = at::rsqrt(at::add(at::mean(at::square(x), {-1}, true), a.num("eps")));
    return {act(at::mul(at::mul(x, rstd), w)), rstd};
  }
  if (k == "AnnealRmsNormGrad") {  // inputs dy, x, weight, rstd -> dx, dweight
    auto dy = in.at(0).to(at::kFloat), x = in.at(1).to(at::kFloat);
    const auto &w = in.at(2), &rstd = in.at(3);
    auto xhat = at::mul(x, rstd);
    auto g = at::mul(dy, w);
    auto dx = at::mul(rstd, at::sub(g, at::mul(xhat, at::mean(at::mul(g, xhat), {-1}, true))));
    auto dw = at::mul(dy, xhat).reshape({-1, x.size(-1)}).sum(0);
    return {act(dx), dw};
  }
  return {unary(k, in.at(0), a)};
}

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
