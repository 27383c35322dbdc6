#!/usr/bin/env bash
# Runs the Rust and the PyTorch side of the CLIP benchmarks in one go, same thread count, and
# prints both JSON lines and the ratios (Rust / PyTorch; below 1 means Rust is faster).
#   pip install torch transformers tokenizers   # tools only, never CI
#   THREADS=2 RUNS=5 tools/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export THREADS=${THREADS:-2} RUNS=${RUNS:-5}
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
# PROFILE=dev uses the workspace's dev profile, where dependencies (candle, gemm) are built at
# opt-level 3 anyway: nearly release speed without a second full build.
PROFILE=${PROFILE:-release}
dir=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
cargo build --profile "$PROFILE" --example bench_clip >/dev/null
cargo build --profile "$PROFILE" -p clipguide-guide --example bench_step >/dev/null
STEPS=${STEPS:-5}
# Guidance step (target 1 and its peak RSS, target 4), then the tower cases (targets 2 and 3).
gr=$(./target/$dir/examples/bench_step "$STEPS")
gt=$(python3 tools/bench_guide_torch.py "$STEPS")
rust=$(./target/$dir/examples/bench_clip)
torch=$(python3 tools/bench_torch.py)
echo "guide rust:  $gr"
echo "guide torch: $gt"
echo "rust:  $rust"
echo "torch: $torch"
python3 - "$gr" "$gt" "$rust" "$torch" <<'PY'
import json, sys
gr, gt, r, t = (json.loads(a) for a in sys.argv[1:5])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
print(f"cpu: {cpu}; avx512: {' '.join(sorted(f for f in flags if f.startswith('avx512'))) or 'none'}")
print(f"isa: rust {r.get('isa', '?')} (guide step {gr.get('isa', '?')})  torch {t.get('isa', '?')} (guide step {gt.get('isa', '?')})")
print(f"guide step: rust {gr['median_s']:.3f}s  torch {gt['median_s']:.3f}s  ratio {gr['median_s']/gt['median_s']:.2f}")
print(f"guide peak RSS: rust {gr['peak_rss_mib']:.0f} MiB  torch {gt['peak_rss_mib']:.0f} MiB  ratio {gr['peak_rss_mib']/gt['peak_rss_mib']:.2f}")
for k in ("image_fwd_bwd_b8_224", "text_1000_labels"):
    if k in r and k in t:
        print(f"{k}: rust {r[k]:.3f}s  torch {t[k]:.3f}s  ratio {r[k]/t[k]:.2f}")
# Target 3: images/s of a forward-only batch of 32, against PyTorch's best CPU setting.
if "image_embed_b32_224" in r:
    keys = ("image_embed_b32_224", "image_embed_b32_224_bf16", "image_embed_b32_224_f16")
    for rk in keys:
        for tk in keys:
            if rk in r and tk in t:
                print(f"embed b32 rust {rk[20:] or 'f32'} {32/r[rk]:.1f} img/s vs torch {tk[20:] or 'f32'} {32/t[tk]:.1f} img/s: {t[tk]/r[rk]:.2f}x")
    best = min((k for k in keys if k in t), key=lambda k: t[k])
    print(f"torch's best embedding setting here: {best[20:] or 'f32'} ({32/t[best]:.1f} img/s)")
    for name in ("bf16", "f16"):
        if f"{name}_min_cosine" in r:
            print(f"{name} vs f32 embeddings, min cosine over 32 images: rust {r[f'{name}_min_cosine']}  torch {t.get(f'{name}_min_cosine', '-')}")
# ViT-B/32 at 224², batch 8: 400 tokens × 12 layers × 2·12·768² FLOP forward, the same again
# for the input-gradient backward, plus the patch embedding both ways.
flop = 2 * (400 * 12 * 2 * 12 * 768**2 + 8 * 49 * 2 * 3072 * 768)
# The nominal peak (2 cores × 2.45 GHz × 32 FLOP/cycle = 157 GFLOP/s) assumes the base clock;
# the cores boost above it, so the measured ceiling is OpenBLAS's sgemm (numpy) at a ViT shape.
import os, time
import numpy as np
a = np.random.rand(400, 768).astype(np.float32); b = np.random.rand(768, 3072).astype(np.float32)
a @ b
s = time.perf_counter()
for _ in range(20):
    a @ b
ceiling = 2 * 400 * 768 * 3072 * 20 / (time.perf_counter() - s) / 1e9
for side, d in (("rust", r), ("torch", t)):
    g = flop / d['image_fwd_bwd_b8_224'] / 1e9
    print(f"image fwd+bwd {side}: {g:.0f} GFLOP/s ({g / ceiling:.0%} of the {ceiling:.0f} GFLOP/s OpenBLAS sgemm ceiling; nominal base-clock peak 157)")
if "text_1000_labels_pad77" in r:
    print(f"text padded to 77 (rust): {r['text_1000_labels_pad77']:.3f}s")
print(f"tower peak RSS: rust {r['peak_rss_mib']:.0f} MiB  torch {t['peak_rss_mib']:.0f} MiB")
PY
