#!/usr/bin/env python3
"""Detection scenes drawn by Pillow, a third drawing path for `examples/detect_ap.rs` (issue #26):
never used while choosing detection settings.

    python3 tools/make_detection_scenes.py OUT [--count 100] [--seed 31]
    DETECT_SCENES=OUT cargo run --release --example detect_ap -- 100

For 1 and 3 objects at 128² and 256², COUNT images each: objects of the six shapes (ellipse,
rectangle, triangle, ten-point star, plus-shaped cross, ring) in Pillow's named colours (CSS
values, not clipguide's palette: "red" is 255,0,0, "brown" 165,42,42 …) on a plain background of
another named colour, 0.15 to 0.4 of the side, anywhere, not overlapping, drawn without
anti-aliasing. OUT/scenes.json lists every image with its objects' labels ("red circle") and
tight boxes [x0, y0, x1, y1) of their drawn pixels.
"""

import argparse
import json
import math
import random
from pathlib import Path

COLOURS = ["red", "green", "blue", "yellow", "orange", "purple", "white", "black", "pink",
           "cyan", "brown", "gray"]
SHAPES = ["circle", "square", "triangle", "star", "cross", "ring"]


def draw_shape(draw, shape, x0, y0, d, fill):
    x1, y1 = x0 + d, y0 + d
    cx, cy = x0 + d / 2, y0 + d / 2
    if shape == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=fill)
    elif shape == "square":
        draw.rectangle([x0, y0, x1, y1], fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=fill)
    elif shape == "star":
        pts = []
        for k in range(10):
            r = d / 2 if k % 2 == 0 else d / 2 * 0.42
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
        draw.polygon(pts, fill=fill)
    elif shape == "cross":
        arm = d * 0.16
        draw.rectangle([cx - arm, y0, cx + arm, y1], fill=fill)
        draw.rectangle([x0, cy - arm, x1, cy + arm], fill=fill)
    else:  # ring
        draw.ellipse([x0, y0, x1, y1], outline=fill, width=max(2, round(d * 0.14)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seed", type=int, default=31)
    args = parser.parse_args()

    from PIL import Image, ImageDraw

    scenes = []
    for objects in (1, 3):
        for size in (128, 256):
            rng = random.Random(args.seed * 1000 + objects * 10 + size)
            folder = args.out / f"{objects}obj-{size}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(args.count):
                bg = rng.choice(COLOURS)
                img = Image.new("RGB", (size, size), bg)
                draw = ImageDraw.Draw(img)
                placed, boxes = [], []
                while len(boxes) < objects:
                    d = rng.uniform(0.15, 0.4) * size
                    x0, y0 = rng.uniform(0, size - d - 1), rng.uniform(0, size - d - 1)
                    if any(x0 < b[2] + 2 and b[0] < x0 + d + 2 and y0 < b[3] + 2 and b[1] < y0 + d + 2
                           for b in placed):
                        continue
                    colour = rng.choice([c for c in COLOURS if c != bg])
                    shape = rng.choice(SHAPES)
                    # The tight box: the shape drawn alone on a mask.
                    mask = Image.new("L", (size, size), 0)
                    draw_shape(ImageDraw.Draw(mask), shape, x0, y0, d, 255)
                    box = mask.getbbox()
                    if box is None:
                        continue
                    draw_shape(draw, shape, x0, y0, d, colour)
                    placed.append((x0, y0, x0 + d, y0 + d))
                    boxes.append({"label": f"{colour} {shape}", "box": list(box)})
                name = f"{i:04d}.png"
                img.save(folder / name)
                scenes.append({"file": f"{folder.name}/{name}", "objects": objects, "size": size,
                               "boxes": boxes})
    (args.out / "scenes.json").write_text(json.dumps(scenes, indent=1))
    print(f"{len(scenes)} scenes in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
