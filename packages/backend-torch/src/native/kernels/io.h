// Reading a checkpoint tensor from its safetensors file straight into backend memory.
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

Outputs readFile(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // no inputs; a safetensors tensor's bytes (F32/F16/BF16) read from the file straight into a float32 tensor
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

const KernelEntry kIoKernels[] = {
    {"AnnealReadFile", readFile},
};
