// The static key/value cache of generation: one [B, H, L, D] tensor per layer for keys (and
// one for values), allocated once for the whole generation and written in place, instead of
// a concatenation that recopies the whole cache at every token.
// Included by addon.cc inside its namespace (one translation unit), after runtime.h.
#pragma once

// inputs cache [B, H, L, D], update [B, H, T, D], position int32 [1] (the cache index of the
// update's first row) -> the cache itself, rows [position, position + T) replaced. The cache
// is updated in place (it belongs to one generation, nothing else reads it); the output is the
// same tensor, so what reads the cache afterwards depends on the write. The position is a
// tensor, not an attribute: a recorded decode step replays with the next one, and it never
// goes to the host (index_copy_ takes it on the device).
Outputs cacheWrite(const Inputs& in, const Attrs&) {
  auto cache = in.at(0);
  const auto& update = in.at(1);
  auto index = at::arange(update.size(2), cache.options().dtype(at::kLong)).add_(in.at(2).to(at::kLong));
  cache.index_copy_(2, index, update.to(cache.scalar_type()));
  return {cache};
}

const KernelEntry kCacheKernels[] = {
    {"AnnealCacheWrite", cacheWrite},
};
