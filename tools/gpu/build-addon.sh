#!/usr/bin/env bash
# Builds the torch addon against the libtorch of a PyTorch install (CUDA builds included):
# torch/include and torch/lib of the Python that `$PYTHON` (default python3) imports.
# Needs node, g++ and Node's N-API headers (NODE_INCLUDE; tools/gpu/pack.sh brings them in
# .gpu/node-include); no node-gyp, no network.
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${PYTHON:-python3}
read -r torch_dir abi version cuda < <("$py" -c 'import os, torch; print(os.path.dirname(torch.__file__), int(torch._C._GLIBCXX_USE_CXX11_ABI), torch.__version__, torch.version.cuda)')
node_inc=${NODE_INCLUDE:-.gpu/node-include}
[ -f "$node_inc/node_api.h" ] || node_inc="$(dirname "$(command -v node)")/../include/node"
[ -f "$node_inc/node_api.h" ] || { echo "build-addon: Node's N-API headers not found (set NODE_INCLUDE)" >&2; exit 1; }
lib="$torch_dir/lib"
cuda_libs=()
extra_flags=()
if [ -f "$lib/libtorch_cuda.so" ]; then
  cuda_libs=(-ltorch_cuda -lc10_cuda)
  # CUDA graphs for recorded steps need the CUDA runtime's headers (cuda_runtime_api.h):
  # CUDA_HOME, the toolkit in /usr/local/cuda*, or the nvidia-* wheels beside PyTorch.
  # ANNEAL_CUDA_GRAPHS=0 builds without them. The runtime itself is not linked here: the
  # addon's cudaGetLastError resolves to the libcudart that libtorch_cuda loads (a second
  # copy from the toolkit would be a second CUDA runtime in the process).
  if [ "${ANNEAL_CUDA_GRAPHS:-1}" != 0 ]; then
    site=$(dirname "$torch_dir")
    nvcc_root=$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /nonexistent/bin/nvcc)")")
    # In this order: a full toolkit first (the nvidia-cu13 wheel's include/ lacks crt/, which
    # cuda_runtime.h needs), then the runtime wheels. A loop, since `ls` would sort them.
    hdr=""
    for d in ${CUDA_HOME:+"$CUDA_HOME"/include} "$nvcc_root"/include /usr/local/cuda/include /usr/local/cuda-*/include \
      "$site"/nvidia/cuda_runtime/include "$site"/nvidia/cu*/include; do
      if [ -f "$d/cuda_runtime_api.h" ] && [ -f "$d/crt/host_config.h" ]; then hdr="$d/cuda_runtime_api.h"; break; fi
    done
    if [ -n "$hdr" ]; then
      extra_flags=(-DANNEAL_CUDA_GRAPHS -I"$(dirname "$hdr")")
      echo "build-addon: CUDA graphs on (headers in $(dirname "$hdr"))"
      # NCCL process groups (one GPU per rank) need nccl.h, from the nvidia-nccl wheel or
      # the toolkit; ProcessGroupNCCL itself is in libtorch_cuda. ANNEAL_NCCL=0: without.
      nccl=""
      for d in "$site"/nvidia/nccl/include "$site"/nvidia/cu*/include "$(dirname "$hdr")" /usr/include; do
        if [ -f "$d/nccl.h" ]; then nccl=$d; break; fi
      done
      if [ "${ANNEAL_NCCL:-1}" != 0 ] && [ -n "$nccl" ] && [ -f "$torch_dir/include/torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp" ]; then
        extra_flags+=(-DANNEAL_NCCL -DUSE_C10D_NCCL -I"$nccl")
        echo "build-addon: NCCL process groups on (nccl.h in $nccl)"
      fi
    else
      echo "build-addon: CUDA graphs off: no cuda_runtime_api.h found (set CUDA_HOME)"
    fi
  fi
fi
# Gloo process groups when this PyTorch ships Gloo's headers (ANNEAL_GLOO=0: without).
if [ "${ANNEAL_GLOO:-1}" != 0 ] && [ -f "$torch_dir/include/gloo/algorithm.h" ]; then
  extra_flags+=(-DANNEAL_GLOO -DUSE_C10D_GLOO)
  echo "build-addon: Gloo process groups on"
fi
out=packages/backend-torch/build/Release
mkdir -p "$out"
echo "build-addon: torch $version (CUDA $cuda, C++11 ABI $abi) in $torch_dir"
# -fopenmp when compiling only: ATen's parallel_for (inline, in its headers) splits the addon's own
# CPU kernels across threads only under _OPENMP; linked without it, the addon takes the OpenMP
# runtime libtorch_cpu loads (PyTorch's wheels bundle their own libgomp; a second would conflict).
g++ -O2 -std=c++17 -fPIC -fvisibility=hidden -fopenmp -c \
  -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -D_GLIBCXX_USE_CXX11_ABI="$abi" \
  -Wno-deprecated-declarations -Wno-unused-parameter \
  -I"$node_inc" -Inode_modules/node-addon-api \
  -I"$torch_dir/include" -I"$torch_dir/include/torch/csrc/api/include" "${extra_flags[@]}" \
  packages/backend-torch/src/native/addon.cc -o "$out/addon.o"
# --no-as-needed: nothing in the addon names a CUDA symbol, but libtorch_cuda must load
# for libtorch to see the GPU (it registers the CUDA kernels and hooks).
g++ -shared "$out/addon.o" -o "$out/anneal_torch.node" \
  -L"$lib" -Wl,-rpath,"$lib" -Wl,--no-as-needed -ltorch "${cuda_libs[@]}" -ltorch_cpu -lc10 -Wl,--as-needed
rm -f "$out/addon.o"
header="$torch_dir/include/torch/version.h"
[ -f "$header" ] || header="$torch_dir/include/torch/csrc/api/include/torch/version.h"
hv=$(node packages/backend-torch/scripts/libtorch.mjs version "$header")
# PyTorch 2.11's version.h states no version the header parser reads: record torch's own.
[ "$hv" != unknown ] || hv=${version%%+*}
printf '{\n  "torchVersion": "%s",\n  "versionHeader": "%s",\n  "libDir": "%s",\n  "builtAt": "%s"\n}\n' "$hv" "$header" "$lib" "$(date -u +%FT%TZ)" > "$out/anneal_torch.json"
echo "build-addon: wrote $out/anneal_torch.node"
