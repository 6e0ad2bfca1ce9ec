#!/usr/bin/env bash
# Runs a command with Anneal on a GPU machine that has a CUDA build of PyTorch but no
# Node.js and no network, from what tools/gpu/pack.sh put in .gpu/: unpacks Node and
# node_modules, builds the torch addon against that PyTorch's libtorch, puts the HF
# fixtures where the tests look (../shared/fixtures), then runs the command.
#   bash tools/gpu/run.sh node node_modules/vitest/vitest.mjs run
#   bash tools/gpu/run.sh node --import tsx tools/bench/gpu-train.ts
set -euo pipefail
cd "$(dirname "$0")/../.."
home=${ANNEAL_GPU_HOME:-/tmp/anneal-gpu}
mkdir -p "$home/bin"
if [ ! -x "$home/bin/node" ]; then xz -dc .gpu/node.xz > "$home/bin/node.tmp" && chmod +x "$home/bin/node.tmp" && mv "$home/bin/node.tmp" "$home/bin/node"; fi
export PATH="$home/bin:$PATH"
if [ ! -f node_modules/.anneal-gpu-unpacked ]; then tar -xJf .gpu/node_modules.tar.xz && touch node_modules/.anneal-gpu-unpacked; fi
if [ -d .gpu/fixtures/hf ] && [ ! -d ../shared/fixtures/hf ]; then mkdir -p ../shared/fixtures && cp -r .gpu/fixtures/hf ../shared/fixtures/; fi
echo "run: node $(node --version), $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
[ -f packages/backend-torch/build/Release/anneal_torch.node ] && [ -z "${ANNEAL_REBUILD:-}" ] || bash tools/gpu/build-addon.sh
export ANNEAL_DEVICE=${ANNEAL_DEVICE:-cuda:0} ANNEAL_REQUIRE_TORCH=1
"$@"
