#!/usr/bin/env python3
"""Writes N JPEGs of mixed sizes for the indexing benchmark (issue #27), deterministic per seed.

    python3 tools/make_jpeg_folder.py OUT [N=5000] [--seed 1]

Each image is 256 to 1600 pixels a side (aspect 1:2 to 2:1, as photo libraries mix portrait and
landscape), a smooth two-colour gradient with 3 to 12 random ellipses and rectangles and pixel
noise on top (so JPEG has detail to encode, as in photographs), saved at quality 85 in
sub-folders of 500. Existing files are kept, so a second run only fills what is missing.
"""

import argparse
import random
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("n", type=int, nargs="?", default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    from PIL import Image, ImageDraw

    for i in range(args.n):
        path = args.out / f"{i // 500:03d}" / f"img{i:06d}.jpg"
        if path.exists():
            continue
        rng = random.Random(args.seed * 1_000_003 + i)
        w, h = rng.randint(256, 1600), rng.randint(256, 1600)
        if not 0.5 <= w / h <= 2.0:
            h = int(w / rng.uniform(0.5, 2.0))
            h = max(256, min(1600, h))
        c0 = np.array([rng.randint(0, 255) for _ in range(3)], np.float32)
        c1 = np.array([rng.randint(0, 255) for _ in range(3)], np.float32)
        t = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
        t = t * np.linspace(0.3, 1.0, h, dtype=np.float32)[:, None, None]
        pixels = c0 * (1 - t) + c1 * t
        noise = np.random.default_rng(args.seed * 1_000_003 + i).normal(0, 6, (h, w, 3))
        img = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(rng.randint(3, 12)):
            x0, y0 = rng.randint(0, w - 1), rng.randint(0, h - 1)
            x1, y1 = x0 + rng.randint(8, w // 2), y0 + rng.randint(8, h // 2)
            fill = tuple(rng.randint(0, 255) for _ in range(3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=fill)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        img.save(tmp, "JPEG", quality=85)
        tmp.rename(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
