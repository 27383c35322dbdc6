#!/usr/bin/env bash
# Before/after of each kept optimisation on the image case (ViT-B/32, batch 8 at 224², forward +
# backward to the pixels), same binary, switched by environment variables:
#   CLIPGUIDE_UNFUSED=1          candle composites and candle-nn's batched linear (the starting point)
#   CLIPGUIDE_NO_FUSED_LAYER=1   fused per-op kernels but not the whole-layer node
#   CLIPGUIDE_DEFAULT_MALLOC=1   glibc's default malloc thresholds
#   THREADS=2 RUNS=3 tools/bench_ablation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export RAYON_NUM_THREADS=${THREADS:-2} RUNS=${RUNS:-3} CASES=image
cargo build --release --example bench_clip >/dev/null
run() { echo "$1: $(env $2 ./target/release/examples/bench_clip)"; }
run "candle composites, default malloc" "CLIPGUIDE_UNFUSED=1 CLIPGUIDE_DEFAULT_MALLOC=1"
run "+ fused kernels (linear, layer norm, softmax, quick_gelu, attention)" "CLIPGUIDE_NO_FUSED_LAYER=1 CLIPGUIDE_DEFAULT_MALLOC=1"
run "+ malloc keeps large blocks" "CLIPGUIDE_NO_FUSED_LAYER=1"
run "+ whole-layer node and class-token-only last layer (all kept optimisations)" ""
