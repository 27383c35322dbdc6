#!/usr/bin/env bash
# Indexing throughput (issue #27): `clipguide index` against a PyTorch DataLoader pipeline
# (tools/bench_index_torch.py) on the same folder of JPEGs, same thread budget, one run each,
# for the built-in model and a ViT-B/32-shaped random-weight model (f32 on both sides, and bf16 /
# fp16 on both sides where the CPU has avx512_bf16 / avx512_fp16: clipguide --precision bf16|f16,
# torch autocast).
#   pip install torch torchvision transformers pillow pyarrow   # tools only, never CI
#   THREADS=2 N=5000 tools/bench_index.sh [WORK=/tmp/bench-index]
# clipguide's figure is the whole command's wall time (model load and store write included);
# PyTorch's is timed inside the script from listing the files to the Parquet file written (its
# import and model load excluded). PyTorch runs with 1 and with 2 DataLoader workers (each
# worker one intra-op thread, the main process THREADS); its better figure is the reference.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2} N=${N:-5000}
WORK=${1:-${WORK:-/tmp/bench-index}}
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
mkdir -p "$WORK"
python3 tools/make_jpeg_folder.py "$WORK/jpegs" "$N"
[ -f "$WORK/vitb32/model.safetensors" ] || python3 tools/bench_index_torch.py --make-vitb32 "$WORK/vitb32"
cargo build --release -p clipguide 2>/dev/null
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
bf16=$(grep -qw avx512_bf16 /proc/cpuinfo && echo yes || echo no)
f16=$(grep -qw avx512_fp16 /proc/cpuinfo && echo yes || echo no)
echo "cpu: $cpu; avx512_bf16 $bf16; avx512_fp16 $f16; threads $THREADS; $(find "$WORK/jpegs" -name '*.jpg' | wc -l) JPEGs, $(du -sh "$WORK/jpegs" | cut -f1)"
cases="builtin:f32 vitb32:f32"
[ "$bf16" = yes ] && cases="$cases vitb32:bf16"
[ "$f16" = yes ] && cases="$cases vitb32:f16"
for case in ${CASES:-$cases}; do
    model=${case%:*} precision=${case#*:}
    if [ "$model" = builtin ]; then flag=(); dir=crates/clipguide-clip/assets/default-model
    else flag=(--model "$WORK/vitb32"); dir="$WORK/vitb32"; fi
    torch_flag=(); [ "$precision" != f32 ] && torch_flag=(--autocast "$precision")
    rm -rf "$WORK/store-$case"
    start=$(date +%s.%N)
    ./target/release/clipguide "${flag[@]}" --precision "$precision" index "$WORK/jpegs" \
        --out "$WORK/store-$case" --json >/dev/null
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    rust=$(python3 -c "print(round($N / $secs, 2))")
    best=0
    for workers in 1 2; do
        t=$(python3 tools/bench_index_torch.py "$WORK/jpegs" "$dir" "$WORK/torch-$case.parquet" \
            --workers $workers --threads "$THREADS" "${torch_flag[@]}" 2>/dev/null)
        echo "$case torch: $t"
        ips=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['images_per_s'])" "$t")
        best=$(python3 -c "print(max($best, $ips))")
    done
    echo "$case clipguide: $N images in $secs s = $rust img/s; torch best $best img/s; ratio $(python3 -c "print(round($rust / $best, 2))")x"
done
