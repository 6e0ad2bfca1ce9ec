// The tensor store and the numeric policy every kernel shares: tensors live in ATen,
// addressed from JS by integer handles; where new tensors go (g_device); and the
// precision modes (bf16 autocast, bf16 activations, GEMM padding) set by configure().
// Included by addon.cc inside its namespace, after ATen's headers (one translation unit:
// ATen's headers are compiled once for all kernel families).
#pragma once

std::unordered_map<int64_t, at::Tensor> g_tensors;
int64_t g_next_id = 1;
// Downloads (device -> host reads) so far: on a GPU each one waits for the queue to drain,
// so a training step should have none but the logged loss (benchmarks count them).
int64_t g_downloads = 0;
// Where new tensors live (configure({device})), and bf16 autocast (configure({autocast:
// 'bf16'})): as under torch.autocast, float matmuls and attention run in bfloat16 and return
// bfloat16 (so the ops after them save bfloat16 for backward); a bfloat16 tensor meeting a
// float32 one is promoted to float32; norms, softmax and the loss compute and return float32;
// weights, their gradients and optimizer state stay float32.
at::Device g_device(at::kCPU);
bool g_autocast_bf16 = false;
// precision bf16 (configure({precision: 'bf16'})): every activation and its gradient is kept in
// bfloat16 (JS still sees float32 tensors), norm outputs and sums with float32 operands included;
// parameters, optimizer state, reductions and the loss stay float32.
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

bool isFloat(const at::Tensor& t) { return t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16; }

// tfjs keeps int32 results int32 where ATen would promote (e.g. sum of int32 -> int64).
at::Tensor like(const at::Tensor& out, at::ScalarType dtype) {
  // a bfloat16 activation meeting a float32 one is promoted to float32, as in PyTorch
  if (isFloat(out) && (dtype == at::kFloat || dtype == at::kBFloat16)) return out;
  return out.scalar_type() == dtype ? out : out.to(dtype);
}

using Inputs = std::vector<at::Tensor>;
using Outputs = std::vector<at::Tensor>;

/** A native kernel: its inputs in the order the TypeScript table names them, and its attributes. */
using KernelFn = Outputs (*)(const Inputs& in, const Attrs& a);

/** One row of a family's registration list (kernels/table.h gathers them). */
struct KernelEntry {
  const char* name;
  KernelFn fn;
};

// A generator seed from a tfjs seed (a number; Math.random() when none was given: keep its fraction too).
uint64_t seedBits(double seed) {
  return static_cast<uint64_t>(std::fabs(seed)) ^ static_cast<uint64_t>(std::fmod(std::fabs(seed), 1.0) * 9007199254740992.0);
}


// The dtype an activation is kept in: bfloat16 under precision bf16, else as it is.
at::Tensor act(const at::Tensor& t) { return g_precision_bf16 && t.scalar_type() == at::kFloat ? t.to(at::kBFloat16) : t; }

// Under precision bf16, a float32 operand meeting a bfloat16 one is cast down (bias, scale,
// mask), so activations stay bfloat16 instead of being promoted back to float32. Under bf16
// autocast only a float32 operand broadcast against a bfloat16 one is (a linear's bias, which
// torch.autocast casts to bfloat16 with its weight; a mask); same-shape sums (the residual
// stream) promote to float32, and a 0-d scalar is left to ATen (the result keeps the
// tensor's dtype, the scalar its float32 value).
void harmonize(at::Tensor& a, at::Tensor& b) {
  if (!g_precision_bf16 && !g_autocast_bf16) return;
  bool low_a = a.scalar_type() == at::kBFloat16 && b.scalar_type() == at::kFloat;
  bool low_b = b.scalar_type() == at::kBFloat16 && a.scalar_type() == at::kFloat;
  auto broadcast = [](const at::Tensor& small, const at::Tensor& big) { return small.dim() > 0 && small.numel() < big.numel(); };
  if (low_a && (g_precision_bf16 || broadcast(b, a))) b = b.to(at::kBFloat16);
  else if (low_b && (g_precision_bf16 || broadcast(a, b))) a = a.to(at::kBFloat16);
}
