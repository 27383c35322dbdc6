#!/usr/bin/env python3
"""The PyTorch side of the indexing benchmark (issue #27): a folder of images embedded the way a
PyTorch user would, and written as Parquet (path, size, mtime, embedding), one JSON line of
figures on stdout.

    python3 tools/bench_index_torch.py DIR MODEL_DIR OUT.parquet [--workers 2] [--threads 2] [--batch 32]

MODEL_DIR is an HF CLIPModel folder (config.json + model.safetensors): the built-in model's
`crates/clipguide-clip/assets/default-model`, or a ViT-B/32-shaped random one
(`--make-vitb32 MODEL_DIR` writes it, seed 0). The pipeline: a torch DataLoader with `--workers`
worker processes decoding JPEGs with Pillow and applying CLIP's preprocessing with torchvision
(resize the short side to the model's input, bicubic; centre crop; normalise with CLIP's mean
and std), batches of `--batch` through `get_image_features` under `torch.inference_mode()`
(and `torch.autocast` to bfloat16 / float16 with `--autocast bf16|f16`) with `--threads` intra-op threads, unit-normalised, stored as float16 lists like clipguide's
default store. Unreadable files are skipped and counted. The clock runs from the first file
listed to the Parquet file written.
"""

import argparse
import json
import os
import time
from pathlib import Path

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def make_vitb32(out: Path) -> None:
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig())  # transformers' defaults are OpenAI ViT-B/32's shapes
    model.save_pretrained(out, safe_serialization=True)


class Images:
    def __init__(self, files, side):
        from torchvision import transforms as T

        self.files = files
        self.tf = T.Compose([
            T.Resize(side, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(side),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ])

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        import torch
        from PIL import Image

        try:
            with Image.open(self.files[i]) as im:
                return self.tf(im.convert("RGB")), i
        except Exception:
            return torch.zeros(0), i


def collate(items):
    import torch

    ok = [(x, i) for x, i in items if x.numel() > 0]
    bad = [i for x, i in items if x.numel() == 0]
    pixels = torch.stack([x for x, _ in ok]) if ok else None
    return pixels, [i for _, i in ok], bad


def worker_init(_):
    import torch

    torch.set_num_threads(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, nargs="?")
    parser.add_argument("model", type=Path, nargs="?")
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--autocast", choices=["bf16", "f16"], default=None,
                        help="forward under torch.autocast(bfloat16 or float16)")
    parser.add_argument("--make-vitb32", type=Path, default=None)
    args = parser.parse_args()
    if args.make_vitb32:
        make_vitb32(args.make_vitb32)
        return 0

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch
    from transformers import CLIPModel

    torch.set_num_threads(args.threads)
    model = CLIPModel.from_pretrained(args.model).eval()
    side = model.config.vision_config.image_size
    start = time.perf_counter()
    files = sorted(
        str(p) for p in args.dir.rglob("*")
        if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") and p.is_file()
    )
    loader = torch.utils.data.DataLoader(
        Images(files, side),
        batch_size=args.batch,
        num_workers=args.workers,
        collate_fn=collate,
        worker_init_fn=worker_init if args.workers else None,
        persistent_workers=False,
    )
    paths, sizes, mtimes, vectors, skipped = [], [], [], [], 0
    import contextlib

    dtypes = {"bf16": torch.bfloat16, "f16": torch.float16}
    autocast = torch.autocast("cpu", dtype=dtypes[args.autocast]) if args.autocast else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        for pixels, idx, bad in loader:
            skipped += len(bad)
            if pixels is None:
                continue
            emb = model.get_image_features(pixel_values=pixels)
            if not isinstance(emb, torch.Tensor):  # newer transformers return an output object
                emb = emb.pooler_output
            emb = torch.nn.functional.normalize(emb.float(), dim=-1).to(torch.float16)
            for i, v in zip(idx, emb.numpy()):
                st = os.stat(files[i])
                paths.append(files[i])
                sizes.append(st.st_size)
                mtimes.append(st.st_mtime_ns)
                vectors.append(v)
    dim = len(vectors[0]) if vectors else 0
    table = pa.table({
        "path": pa.array(paths, pa.string()),
        "size": pa.array(sizes, pa.uint64()),
        "mtime_ns": pa.array(mtimes, pa.int64()),
        "embedding": pa.FixedSizeListArray.from_arrays(
            pa.array(np.concatenate(vectors) if vectors else np.zeros(0, np.float16)), dim
        ),
    })
    pq.write_table(table, args.out, compression="none")
    seconds = time.perf_counter() - start
    print(json.dumps({
        "images": len(paths), "skipped": skipped, "seconds": round(seconds, 2),
        "images_per_s": round(len(paths) / seconds, 2), "workers": args.workers,
        "threads": args.threads, "batch": args.batch, "autocast": args.autocast, "torch": torch.__version__,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
