#!/usr/bin/env python3
"""PyTorch counterpart of crates/clipguide-guide/examples/bench_step.rs: seconds per guidance
step at 256x256 with 16 cutouts through a ViT-B/32-shaped CLIPModel with random weights.

    python3 tools/bench_guide_torch.py [steps]

Same work per step: Fourier image (irfft2, decay 1.5, colour matrix, sigmoid), 16 random square
cutouts (area when shrinking, bilinear when enlarging, random flip, noise up to 0.1) resized to
224, CLIP normalisation, image tower + projection, spherical loss to one text embedding,
backward to the spectrum, Adam. 2 threads, float32, frozen model weights.
"""

import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPModel

W = H = 256
CUTN, OUT, DECAY = 16, 224, 1.5
MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073])[None, :, None, None]
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711])[None, :, None, None]
COLOR = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig()).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    ids = torch.tensor([[49406, 320, 1125, 49407]])
    with torch.no_grad():
        out = model.get_text_features(input_ids=ids)
        target = F.normalize(out.pooler_output if hasattr(out, "pooler_output") else out, dim=-1)

    fy = np.fft.fftfreq(H)[:, None]
    fx = np.fft.rfftfreq(W)[None, :]
    scale = torch.tensor(1.0 / np.maximum(np.sqrt(fx**2 + fy**2), 1.0 / max(W, H)) ** DECAY, dtype=torch.float32)
    color = torch.tensor(COLOR / np.sqrt((COLOR**2).sum(0)).max(), dtype=torch.float32)
    re = (torch.randn(3, H, W // 2 + 1) * 0.01).requires_grad_()
    im = (torch.randn(3, H, W // 2 + 1) * 0.01).requires_grad_()
    opt = torch.optim.Adam([re, im], lr=0.05)

    def step():
        x = torch.fft.irfft2(torch.complex(re * scale, im * scale), s=(H, W), norm="ortho") / 4
        rgb = torch.sigmoid(torch.einsum("rc,chw->rhw", color, x))[None]
        cuts = []
        for _ in range(CUTN):
            size = int(torch.randint(H // 4, H + 1, ()))
            ox = int(torch.randint(0, W - size + 1, ()))
            oy = int(torch.randint(0, H - size + 1, ()))
            c = rgb[:, :, oy:oy + size, ox:ox + size]
            mode = "area" if size > OUT else "bilinear"
            c = F.interpolate(c, (OUT, OUT), mode=mode, **({} if mode == "area" else {"align_corners": False}))
            if torch.rand(()) < 0.5:
                c = torch.flip(c, dims=[3])
            c = c + torch.randn_like(c) * float(torch.rand(())) * 0.1
            cuts.append(c)
        batch = (torch.cat(cuts) - MEAN) / STD
        out = model.get_image_features(pixel_values=batch)
        emb = F.normalize(out.pooler_output if hasattr(out, "pooler_output") else out, dim=-1)
        loss = (2 * torch.asin((emb - target).norm(dim=-1) / 2) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    times.sort()
    print(json.dumps({"case": "guide_step_256_cutn16_vitb32_torch", "median_s": round(times[len(times) // 2], 3),
                      "min_s": round(times[0], 3), "steps": steps, "threads": torch.get_num_threads(), "torch": torch.__version__, "isa": torch.backends.cpu.get_cpu_capability(),
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()
