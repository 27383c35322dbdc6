#!/usr/bin/env python3
"""PyTorch reference for one full CLIP-guidance step, the proof behind tests/generate.rs.

    python3 tools/guide_reference.py     # writes tests/fixtures/guide/step.{json,safetensors}

Pipeline, written from the definitions (not from the Rust code):
  Fourier spectrum (re, im) [3, H, W/2+1] * 1/max(f, 1/max(W,H))^decay
  -> torch.fft.irfft2(norm="ortho") / 4 -> lucid colour matrix (columns normalised by the
  largest column norm) -> sigmoid -> cutouts at FIXED windows (edge pixels repeat outside the
  image; exact box filter when shrinking, bilinear align_corners=False when enlarging; optional
  left-right flip) -> CLIP normalisation -> transformers CLIPModel image features
  (tests/fixtures/tiny-clip-quickgelu) -> spherical distance 2*asin(|x^-y^|/2)^2 to each
  prompt's text features, mean over cutouts, times the prompt weight; plus a squared total
  variation term. The loss is differentiated w.r.t. re and im in float64.

Deterministic (fixed seed, CPU). Written against torch 2.x, transformers 5.x, tokenizers 0.23.
"""

import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import CLIPModel

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "fixtures" / "tiny-clip-quickgelu"
TOKENIZER = ROOT / "crates" / "clipguide-clip" / "assets" / "tokenizer.json"
OUT = ROOT / "tests" / "fixtures" / "guide"

WIDTH, HEIGHT, DECAY = 40, 35, 1.5
SPECTRUM_STD = 0.05
PROMPTS = [("a red circle", 1.0), ("a blue square", -0.5)]
TV_WEIGHT = 0.05
# (x, y, size, flip): shrink with a fractional box filter, enlarge past the left edge with a
# flip, an identity-size window, and one running past the right and bottom edges.
CUTOUTS = [(4, 0, 35, False), (-3, 10, 20, True), (8, 3, 32, False), (20, 12, 24, False)]
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
COLOR = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


def spectrum_scale(w, h, decay):
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    return 1.0 / np.maximum(f, 1.0 / max(w, h)) ** decay


def resize_matrix(in_len, start, length, out_len):
    """[out_len, in_len] weights resampling window [start, start+length) (indices clamped)."""
    m = np.zeros((out_len, in_len))
    clamp = lambda c: min(max(start + c, 0), in_len - 1)
    ratio = length / out_len
    for i in range(out_len):
        if length > out_len:  # exact box filter over the output cell [a, b)
            a, b = i * ratio, (i + 1) * ratio
            for c in range(int(math.floor(a)), min(int(math.ceil(b)), length)):
                overlap = min(b, c + 1) - max(a, c)
                if overlap > 0:
                    m[i, clamp(c)] += overlap / ratio
        else:  # bilinear, half-pixel centres, as F.interpolate(align_corners=False)
            src = max((i + 0.5) * ratio - 0.5, 0.0)
            i0 = min(int(math.floor(src)), length - 1)
            i1 = min(i0 + 1, length - 1)
            frac = src - i0
            m[i, clamp(i0)] += 1 - frac
            m[i, clamp(i1)] += frac
    return torch.tensor(m)


def spherical(x, y):
    x = torch.nn.functional.normalize(x, dim=-1)
    y = torch.nn.functional.normalize(y, dim=-1)
    return 2 * torch.asin((x - y).norm(dim=-1) / 2) ** 2


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    rng = np.random.default_rng(20240601)
    wf = WIDTH // 2 + 1
    re0 = (rng.standard_normal((3, HEIGHT, wf)) * SPECTRUM_STD).astype(np.float32)
    im0 = (rng.standard_normal((3, HEIGHT, wf)) * SPECTRUM_STD).astype(np.float32)

    model = CLIPModel.from_pretrained(MODEL, dtype=torch.float64, attn_implementation="eager").eval()
    for p in model.parameters():
        p.requires_grad_(False)
    size = model.config.vision_config.image_size

    tok = Tokenizer.from_file(str(TOKENIZER))
    targets = []
    for text, _ in PROMPTS:
        ids = torch.tensor([tok.encode(text).ids])
        out = model.get_text_features(input_ids=ids)
        targets.append(out.pooler_output if hasattr(out, "pooler_output") else out)

    re = torch.tensor(re0, dtype=torch.float64, requires_grad=True)
    im = torch.tensor(im0, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(spectrum_scale(WIDTH, HEIGHT, DECAY))
    x = torch.fft.irfft2(torch.complex(re * scale, im * scale), s=(HEIGHT, WIDTH), norm="ortho") / 4
    col_norm = np.sqrt((COLOR**2).sum(axis=0)).max()
    color = torch.tensor(COLOR / col_norm)
    rgb = torch.sigmoid(torch.einsum("rc,chw->rhw", color, x))[None]

    cuts = []
    for cx, cy, cs, flip in CUTOUTS:
        a_h = resize_matrix(HEIGHT, cy, cs, size)
        a_w = resize_matrix(WIDTH, cx, cs, size)
        c = a_h @ rgb @ a_w.T
        if flip:
            c = torch.flip(c, dims=[3])
        cuts.append(c)
    batch = torch.cat(cuts, 0)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float64)[None, :, None, None]
    std = torch.tensor(CLIP_STD, dtype=torch.float64)[None, :, None, None]
    feats = model.get_image_features(pixel_values=(batch - mean) / std)
    feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats

    loss = torch.zeros((), dtype=torch.float64)
    for (_, weight), target in zip(PROMPTS, targets):
        loss = loss + weight * spherical(feats, target).mean()
    tv = ((rgb[..., 1:, :] - rgb[..., :-1, :]) ** 2).mean() + ((rgb[..., 1:] - rgb[..., :-1]) ** 2).mean()
    loss = loss + TV_WEIGHT * tv
    loss.backward()

    OUT.mkdir(parents=True, exist_ok=True)
    tensors = {
        "re": torch.tensor(re0),
        "im": torch.tensor(im0),
        "rgb": rgb.detach().float().contiguous(),
        "cutouts": batch.detach().float().contiguous(),
        "image_features": feats.detach().float().contiguous(),
        "text_features": torch.cat(targets, 0).detach().float().contiguous(),
        "loss": loss.detach().float().reshape(1),
        "grad_re": re.grad.float().contiguous(),
        "grad_im": im.grad.float().contiguous(),
    }
    save_file(tensors, str(OUT / "step.safetensors"))
    meta = {
        "width": WIDTH,
        "height": HEIGHT,
        "decay": DECAY,
        "prompts": [{"text": t, "weight": w} for t, w in PROMPTS],
        "tv_weight": TV_WEIGHT,
        "tv_kind": "squared",
        "cutouts": [{"x": x, "y": y, "size": s, "flip": f} for x, y, s, f in CUTOUTS],
        "made_with": {"torch": torch.__version__, "dtype": "float64, stored as float32"},
    }
    (OUT / "step.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"loss {loss.item():.6f}, |grad_re| max {re.grad.abs().max().item():.3e}, "
          f"|grad_im| max {im.grad.abs().max().item():.3e}")


if __name__ == "__main__":
    main()
