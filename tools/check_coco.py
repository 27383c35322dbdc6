"""Validates a `clipguide annotate` file with pycocotools (`pip install pycocotools`): it loads as
a COCO dataset, every annotation's image and category exist, every bbox lies inside its image,
and its annotations load as detection results (COCO.loadRes) and evaluate against themselves
with COCOeval (AP 1.0 at IoU 0.5: the file is self-consistent).

    python3 tools/check_coco.py annotations.json
"""
import contextlib
import io
import sys

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

path = sys.argv[1]
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(path)
images = gt.loadImgs(gt.getImgIds())
anns = gt.loadAnns(gt.getAnnIds())
cats = {c["id"] for c in gt.loadCats(gt.getCatIds())}
by_id = {im["id"]: im for im in images}
for a in anns:
    im = by_id[a["image_id"]]
    assert a["category_id"] in cats, a
    x, y, w, h = a["bbox"]
    assert 0 <= x and 0 <= y and w > 0 and h > 0, a
    assert x + w <= im["width"] + 1e-3 and y + h <= im["height"] + 1e-3, (a, im)
    assert 0.0 <= a["score"] <= 1.0, a
if anns:
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes([{k: a[k] for k in ("image_id", "category_id", "bbox", "score")} for a in anns])
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ap50 = ev.stats[1]
    assert abs(ap50 - 1.0) < 1e-6, ap50
print(f"{path}: valid COCO ({len(images)} images, {len(cats)} categories, {len(anns)} annotations)")
