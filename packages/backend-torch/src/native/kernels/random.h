// Random sampling: Multinomial, seeded as tfjs passes it.
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

Outputs multinomial(const Inputs& in, [[maybe_unused]] const Attrs& a) {  // logits (or probabilities if normalized) [B, N] -> int32 samples [B, numSamples]
  auto probs = a.flag("normalized") ? in.at(0) : at::softmax(in.at(0), -1);
  uint64_t s = seedBits(a.num("seed"));
  auto gen = at::globalContext().defaultGenerator(g_device);
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(s);
  }
  return {at::multinomial(probs, a.i64("numSamples"), true, gen).to(at::kInt)};
}

const KernelEntry kRandomKernels[] = {
    {"Multinomial", multinomial},
};
