#!/usr/bin/env python3
"""Diagnostic: how fast does a CLIP vision tower (transformers' CLIPVisionModelWithProjection, the
shipped model's layout) learn *shape* when supervised directly, from scratch?

    clipguide dataset shapes --out DIR --count 24000 --seed 7 --size 64
    python3 tools/shape_probe_torch.py --data DIR [--patch 8] [--width 128] [--layers 4] \
        [--lr 3e-4] [--batch 128] [--steps 1200] [--pool cls|mean]

Uses the single-group, plain-background scenes of DIR (the zero-shot evaluation's distribution),
holds out the last 1,000, and trains the tower plus a linear shape head on the normalised image
embedding (temperature 16, like the Rust trainer's auxiliary heads) with AdamW (weight decay 0.05,
50 warm-up steps, then constant). Prints held-out shape accuracy and elapsed time every 100 steps.
The figures in BENCHMARKS.md ("Shape needs a gentler, larger-batch optimiser") came from it.
Needs torch + transformers; a tools/ script, never run by CI.
"""

import argparse
import json
import time

import numpy as np
import torch
from PIL import Image
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

SHAPES = ["circle", "square", "triangle", "star", "cross", "ring"]
MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def load(data):
    xs, ys = [], []
    for line in open(f"{data}/captions.jsonl"):
        d = json.loads(line)
        groups = d["scene"]["groups"]
        if len(groups) != 1 or d["scene"]["pattern"] is not None:
            continue
        img = Image.open(f"{data}/{d['file']}").convert("RGB")
        xs.append(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1))
        ys.append(SHAPES.index(groups[0]["shape"]))
    return torch.tensor(np.stack(xs)), torch.tensor(ys)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--patch", type=int, default=8)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pool", choices=["cls", "mean"], default="cls")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x, y = load(a.data)
    n = len(x)
    split = n - 1000
    print("scenes", n, vars(a), flush=True)
    cfg = CLIPVisionConfig(
        hidden_size=a.width,
        intermediate_size=4 * a.width,
        num_hidden_layers=a.layers,
        num_attention_heads=a.heads,
        image_size=x.shape[-1],
        patch_size=a.patch,
        projection_dim=128,
        hidden_act="quick_gelu",
    )
    model = CLIPVisionModelWithProjection(cfg)
    head = torch.nn.Linear(128, len(SHAPES))
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.05)

    def embed(batch):
        out = model(pixel_values=(batch.float() / 255 - MEAN) / STD)
        if a.pool == "cls":
            e = out.image_embeds
        else:
            tokens = out.last_hidden_state[:, 1:].mean(1)
            e = model.visual_projection(model.vision_model.post_layernorm(tokens))
        return e / e.norm(dim=-1, keepdim=True)

    def held_out_accuracy():
        with torch.no_grad():
            pred = head(embed(x[split:]) * 16).argmax(1)
            return (pred == y[split:]).float().mean().item()

    gen = torch.Generator().manual_seed(0)
    t0 = time.time()
    for step in range(a.steps + 1):
        for group in opt.param_groups:
            group["lr"] = a.lr * min(1.0, (step + 1) / 50)
        idx = torch.randint(0, split, (a.batch,), generator=gen)
        loss = torch.nn.functional.cross_entropy(head(embed(x[idx]) * 16), y[idx])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0:
            acc = held_out_accuracy()
            print(f"step {step} loss {loss.item():.3f} held-out shape {acc:.3f} {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
