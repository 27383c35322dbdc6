#!/usr/bin/env bash
# Optimiser speed with and without the live preview window (under Xvfb), interleaved runs so
# background load hits both alike; plus the headless frame time at 512². Prints seconds per run.
#   tools/preview_overhead.sh [STEPS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-40}
RUNS=${2:-2}
BIN=${CLIPGUIDE:-target/debug/clipguide}
TMP=$(mktemp -d)
Xvfb :98 -screen 0 1024x768x24 >/dev/null 2>&1 &
XVFB=$!
trap 'kill $XVFB 2>/dev/null || true; rm -rf "$TMP"' EXIT
sleep 1
secs() { python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])'; }
for i in $(seq "$RUNS"); do
  off=$(DISPLAY=:98 "$BIN" generate "a red circle on a blue background" --json --steps "$STEPS" --size 128x128 -o "$TMP/a.png" </dev/null | secs)
  on=$(DISPLAY=:98 "$BIN" generate "a red circle on a blue background" --json --steps "$STEPS" --size 128x128 --preview -o "$TMP/b.png" </dev/null | secs)
  echo "run $i: without window ${off}s, with window ${on}s ($STEPS steps)"
done
# Headless frame time of the preview layout at 512x512 (wgpu on whatever adapter exists).
"$BIN" generate "a red circle on a blue background" --steps 1 --size 128x128 -o "$TMP/c.png" >/dev/null 2>&1
start=$(date +%s.%N)
for i in $(seq 10); do "$BIN" render --image "$TMP/c.png" --size 512x512 -o "$TMP/r.png"; done
end=$(date +%s.%N)
python3 -c "print(f'render 512x512 (process start + adapter + frame), mean of 10: {($end-$start)/10*1000:.0f} ms')"
