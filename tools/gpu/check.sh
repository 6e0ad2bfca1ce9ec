#!/usr/bin/env bash
# All GPU work of a session in one call (about 6 minutes on an H200), from what
# tools/gpu/pack.sh put in .gpu/: builds the addon against the machine's PyTorch (CUDA graphs
# on), runs the GPU test subset on cuda:0, then the benchmark matrix, each side by side with
# its peer in the same run, and prints the table last. Logs, JSON rows and gpu-report.md go
# to $OUT (or /tmp/anneal-gpu-out): build.log, tests.log, gpu-report.md, rows.jsonl and the
# small-shape, profile and generate logs when those run.
#   here:  bash tools/gpu/pack.sh      then, on the GPU machine:  bash tools/gpu/check.sh
# CHECK_ONLY=tests|bench runs one half; CHECK_TESTS (test files) and CHECK_BENCH (run names,
# below) choose a subset. Each stage has its own time limit, so one that hangs costs its
# limit, not the call. At most 8 files come back from the machine: per-run logs stay in /tmp
# and their last lines are printed when a run fails.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/anneal-gpu-out}
rows=/tmp/anneal-gpu-rows  # one JSON file per run; only the report and logs go to $out (8 files come back)
rm -rf "$rows" && mkdir -p "$out" "$rows"
start=$(date +%s)
stamp() { echo "[check +$(($(date +%s) - start))s] $*"; }

# 1. Node, node_modules, fixtures, and the addon (rebuilt without CUDA graphs if that fails).
stamp "build"
# Each build is loaded once to prove it links; a failing one is retried with less: without
# NCCL and Gloo, then without CUDA graphs too. What failed is printed.
probe='const a=require("./packages/backend-torch/build/Release/anneal_torch.node"); console.log(JSON.stringify({gpus:a.info().cudaDevices, torch:a.info().torchVersion, collectives:a.distBackends()}))'
built=""
for flags in "" "ANNEAL_NCCL=0 ANNEAL_GLOO=0" "ANNEAL_NCCL=0 ANNEAL_GLOO=0 ANNEAL_CUDA_GRAPHS=0"; do
  if env $flags ANNEAL_REBUILD=1 bash tools/gpu/run.sh node -e "$probe" >> "$out/build.log" 2>&1; then built="with ${flags:-everything}"; break; fi
  stamp "build with ${flags:-everything} failed:"
  grep -E "error|Error|undefined" "$out/build.log" | tail -12
done
[ -n "$built" ] || { stamp "build failed"; tail -30 "$out/build.log"; exit 1; }
stamp "built $built"
grep -E "build-addon|error" "$out/build.log" | head -20
export PATH="${ANNEAL_GPU_HOME:-/tmp/anneal-gpu}/bin:$PATH" ANNEAL_DEVICE=cuda:0 ANNEAL_REQUIRE_TORCH=1
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
# MFU's peak: the H200's dense bf16 as measured on this workplace's machines (8192^3 bf16
# products through PyTorch, 769-798 TFLOP/s); the H100 SXM datasheet's 989 otherwise.
case "$gpu" in *H200*) export BENCH_PEAK_TFLOPS=790 ;; *) export BENCH_PEAK_TFLOPS=989 ;; esac

# 2. GPU tests: kernel parity, HF fixtures and the recorder on cuda:0 (TF32 off: the
#    fixtures' float32 tolerances).
if [ "${CHECK_ONLY:-}" != bench ]; then
  stamp "tests"
  ANNEAL_TF32=0 timeout 150 node node_modules/vitest/vitest.mjs run ${CHECK_TESTS:-test/recorded-step.test.ts test/precision-bf16.test.ts test/linear-cross-entropy.test.ts test/fused-activations.test.ts test/torch-backend.test.ts packages/backend-torch/src/torch.test.ts packages/backend-torch/src/dist.test.ts} > "$out/tests.log" 2>&1
  echo "tests exit $?"; grep -E "Test Files|Tests |FAIL|✗|×|→|Error" "$out/tests.log" | head -30
fi
[ "${CHECK_ONLY:-}" = tests ] && exit 0

# 3. Benchmarks: GPT-2 124M (seq 1024), transformers (eager, torch.compile) and Anneal
#    (dispatched from JS, recorded step + CUDA graph); LoRA against peft; DPO step.
# The default set fits one call of about 7 minutes on an H200 (estimated from the session-6
# calls; recorded-step, profile and b16-pad ran there and are left out, b16-lce too (b16-best
# includes it); gen, decoding against transformers' generate, and qwen3-lora-graph are estimated
# at ~70 s each); CHECK_BENCH="name …" picks.
DEFAULT_BENCH="b16 b16-graph b16-bf16 b16-best b8 b8-best lora-graph qwen3-lora-graph dpo-recorded gen b16-compile"
bench() {  # name, time limit (s), env...
  local name=$1 limit=$2
  shift 2
  case " ${CHECK_BENCH:-$DEFAULT_BENCH} " in *" $name "*) ;; *) return ;; esac
  stamp "bench $name"
  env BENCH_STEPS=${STEPS:-40} BENCH_WARMUP=${WARMUP:-10} "$@" BENCH_JSON_OUT="$rows/$name.json" \
    timeout "$limit" node --import tsx tools/bench/gpu-train.ts > "/tmp/bench-$name.log" 2>&1 || { echo "  $name: exit $?"; tail -5 "/tmp/bench-$name.log"; }
}
# transformers eager (and Anneal dispatched from JS) at each size: the peers of the rows after
bench b16 120 BENCH_BATCH=16
bench b8 90 BENCH_BATCH=8
# the recorded step (a CUDA graph when the addon has them), 200 steps: memory growth is read over them
bench b16-graph 60 BENCH_BATCH=16 BENCH_HF=0 BENCH_RECORD=1 BENCH_STEPS=200 BENCH_WARMUP=20
bench b8-graph 45 BENCH_BATCH=8 BENCH_HF=0 BENCH_RECORD=1 BENCH_STEPS=200 BENCH_WARMUP=20
# bf16 activations (precision: bf16), padded GEMMs, and both with the recorded step
bench b16-bf16 45 BENCH_BATCH=16 BENCH_HF=0 BENCH_PRECISION=bf16
bench b16-pad 45 BENCH_BATCH=16 BENCH_HF=0 ANNEAL_PAD_GEMM=1
bench b16-all 45 BENCH_BATCH=16 BENCH_HF=0 BENCH_PRECISION=bf16 ANNEAL_PAD_GEMM=1 BENCH_RECORD=1
bench b8-all 45 BENCH_BATCH=8 BENCH_HF=0 BENCH_PRECISION=bf16 ANNEAL_PAD_GEMM=1 BENCH_RECORD=1
# the LM head and loss as one chunked kernel (recorded step), alone and with everything above
bench b16-lce 45 BENCH_BATCH=16 BENCH_HF=0 BENCH_RECORD=1 BENCH_LINEAR_CE=1
bench b16-best 45 BENCH_BATCH=16 BENCH_HF=0 BENCH_PRECISION=bf16 ANNEAL_PAD_GEMM=1 BENCH_RECORD=1 BENCH_LINEAR_CE=1
bench b8-best 45 BENCH_BATCH=8 BENCH_HF=0 BENCH_PRECISION=bf16 ANNEAL_PAD_GEMM=1 BENCH_RECORD=1 BENCH_LINEAR_CE=1
# LoRA against peft, DPO against the same step on transformers, transformers under torch.compile
bench lora-graph 80 BENCH_BATCH=16 BENCH_LORA=1 BENCH_RECORD=1
# a Qwen3-0.6B-shaped LoRA SFT step (random weights, r 16 on all linear layers, 4 x 2048) against peft
bench qwen3-lora-graph 150 BENCH_MODEL=qwen3-0.6b BENCH_BATCH=4 BENCH_LORA=1 BENCH_RECORD=1
bench dpo 100 BENCH_BATCH=8 BENCH_DPO=1
bench dpo-recorded 100 BENCH_BATCH=8 BENCH_DPO=1 BENCH_RECORD=1
# decoding (issue 24's GPU rows): GPT-2 small, 128 new tokens, batch 1, 8 and 64, against
# transformers' generate, float32 without TF32 on both sides
case " ${CHECK_BENCH:-$DEFAULT_BENCH} " in *" gen "*)
  stamp "bench gen (generate against transformers, batch 1/8/64)"
  ANNEAL_TF32=0 BENCH_BATCHES=1,8,64 timeout 120 node --import tsx tools/bench/generate.ts 128 > "$out/generate.log" 2>&1 ||
    { echo "  gen: exit $?"; tail -5 "$out/generate.log"; } ;;
esac
bench b16-compile 150 BENCH_BATCH=16 BENCH_ANNEAL=0 BENCH_HF_COMPILE=1
# runs measured in session 6 (kept for comparison): the recorded step as eager replays
bench b16-recorded 60 BENCH_BATCH=16 BENCH_HF=0 BENCH_RECORD=1
bench b8-recorded 60 BENCH_BATCH=8 BENCH_HF=0 BENCH_RECORD=1
bench lora-recorded 100 BENCH_BATCH=16 BENCH_LORA=1 BENCH_RECORD=1
case " ${CHECK_BENCH:-$DEFAULT_BENCH} " in *" recorded-step "*)
  stamp "recorded-step (small shapes)"
  BENCH_STEPS=30 timeout 60 node --import tsx tools/bench/recorded-step.ts > "$out/recorded-step.log" 2>&1 || echo "  recorded-step: exit $?" ;;
esac
case " ${CHECK_BENCH:-$DEFAULT_BENCH} " in *" profile "*)
  stamp "profile (transformers eager step, kernel families)"
  timeout 60 python3 tools/bench/gpu_profile_hf.py > "$out/profile.log" 2>&1 || { echo "  profile: exit $?"; tail -3 "$out/profile.log"; } ;;
esac
stamp "report"
node tools/gpu/report.mjs "$rows" "$gpu" | tee "$out/gpu-report.md"
cat "$rows"/*.json > "$out/rows.jsonl" 2>/dev/null
[ -f "$out/recorded-step.log" ] && grep -h "^|" "$out/recorded-step.log" | tee -a "$out/gpu-report.md"
[ -f "$out/profile.log" ] && grep -h "^|\|^transformers" "$out/profile.log" | tee -a "$out/gpu-report.md"
[ -f "$out/generate.log" ] && grep -h "^|\|^GPT-2" "$out/generate.log" | tee -a "$out/gpu-report.md"
stamp "done"
