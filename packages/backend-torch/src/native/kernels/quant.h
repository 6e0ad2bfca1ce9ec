// Dequantization of 4-bit (NF4/FP4) and int8 weights on the device (@anneal/quantization's
// QuantLinear), bit-identical to the host's.
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

Outputs dequant4bit(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs packed 4-bit codes (bytes carried in int32), byte table [256, 2] (a byte's two code values, high nibble first), block absmax [blocks] -> [rows, cols]
  int64_t rows = a.i64("rows"), cols = a.i64("cols"), n = rows * cols, block = a.i64("blockSize");
  const auto& pairs = in.at(1);
  auto bytes = in.at(0).contiguous().view(at::kByte).slice(0, 0, (n + 1) / 2).to(at::kInt);  // int32 indices: half the bytes of int64
  auto vals = pairs.index_select(0, bytes).view({-1}).slice(0, 0, n);  // [n]
  int64_t full = n / block;  // whole blocks scale as one broadcast; a last partial block after
  if (full > 0) vals.slice(0, 0, full * block).view({full, block}).mul_(in.at(2).slice(0, 0, full).unsqueeze(1));
  if (n % block) vals.slice(0, full * block, n).mul_(in.at(2)[full]);
  return {vals.view({rows, cols})};
}

Outputs dequantInt8(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // inputs int8 codes (bytes carried in int32), one scale per row [rows] -> [rows, cols]
  int64_t rows = a.i64("rows"), cols = a.i64("cols");
  auto codes = in.at(0).contiguous().view(at::kChar).slice(0, 0, rows * cols).to(at::kFloat).view({rows, cols});
  return {at::mul(codes, in.at(1).unsqueeze(1))};
}

const KernelEntry kQuantKernels[] = {
    {"AnnealDequant4bit", dequant4bit},
    {"AnnealDequantInt8", dequantInt8},
};
