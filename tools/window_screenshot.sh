#!/usr/bin/env bash
# Screenshot of a live `clipguide generate --preview` window under Xvfb, kept as
# docs/preview.png. Needs a built binary (cargo build -p clipguide) and lavapipe or a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

# The first `convert` on PATH may not be ImageMagick's; take one that says it is.
find_convert() {
    for c in $(type -ap magick convert convert-im6.q16); do
        if "$c" -version 2>/dev/null | grep -q ImageMagick; then
            echo "$c"
            return
        fi
    done
}
CONVERT=$(find_convert)
if ! command -v Xvfb >/dev/null || ! command -v xwd >/dev/null || [ -z "$CONVERT" ]; then
    apt-get install -y imagemagick x11-apps xvfb
    CONVERT=$(find_convert)
fi

BIN=${CLIPGUIDE:-target/debug/clipguide}
OUT_DIR=$(mktemp -d)
Xvfb :99 -screen 0 1024x768x24 >/dev/null 2>&1 &
XVFB_PID=$!
GEN_PID=
cleanup() {
    [ -n "$GEN_PID" ] && kill "$GEN_PID" 2>/dev/null || true
    kill "$XVFB_PID" 2>/dev/null || true
    rm -rf "$OUT_DIR"
}
trap cleanup EXIT
sleep 1

DISPLAY=:99 "$BIN" generate "a red circle on a blue background" --preview --steps 60 \
    --size 128x128 -o "$OUT_DIR/out.png" --save-every 5 --frames-dir "$OUT_DIR/frames" \
    </dev/null 2>"$OUT_DIR/log" &
GEN_PID=$!

# Shoot once the run is well under way (the window shows every 5th step), before it ends;
# the saved frames tell how far it is (the progress bar hides when stderr is no terminal).
for _ in $(seq 1 600); do
    if ! kill -0 "$GEN_PID" 2>/dev/null; then
        cat "$OUT_DIR/log" >&2
        echo "the run ended before a screenshot was taken" >&2
        exit 1
    fi
    if [ -e "$OUT_DIR/frames/frame_00040.png" ]; then
        step=40
        break
    fi
    sleep 0.5
done
# The window is 768x576 at the top left of the 1024x768 screen: keep just the window.
xwd -root -display :99 | "$CONVERT" xwd:- -crop 768x576+0+0 +repage docs/preview.png
echo "wrote docs/preview.png at step ${step:-?} of 60"
wait "$GEN_PID"
GEN_PID=
