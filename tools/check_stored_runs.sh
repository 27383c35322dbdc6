#!/usr/bin/env bash
# Re-makes the stored-run fixtures (tests/fixtures/stored-runs, written by an earlier build) two
# ways and compares the pixels with the fixtures': `generate --from-png FIXTURE`, and the command
# line that first made each (tests/fixtures/README.md). Same seed and settings must give the same
# pixels on the machine that wrote them (the parameters chunk may differ: its format is versioned).
# Usage: tools/check_stored_runs.sh [path/to/clipguide]   (default target/release/clipguide)
set -euo pipefail
bin=${1:-target/release/clipguide}
fixtures=tests/fixtures/stored-runs
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
judge=("a red circle in the center on a blue background"
       "a yellow square in the top left corner on a black background"
       "a white star in the top right corner on a purple background")
same() { python3 -c 'import sys; from PIL import Image; a, b = (Image.open(p).convert("RGB") for p in sys.argv[1:]); sys.exit(0 if a.size == b.size and a.tobytes() == b.tobytes() else 1)' "$1" "$2"; }
fails=0
check() { # name, made, how
  if same "$fixtures/$1" "$2"; then echo "same pixels  $1  ($3)"; else echo "DIFFERENT    $1  ($3)"; fails=$((fails + 1)); fi
}
"$bin" generate --from-png "$fixtures/readme.png" -o "$out/readme-png.png" 2>/dev/null
check readme.png "$out/readme-png.png" "--from-png"
"$bin" generate "a red circle on a blue background" --recipe shapes --size 128x128 --steps 150 -o "$out/readme-cmd.png" 2>/dev/null
check readme.png "$out/readme-cmd.png" "command line"
for i in 1 2 3; do
  for recipe in shapes discs fourier; do
    name="judge$i-$recipe.png"
    "$bin" generate --from-png "$fixtures/$name" -o "$out/png-$name" 2>/dev/null
    check "$name" "$out/png-$name" "--from-png"
    extra=(); [ "$recipe" = fourier ] && extra=(--steps 100)
    "$bin" generate "${judge[$((i - 1))]}" --recipe "$recipe" --size 64x64 "${extra[@]}" -o "$out/cmd-$name" 2>/dev/null
    check "$name" "$out/cmd-$name" "command line"
  done
done
echo "$fails of 20 differ"
[ "$fails" -eq 0 ]
