#!/usr/bin/env bash
# All set-up on a fresh Debian/Ubuntu machine: the native fast path (libtorch + OpenBLAS,
# when we may install system packages) and the npm workspace exactly as package-lock.json
# pins it (npm ci, which builds the libtorch addon if libtorch is present; with libgloo-dev
# it includes the c10d Gloo collectives for data-parallel training), and WordNet for METEOR
# (wordnet-base). Without the system packages Anneal runs on wasm and says so, and METEOR
# asks for WordNet when used.
set -uo pipefail
cd "$(dirname "$0")/.."

want="libtorch-dev libopenblas0-pthread libgloo-dev wordnet-base"
missing=""
for p in $want; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else sudo="none"; fi
  if [ "$sudo" = none ]; then
    echo "setup: cannot install$missing (not root, no sudo): the torch backend will be skipped (Anneal uses wasm) and METEOR will lack WordNet."
  else
    echo "setup: installing$missing (apt)"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null \
      || echo "setup: apt-get install failed: the torch backend will be skipped (Anneal uses wasm) and METEOR will lack WordNet."
  fi
fi
# onnxruntime-node (a test client of the ONNX export) bundles its CPU runtime; its install step
# would fetch the CUDA provider from NuGet, which is neither needed nor reachable here
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
