"""Arranges a folder written by `clipguide dataset shapes` as an ImageFolder for `clipguide
zeroshot`: the images with exactly one object group are copied to OUT/<attribute value>/, for the
attribute given (shape, colour or placement of the group, or the background colour).

    python3 tools/dataset_to_imagefolder.py DATASET_DIR OUT_DIR [shape|colour|placement|background]
"""
import json
import shutil
import sys
from pathlib import Path

src, out = Path(sys.argv[1]), Path(sys.argv[2])
attribute = sys.argv[3] if len(sys.argv) > 3 else "shape"
copied = 0
for line in (src / "captions.jsonl").read_text().splitlines():
    rec = json.loads(line)
    scene = rec["scene"]
    if len(scene["groups"]) != 1:
        continue
    value = scene["background"] if attribute == "background" else scene["groups"][0][attribute]
    dest = out / str(value)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "images" / Path(rec["file"]).name, dest)
    copied += 1
print(f"{copied} single-group images copied into {out}/<{attribute}>/")
