#!/usr/bin/env bash
# Interleaved rounds of the tower benchmarks, for noisy machines (VMs whose speed drifts by a
# third between minutes): each round runs clipguide on the path this CPU picks, PyTorch, then
# clipguide forced to AVX2, back to back; the medians over rounds and each round's ratio follow.
#   pip install torch transformers tokenizers   # tools only, never CI
#   ROUNDS=4 tools/bench_rounds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export THREADS=${THREADS:-2} ROUNDS=${ROUNDS:-4}
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
cargo build --release --example bench_clip >/dev/null
cargo build --release -p clipguide-guide --example bench_step >/dev/null
log=$(mktemp)
for r in $(seq "$ROUNDS"); do
  {
    ./target/release/examples/bench_step 5
    python3 tools/bench_guide_torch.py 5
    CASES=image RUNS=3 ./target/release/examples/bench_clip
    CASES=image RUNS=3 python3 tools/bench_torch.py
    CLIPGUIDE_ISA=avx2 ./target/release/examples/bench_step 5
    CLIPGUIDE_ISA=avx2 CASES=image RUNS=3 ./target/release/examples/bench_clip
  } | grep '^{' >>"$log"
done
python3 - "$log" <<'PY'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
rounds = [lines[i:i + 6] for i in range(0, len(lines), 6)]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"cpu: {cpu}; isa: rust {rounds[0][0]['isa']} (forced: {rounds[0][4]['isa']}), torch {rounds[0][1]['isa']}; {len(rounds)} rounds")
def case(name, ours, torch, avx2):
    o, t, a = (statistics.median(v) for v in (ours, torch, avx2))
    per = ", ".join(f"{x / y:.2f}" for x, y in zip(ours, torch))
    print(f"{name}: rust {o:.3f}s  torch {t:.3f}s  ratio {o / t:.2f} (rounds: {per})  rust avx2 {a:.3f}s ratio {a / t:.2f}")
case("guide step", [r[0]["median_s"] for r in rounds], [r[1]["median_s"] for r in rounds], [r[4]["median_s"] for r in rounds])
case("image fwd+bwd b8", [r[2]["image_fwd_bwd_b8_224"] for r in rounds], [r[3]["image_fwd_bwd_b8_224"] for r in rounds], [r[5]["image_fwd_bwd_b8_224"] for r in rounds])
case("embed b32 f32", [r[2]["image_embed_b32_224"] for r in rounds], [r[3]["image_embed_b32_224"] for r in rounds], [r[5]["image_embed_b32_224"] for r in rounds])
for name in ("bf16", "f16"):
    k = f"image_embed_b32_224_{name}"
    if all(k in r[2] and k in r[3] for r in rounds):
        o = statistics.median(r[2][k] for r in rounds)
        t = statistics.median(r[3][k] for r in rounds)
        t32 = statistics.median(r[3]["image_embed_b32_224"] for r in rounds)
        per = ", ".join(f"{r[3]['image_embed_b32_224'] / r[2][k]:.2f}" for r in rounds)
        print(f"embed b32 {name}: rust {32 / o:.1f} img/s  torch {name} {32 / t:.1f} img/s, torch f32 {32 / t32:.1f} img/s: rust {name} / torch f32 {t32 / o:.2f}x (rounds: {per})")
PY
rm -f "$log"
