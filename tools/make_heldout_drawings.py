#!/usr/bin/env python3
"""Draws the built-in world's shapes with an independent renderer (Pillow's ImageDraw), for the
held-out figure of issue #28: "shape on a renderer the model was never trained on".

Nothing here is shared with clipguide's renderers: Pillow draws aliased polygons and ellipses
(no supersampling, no anti-aliasing), with its own outline conventions (arbitrary-aspect
ellipses, rotated boxes, isosceles and scalene triangles, 5- to 7-point stars, plus-shaped
crosses of varied arms, rings drawn as thick ellipse outlines), and colours jittered around the
vocabulary's sRGB values. The model must never be trained on these files.

Two sets, each a folder with PNGs and scenes.jsonl ({"file", "scene"} in clipguide's SceneSpec
JSON, so `clipguide eval --drawings DIR` can probe every attribute):
- centred/: one object about 60 % of the side, centred (the drawings #28 was filed with);
- placed/:  1-3 objects in the 3x3 grid, small or large, counts 1-3.

    python3 tools/make_heldout_drawings.py tests/fixtures/heldout-drawings
"""
import json
import math
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

PALETTE = {  # the vocabulary's colours (crates/clipguide-shapes/src/palette.rs)
    "red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 60, 220),
    "yellow": (245, 220, 30), "orange": (245, 130, 20), "purple": (130, 40, 170),
    "white": (245, 245, 245), "black": (20, 20, 20), "pink": (245, 130, 190),
    "cyan": (40, 210, 220), "brown": (120, 70, 30), "gray": (128, 128, 128),
}
SHAPES = ["circle", "square", "triangle", "star", "cross", "ring"]
PLACEMENTS = ["top_left", "top", "top_right", "left", "center", "right",
              "bottom_left", "bottom", "bottom_right"]
SIDE = 64


def jitter(rgb, rng):
    return tuple(max(0, min(255, c + rng.randint(-12, 12))) for c in rgb)


def rotate(points, cx, cy, angle):
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]


def draw_shape(draw, shape, cx, cy, r, fill, rng):
    angle = rng.uniform(-0.3, 0.3)
    if shape == "circle":
        rx, ry = r * rng.uniform(0.85, 1.0), r * rng.uniform(0.85, 1.0)
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=fill)
    elif shape == "ring":
        rx, ry = r * rng.uniform(0.85, 1.0), r * rng.uniform(0.85, 1.0)
        width = max(2, round(r * rng.uniform(0.3, 0.5)))
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], outline=fill, width=width)
    elif shape == "square":
        h = r * rng.uniform(0.75, 0.9)
        pts = [(-h, -h), (h, -h), (h, h), (-h, h)]
        draw.polygon(rotate(pts, cx, cy, angle * 0.5), fill=fill)
    elif shape == "triangle":
        apex = rng.uniform(-0.3, 0.3) * r
        pts = [(apex, -r), (r, 0.8 * r), (-r, 0.8 * r)]
        draw.polygon(rotate(pts, cx, cy, angle), fill=fill)
    elif shape == "star":
        n = rng.choice([5, 5, 6, 7])
        inner = rng.uniform(0.35, 0.55)
        pts = []
        for k in range(2 * n):
            a = -math.pi / 2 + k * math.pi / n
            rr = r if k % 2 == 0 else r * inner
            pts.append((rr * math.cos(a), rr * math.sin(a)))
        draw.polygon(rotate(pts, cx, cy, angle), fill=fill)
    elif shape == "cross":
        w = r * rng.uniform(0.22, 0.4)
        pts = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r),
               (-w, w), (-r, w), (-r, -w), (-w, -w)]
        draw.polygon(rotate(pts, cx, cy, angle * 0.5), fill=fill)


def group_json(shape, colour, size, count, placement):
    return {"shape": shape, "colour": colour, "size": size, "count": count,
            "placement": placement, "jitter": [0.0, 0.0]}


def centred(rng):
    bg, obj = rng.sample(sorted(PALETTE), 2)
    shape = SHAPES[rng.randrange(6)]
    img = Image.new("RGB", (SIDE, SIDE), jitter(PALETTE[bg], rng))
    r = SIDE * rng.uniform(0.27, 0.33)  # about 60 % of the side
    cx = SIDE / 2 + rng.uniform(-2, 2)
    cy = SIDE / 2 + rng.uniform(-2, 2)
    draw_shape(ImageDraw.Draw(img), shape, cx, cy, r, jitter(PALETTE[obj], rng), rng)
    scene = {"background": bg, "pattern": None,
             "groups": [group_json(shape, obj, "large", 1, "center")]}
    return img, scene


def placed(rng):
    bg, obj = rng.sample(sorted(PALETTE), 2)
    shape = SHAPES[rng.randrange(6)]
    placement = PLACEMENTS[rng.randrange(9)]
    count = rng.choice([1, 1, 1, 2, 3])
    size = "small" if count > 1 else rng.choice(["small", "large"])
    img = Image.new("RGB", (SIDE, SIDE), jitter(PALETTE[bg], rng))
    draw = ImageDraw.Draw(img)
    col, row = PLACEMENTS.index(placement) % 3, PLACEMENTS.index(placement) // 3
    diameter = (0.2 if size == "small" else 0.36) * SIDE * rng.uniform(0.85, 1.15)
    r = diameter / 2
    cx = (col + 0.5) * SIDE / 3
    cy = (row + 0.5) * SIDE / 3
    if count == 1:
        offsets = [(0, 0)]
    elif count == 2:
        offsets = [(-0.62, 0), (0.62, 0)] if rng.random() < 0.5 else [(0, -0.62), (0, 0.62)]
    else:
        offsets = [(-0.62, 0.36), (0.62, 0.36), (0, -0.72)]
    fill = jitter(PALETTE[obj], rng)
    for ox, oy in offsets:
        x = min(max(cx + ox * diameter * 1.1, r + 1), SIDE - r - 1)
        y = min(max(cy + oy * diameter * 1.1, r + 1), SIDE - r - 1)
        draw_shape(draw, shape, x, y, r * (0.9 if count > 1 else 1.0), fill, rng)
    scene = {"background": bg, "pattern": None,
             "groups": [group_json(shape, obj, size, count, placement)]}
    return img, scene


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/heldout-drawings")
    for name, make, n, seed in [("centred", centred, 300, 2801), ("placed", placed, 300, 2802)]:
        rng = random.Random(seed)
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "scenes.jsonl", "w") as f:
            for i in range(n):
                img, scene = make(rng)
                file = f"{i:04d}.png"
                img.save(folder / file, optimize=True)
                f.write(json.dumps({"file": file, "scene": scene}) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
