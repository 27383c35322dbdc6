#!/usr/bin/env bash
# Every figure of the built-in model's section of BENCHMARKS.md, in one run:
#   bash tools/eval_builtin.sh [MODEL_DIR]        (no argument: the embedded weights)
# Zero-shot on held-out drawings (seed 12345, never trained on): the world's own shapes scenes,
# canonical and varied; its pictures (object, style); Pillow's drawings (tools/make_heldout_drawings.py,
# a renderer never used in training); each with English and Japanese candidates. Then the
# generation judge with the world recipe on the suites (v4 first: its wording was written by a
# session that never read the caption code, and no caption was changed after it existed, so it is
# the held-out wording test; v3's wording has since gone into the captions), and the design card's
# prompts.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p clipguide >&2
cargo build --release --example judge_suite --example world_gallery >&2
bin=target/release/clipguide
model=()
if [ $# -ge 1 ]; then model=(--model "$1"); fi
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
for lang in en ja; do
  for source in "--count 300" "--count 300 --varied" "--pictures --count 300" \
      "--drawings tests/fixtures/heldout-drawings/centred" \
      "--drawings tests/fixtures/heldout-drawings/placed"; do
    echo "== eval $source --language $lang"
    # shellcheck disable=SC2086
    "$bin" "${model[@]}" eval $source --seed 12345 --language "$lang"
  done
done
for suite in v4 v3 v2 centred v1; do
  echo "== judge_suite --recipe world --suite $suite"
  target/release/examples/judge_suite "${model[@]}" --recipe world --suite "$suite" | tail -1
done
echo "== world_gallery"
target/release/examples/world_gallery "${model[@]}" --out "${GALLERY_OUT:-docs}"
