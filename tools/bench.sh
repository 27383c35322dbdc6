#!/usr/bin/env bash
# Runs the Rust and the PyTorch side of the CLIP benchmarks in one go, same thread count, and
# prints both JSON lines and the ratios (Rust / PyTorch; below 1 means Rust is faster).
#   pip install torch transformers tokenizers   # tools only, never CI
#   THREADS=2 RUNS=5 tools/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export THREADS=${THREADS:-2} RUNS=${RUNS:-5}
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
# PROFILE=dev uses the workspace's dev profile, where dependencies (candle, gemm) are built at
# opt-level 3 anyway: nearly release speed without a second full build.
PROFILE=${PROFILE:-release}
dir=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
cargo build --profile "$PROFILE" --example bench_clip >/dev/null
rust=$(./target/$dir/examples/bench_clip)
torch=$(python3 tools/bench_torch.py)
echo "rust:  $rust"
echo "torch: $torch"
python3 - "$rust" "$torch" <<'PY'
import json, sys
r, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for k in ("image_fwd_bwd_b8_224", "text_1000_labels"):
    print(f"{k}: rust {r[k]:.3f}s  torch {t[k]:.3f}s  ratio {r[k]/t[k]:.2f}")
print(f"text padded to 77 (rust): {r['text_1000_labels_pad77']:.3f}s")
print(f"peak RSS: rust {r['peak_rss_mib']:.0f} MiB  torch {t['peak_rss_mib']:.0f} MiB")
PY
