#!/usr/bin/env python3
"""Diagnostic: which difference between `tools/shape_probe_torch.py` (fast shape learning) and
`clipguide train` (slow) costs the most? Same tower (transformers' CLIPVisionModelWithProjection,
4 x 128, patch 8, transformers' init), supervised on the labels of a `clipguide dataset shapes`
folder, with the trainer's habits switchable one at a time:

    clipguide dataset shapes --out DIR --count 24000 --seed 7 --size 64
    python3 tools/shape_ablation_torch.py --data DIR [--aug] [--patterns] [--heads shape|all] \
        [--rust-adam --scale 100] [--groups 4] [--pos-std 1.0] [--patch-std 0.15]

--aug: the trainer's augmentation (noise up to 0.08, +-3 px shift, +-8 % gain, 30 % 3x3 blur);
--patterns: keep striped/dotted single-object scenes; --heads all: placement, shape and count
heads (mean cross-entropy) as the trainer's auxiliary heads; --rust-adam --scale 100: the
trainer's AdamW (betas 0.9/0.98, eps 1e-6) with the loss scaled like --aux-weight 100 and the
gradient clipped to norm 1 over all parameters; --groups K: K copies of each sampled scene per
batch (fewer independent scenes). Prints held-out accuracy per head every 100 steps. Figures in
BENCHMARKS.md ("Shape at 85 %"). Needs torch + transformers; a tools/ script, never run by CI.
"""
import argparse, json, time
import numpy as np, torch
import torch.nn.functional as F
from PIL import Image
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
SHAPES = ["circle", "square", "triangle", "star", "cross", "ring"]
PL = ["top_left","top","top_right","left","center","right","bottom_left","bottom","bottom_right"]
MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
def load(data, patterns):
    xs, ys = [], []
    for line in open(f"{data}/captions.jsonl"):
        d = json.loads(line); g = d["scene"]["groups"]
        if len(g) != 1: continue
        pat = d["scene"]["pattern"] is not None
        img = np.asarray(Image.open(f"{data}/{d['file']}").convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
        xs.append(img); ys.append([SHAPES.index(g[0]["shape"]), PL.index(g[0]["placement"]), g[0]["count"]-1, int(pat)])
    return torch.tensor(np.stack(xs)), torch.tensor(ys)
def augment(x, gen):
    b = x.shape[0]; x = x.float()/255
    out = torch.empty_like(x)
    for i in range(b):
        dx, dy = torch.randint(-3, 4, (2,), generator=gen).tolist()
        idx_x = (torch.arange(64) - dx).clamp(0, 63); idx_y = (torch.arange(64) - dy).clamp(0, 63)
        out[i] = x[i][:, idx_y][:, :, idx_x]
    gain = 1 + (torch.rand(b,1,1,1,generator=gen)*2-1)*0.08
    bias = (torch.rand(b,1,1,1,generator=gen)*2-1)*0.04
    blur = torch.rand(b, generator=gen) < 0.3
    if blur.any():
        xb = F.pad(out[blur], (1,1,1,1), mode="replicate")
        out[blur] = F.avg_pool2d(xb, 3, stride=1)
    out = out*gain + bias
    ns = torch.rand(b,1,1,1,generator=gen)*0.08
    out = out + ns*torch.randn(out.shape, generator=gen)
    return out.clamp(0,1)
p = argparse.ArgumentParser()
p.add_argument("--data", default="/tmp/dA64")
p.add_argument("--steps", type=int, default=400)
p.add_argument("--lr", type=float, default=3e-4)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--aug", action="store_true")
p.add_argument("--patterns", action="store_true")
p.add_argument("--heads", default="shape")
p.add_argument("--pos-std", type=float, default=None)
p.add_argument("--patch-std", type=float, default=None)
p.add_argument("--rust-adam", action="store_true")
p.add_argument("--scale", type=float, default=1.0)
p.add_argument("--groups", type=int, default=1, help="repeat each sampled image this many times (augmented separately)")
a = p.parse_args()
torch.set_num_threads(2); torch.manual_seed(0)
x, y = load(a.data, a.patterns)
if not a.patterns:
    keep = y[:,3] == 0; x, y = x[keep], y[keep]
n = len(x); split = n - 1000
print("scenes", n, vars(a), flush=True)
cfg = CLIPVisionConfig(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, image_size=64, patch_size=8, projection_dim=128, hidden_act="quick_gelu")
model = CLIPVisionModelWithProjection(cfg)
emb = model.vision_model.embeddings
with torch.no_grad():
    if a.pos_std is not None: emb.position_embedding.weight.normal_(0, a.pos_std)
    if a.patch_std is not None: emb.patch_embedding.weight.normal_(0, a.patch_std)
heads = torch.nn.ModuleList([torch.nn.Linear(128, 6), torch.nn.Linear(128, 9), torch.nn.Linear(128, 3)])
use = [0] if a.heads == "shape" else [0,1,2]
params = list(model.parameters()) + list(heads.parameters())
opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.05, betas=(0.9,0.98), eps=1e-6) if a.rust_adam else torch.optim.AdamW(params, lr=a.lr, weight_decay=0.05)
def embed(px):
    e = model(pixel_values=(px - MEAN) / STD).image_embeds
    return e / e.norm(dim=-1, keepdim=True)
def held():
    with torch.no_grad():
        e = embed(x[split:].float()/255) * 16
        return [round((heads[k](e).argmax(1) == y[split:, k]).float().mean().item(),3) for k in use]
gen = torch.Generator().manual_seed(0); t0 = time.time()
for step in range(a.steps + 1):
    for g in opt.param_groups: g["lr"] = a.lr * min(1.0, (step + 1) / 50)
    idx = torch.randint(0, split, (a.batch // a.groups,), generator=gen).repeat_interleave(a.groups)
    px = augment(x[idx], gen) if a.aug else x[idx].float()/255
    e = embed(px) * 16
    loss = sum(F.cross_entropy(heads[k](e), y[idx, k]) for k in use) / len(use)
    opt.zero_grad(); (loss*a.scale).backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
    if step % 100 == 0:
        print(f"step {step} loss {loss.item():.3f} held {held()} {time.time()-t0:.0f}s", flush=True)
