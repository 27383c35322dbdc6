#!/usr/bin/env python3
"""Regenerate the OpenCLIP test fixtures of clipguide (tests/fixtures/openclip/ and
tests/fixtures/tokenizer/open_clip_ids.json).

    pip install torch torchvision open_clip_torch ftfy safetensors pillow
    python3 tools/make_openclip_fixtures.py            # everything
    python3 tools/make_openclip_fixtures.py models     # or any of: models tokenizer preprocess wrapped configs

Every reference number is computed by open_clip itself: each tiny random-weight model is written in
the Hugging Face hub layout (open_clip_config.json beside the weights), loaded back with
`open_clip.create_model_and_transforms("local-dir:<folder>")` and only that loaded model (so storage
rounding, e.g. float16, is included) and its own val transform / tokenizer make the references.

Deterministic: fixed seeds, CPU only, 2 threads. Written against torch 2.15, torchvision 0.29,
open_clip_torch 3.3.0, ftfy 6.3, Pillow 13. See the `openclip/` section of tests/fixtures/README.md.
"""

import hashlib
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
OUT = FIXTURES / "openclip"
PNG_DIR = FIXTURES / "preprocess"
PNG_NAMES = ["landscape_300x200.png", "portrait_200x300.png", "tiny_40x25.png", "rgba_64x64.png"]
OPEN_CLIP_IDS = FIXTURES / "tokenizer" / "open_clip_ids.json"
SIZE_LIMIT = 5 * 1000 * 1000  # everything this script writes, together

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
LOGIT_SCALE_LOG = 2.5
EOT = 49407

PROMPTS = [
    "a photo of a cat",
    "sunflower oil painting, highly detailed",
    "",
    "Caf&amp;eacute; \u201cquoted\u201d \uff26\uff35\uff2c\uff2c width &lt;b&gt;",
    "an intricate oil painting of a lighthouse on a rocky cliff at sunset, dramatic clouds, crashing waves, "
    "seagulls, warm golden light, volumetric fog, highly detailed, trending on artstation, by greg rutkowski "
    "and alphonse mucha, 8k, masterpiece, best quality, ultra realistic, cinematic lighting, sharp focus, "
    "wide angle, vivid colors, award winning photograph, a small red boat drifting past the rocks under a "
    "crescent moon while distant city lights glow on the horizon",
]

MODELS = {
    "oc-quickgelu": dict(
        seed=1001,
        weights="open_clip_model.safetensors",
        dtype="float16",
        model_cfg={
            "embed_dim": 24,
            "quick_gelu": True,
            "vision_cfg": {"image_size": 40, "layers": 2, "width": 48, "head_width": 16, "mlp_ratio": 4.0, "patch_size": 8},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 2},
        },
        preprocess_cfg={"mean": OPENAI_MEAN, "std": OPENAI_STD, "interpolation": "bicubic", "resize_mode": "shortest"},
    ),
    "oc-gelu-ls": dict(
        seed=2002,
        weights="open_clip_pytorch_model.bin",
        dtype="float32",
        model_cfg={
            "embed_dim": 20,
            "quick_gelu": False,
            "vision_cfg": {
                "image_size": 36, "layers": 3, "width": 40, "head_width": 20, "mlp_ratio": 2.5, "patch_size": 6,
                "ls_init_value": 0.5,
            },
            "text_cfg": {
                "context_length": 77, "vocab_size": 49408, "width": 8, "heads": 2, "layers": 3, "mlp_ratio": 3.0,
                "ls_init_value": 0.5,
            },
        },
        preprocess_cfg={"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear", "resize_mode": "squash"},
    ),
    "oc-projbias": dict(
        seed=3003,
        weights="open_clip_model.safetensors",
        dtype="float32",
        model_cfg={
            "embed_dim": 12,
            "quick_gelu": True,
            "vision_cfg": {
                "image_size": 16, "layers": 1, "width": 16, "head_width": 8, "patch_size": 4,
                "final_ln_after_pool": True, "norm_kwargs": {"eps": 1e-6},
            },
            "text_cfg": {
                "context_length": 77, "vocab_size": 1000, "width": 16, "heads": 4, "layers": 2, "proj_bias": True,
                "norm_kwargs": {"eps": 1e-6},
            },
        },
        preprocess_cfg={"mean": OPENAI_MEAN, "std": OPENAI_STD, "interpolation": "bicubic", "resize_mode": "shortest"},
    ),
}


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def setup_torch():
    import torch

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    return torch


# ----------------------------------------------------------------------------------------------
# Tiny models.
# ----------------------------------------------------------------------------------------------


def perturb(model, gen, torch) -> dict:
    """Move every parameter away from its init so that a missing or misapplied tensor shows."""
    from open_clip.transformer import LayerScale

    kinds = {}
    owner = {}
    for mod_name, mod in model.named_modules():
        for p_name, _ in mod.named_parameters(recurse=False):
            owner[f"{mod_name}.{p_name}" if mod_name else p_name] = mod
    with torch.no_grad():
        for name, p in model.named_parameters():
            mod = owner[name]
            leaf = name.rsplit(".", 1)[-1]
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if name == "logit_scale":
                p.fill_(LOGIT_SCALE_LOG)
                kind = "logit_scale = 2.5"
            elif isinstance(mod, torch.nn.LayerNorm):
                if leaf == "weight":
                    p.copy_(1.0 + 0.1 * noise)
                    kind = "LayerNorm weight = 1 + 0.1 N"
                else:
                    p.copy_(0.1 * noise)
                    kind = "LayerNorm bias = 0.1 N"
            elif isinstance(mod, LayerScale):
                p.copy_(1.0 + 0.3 * noise)
                kind = "LayerScale gamma = 1 + 0.3 N"
            elif leaf.endswith("bias"):
                p.copy_(0.05 * noise)
                kind = "bias = 0.05 N"
            elif leaf in ("class_embedding", "positional_embedding"):
                p.add_(0.05 * noise)
                kind = "embedding: init + 0.05 N"
            elif leaf == "weight" and p.ndim == 2 and name.startswith("token_embedding"):
                p.copy_(0.1 * noise)
                kind = "token embedding = 0.1 N"
            else:  # conv / linear / in_proj / projection weights: variance-preserving N(0, 1/fan_in)
                fan_in = p.shape[0] if leaf in ("proj", "text_projection") else p[0].numel()
                p.copy_(noise / fan_in**0.5)
                kind = "weight = N(0, 1/fan_in)"
            kinds[name] = kind
    return kinds


def projbias_ids(torch):
    gen = torch.Generator().manual_seed(77)
    rows = []
    for length in (5, 12, 77):
        row = torch.zeros(77, dtype=torch.int64)
        row[0] = 998
        row[1 : length - 1] = torch.randint(1, 998, (length - 2,), generator=gen)
        row[length - 1] = 999
        rows.append(row)
    ids = torch.stack(rows)
    assert (ids == 999).sum() == 3 and ids[2, 76] == 999 and (ids[2] == 0).sum() == 0
    return ids


def load_images(preprocess, torch):
    from PIL import Image

    out = []
    for name in PNG_NAMES:
        img = Image.open(PNG_DIR / name)
        out.append(preprocess(img))
    return torch.stack(out)


def write_model(name: str, spec: dict) -> None:
    import open_clip
    from safetensors.torch import save_file

    torch = setup_torch()
    out_dir = OUT / name
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in out_dir.iterdir():
        f.unlink()

    # 1. Build with open_clip from the config, perturb, store.
    torch.manual_seed(spec["seed"])  # open_clip's own init uses the global generator
    model = open_clip.CLIP(**json.loads(json.dumps(spec["model_cfg"])))
    kinds = perturb(model, torch.Generator().manual_seed(spec["seed"] + 1), torch)
    dtype = getattr(torch, spec["dtype"])
    sd = {k: v.detach().to(dtype).contiguous().clone() for k, v in model.state_dict().items()}
    (out_dir / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": spec["model_cfg"], "preprocess_cfg": spec["preprocess_cfg"]}, indent=2) + "\n"
    )
    weights = out_dir / spec["weights"]
    if weights.suffix == ".safetensors":
        save_file(sd, str(weights))
    else:
        torch.save(sd, str(weights))

    # 2. Load back through open_clip's own hub-folder path; everything below comes from this model.
    model, _, preprocess = open_clip.create_model_and_transforms("local-dir:" + str(out_dir))
    model = model.eval().float()
    loaded = model.state_dict()
    assert set(loaded) == set(sd), set(loaded) ^ set(sd)
    for k, v in sd.items():
        assert torch.equal(loaded[k], v.float()), f"{k} did not round-trip"
    assert abs(model.logit_scale.item() - LOGIT_SCALE_LOG) < 1e-6

    tensors = {}
    with torch.no_grad():
        if name == "oc-projbias":
            input_ids = projbias_ids(torch)
            pixel_values = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(spec["seed"] + 2))
        else:
            tokenizer = open_clip.get_tokenizer("local-dir:" + str(out_dir))
            assert type(tokenizer).__name__ == "SimpleTokenizer" and tokenizer.context_length == 77
            input_ids = tokenizer(PROMPTS)
            full = [len(tokenizer.encode(p)) + 2 for p in PROMPTS]
            assert full[-1] > 77 and input_ids[-1, -1] == EOT, full  # the last prompt is truncated
            pixel_values = load_images(preprocess, torch)
            (out_dir / "prompts.json").write_text(json.dumps(PROMPTS, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
            (out_dir / "images.json").write_text(json.dumps(PNG_NAMES, indent=1) + "\n")
        text_embeds = model.encode_text(input_ids)
        image_embeds = model.encode_image(pixel_values)
        logit_scale = model.logit_scale.exp()
        ie = image_embeds / image_embeds.norm(dim=-1, keepdim=True)
        te = text_embeds / text_embeds.norm(dim=-1, keepdim=True)
        logits_per_image = logit_scale * ie @ te.T
        li, _ = model.get_logits(pixel_values, input_ids)
        assert torch.allclose(li, logits_per_image, atol=1e-5)
        # argmax pooling really picks the EOT (or 999) position.
        pooled_at = input_ids.argmax(-1)
        eot = 999 if name == "oc-projbias" else EOT
        assert torch.equal(pooled_at, (input_ids == eot).int().argmax(-1))

    s = model.visual.image_size[0]
    gpv = torch.randn(2, 3, s, s, generator=torch.Generator().manual_seed(spec["seed"] + 3))
    for p in model.parameters():
        p.requires_grad_(False)
    px = gpv.clone().requires_grad_(True)
    loss = torch.nn.functional.cosine_similarity(model.encode_image(px), text_embeds[0:1].detach(), dim=-1).sum()
    loss.backward()
    assert px.grad.abs().max() > 0

    tensors = {
        "input_ids": input_ids.to(torch.int64),
        "text_embeds": text_embeds,
        "pixel_values": pixel_values,
        "image_embeds": image_embeds,
        "logit_scale": logit_scale.reshape(()),
        "logits_per_image": logits_per_image,
        "grad_pixel_values": gpv,
        "grad_pixels": px.grad,
        "grad_loss": loss.reshape(()),
    }
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    for k, v in tensors.items():
        assert k == "input_ids" or v.dtype == torch.float32
        assert torch.isfinite(v.float()).all(), k
    save_file(tensors, str(out_dir / "reference.safetensors"), metadata={"generator": "tools/make_openclip_fixtures.py"})

    print(f"{name}: {spec['weights']} ({spec['dtype']}), {len(sd)} tensors, preprocess {preprocess.transforms}")
    counts = {}
    for k in kinds.values():
        counts[k] = counts.get(k, 0) + 1
    print(f"  perturbation: {counts}")
    for k, v in tensors.items():
        print(f"  {k:18s} {str(v.dtype):14s} {list(v.shape)}")
    print(f"  logits_per_image={[[round(x, 4) for x in r] for r in logits_per_image.tolist()]}")
    print(f"  grad_loss={loss.item():.6f} |grad|max={px.grad.abs().max().item():.3e}")


def make_models() -> None:
    for name, spec in MODELS.items():
        write_model(name, spec)


# ----------------------------------------------------------------------------------------------
# open_clip tokenizer on the shared tokenizer cases.
# ----------------------------------------------------------------------------------------------


def make_tokenizer_ids() -> None:
    import open_clip

    setup_torch()
    cases = json.loads((FIXTURES / "tokenizer" / "cases.json").read_text(encoding="utf-8"))
    texts = [c["text"] for c in cases]
    ids = open_clip.tokenize(texts, context_length=77).tolist()
    rows = []
    for row in ids:
        rows.append(row[: row.index(EOT) + 1])
    OPEN_CLIP_IDS.write_text(
        json.dumps(
            {"tokenizer": f"open_clip {open_clip.__version__} SimpleTokenizer", "ids": rows}, separators=(",", ":")
        )
        + "\n"
    )
    differ = [i for i, c in enumerate(cases) if c["ids"] != rows[i]]
    differ_fast = [i for i, c in enumerate(cases) if c.get("fast_ids", c["ids"]) != rows[i]]
    print(f"tokenizer: {len(rows)} rows -> {rel(OPEN_CLIP_IDS)}; {len(differ)} differ from cases.json `ids` (slow HF), "
          f"{len(differ_fast)} from the fast tokenizer")
    tok = open_clip.tokenizer._tokenizer
    for i in differ[:60]:
        print(f"  differs: {cases[i]['text']!r}\n    hf   {tok.decode(cases[i]['ids'][1:-1])!r}\n    open {tok.decode(rows[i][1:-1])!r}")


# ----------------------------------------------------------------------------------------------
# open_clip val transform, every resize mode x interpolation.
# ----------------------------------------------------------------------------------------------


def manual_transform(img, size: int, mode: str, interpolation: str, mean, std):
    """The val transform spelled out (documented in the README); checked against open_clip."""
    import numpy as np
    from PIL import Image, ImageOps

    resample = Image.BILINEAR if interpolation == "bilinear" else Image.BICUBIC
    w, h = img.size
    if mode == "shortest":
        nw, nh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    elif mode == "squash":
        nw, nh = size, size
    else:  # longest
        ratio = max(h / size, w / size)
        nh, nw = round(h / ratio), round(w / ratio)  # Python round: half to even
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), resample)  # RGBA goes through premultiplied RGBa inside PIL
    if mode == "longest" and (nw < size or nh < size):
        pl = (size - nw) // 2 if size > nw else 0
        pt = (size - nh) // 2 if size > nh else 0
        pr = (size - nw + 1) // 2 if size > nw else 0
        pb = (size - nh + 1) // 2 if size > nh else 0
        img = ImageOps.expand(img, border=(pl, pt, pr, pb), fill=0)
        nw, nh = img.size
    if (nw, nh) != (size, size):
        top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
        img = img.crop((left, top, left + size, top + size))
    img = img.convert("RGB")  # drops alpha, no compositing
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
    return x.transpose(2, 0, 1)


def make_preprocess() -> None:
    import numpy as np
    from open_clip.transform import PreprocessCfg, image_transform_v2
    from PIL import Image
    from safetensors.torch import save_file

    torch = setup_torch()
    tensors = {}
    for mode in ("shortest", "squash", "longest"):
        for interp in ("bicubic", "bilinear"):
            cfg = PreprocessCfg(size=32, mean=tuple(OPENAI_MEAN), std=tuple(OPENAI_STD), interpolation=interp, resize_mode=mode)
            tf = image_transform_v2(cfg, is_train=False)
            for name in PNG_NAMES:
                img = Image.open(PNG_DIR / name)
                x = tf(img)
                assert x.shape == (3, 32, 32) and x.dtype == torch.float32
                manual = manual_transform(Image.open(PNG_DIR / name), 32, mode, interp, OPENAI_MEAN, OPENAI_STD)
                err = np.abs(manual - x.numpy()).max()
                assert err < 1e-5, f"README's description of {mode}/{interp} is wrong for {name}: {err}"
                tensors[f"{mode}_{interp}_{Path(name).stem}"] = x.contiguous()
    out = OUT / "preprocess.safetensors"
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata={"generator": "tools/make_openclip_fixtures.py"})
    # The transparent magenta corner of rgba_64x64 must come out black (premultiplied resize), not magenta.
    corner = tensors["squash_bicubic_rgba_64x64"][:, :6, :6]
    black = (torch.zeros(3) - torch.tensor(OPENAI_MEAN)) / torch.tensor(OPENAI_STD)
    assert torch.allclose(corner, black[:, None, None].expand_as(corner), atol=1e-6), corner[:, 0, 0]
    print(f"preprocess: {len(tensors)} tensors -> {rel(out)}; manual re-implementation matches")


# ----------------------------------------------------------------------------------------------
# A training-style checkpoint with a wrapper dict and DDP `module.` prefixes.
# ----------------------------------------------------------------------------------------------


def make_wrapped() -> None:
    import open_clip

    torch = setup_torch()
    src = OUT / "oc-gelu-ls" / MODELS["oc-gelu-ls"]["weights"]
    sd = torch.load(src, map_location="cpu", weights_only=True)
    sub = {k: v for k, v in sd.items() if k.startswith("visual.") or k == "logit_scale"}
    ckpt = {"epoch": 3, "name": "tiny", "state_dict": {"module." + k: v for k, v in sub.items()}}
    out = OUT / "wrapped_checkpoint.pt"
    torch.save(ckpt, str(out))
    # open_clip's own loader unwraps it and then misses exactly the text tower.
    unwrapped = open_clip.factory.load_state_dict(str(out))
    assert set(unwrapped) == set(sub)
    model = open_clip.CLIP(**json.loads(json.dumps(MODELS["oc-gelu-ls"]["model_cfg"])))
    missing = sorted(set(model.state_dict()) - set(unwrapped))
    assert all(not k.startswith("visual.") and k != "logit_scale" for k in missing)
    print(f"wrapped: {rel(out)}: {len(sub)} tensors (first key {next(iter(ckpt['state_dict']))}); "
          f"missing after unwrap: {len(missing)}: {missing[:4]} ...")


# ----------------------------------------------------------------------------------------------
# Published open_clip_config.json files (reconstructed, no network) and what a parser must read.
# ----------------------------------------------------------------------------------------------


def published_configs() -> dict:
    from open_clip.factory import _MODEL_CONFIGS

    b32 = {"model_cfg": _MODEL_CONFIGS["ViT-B-32"], "preprocess_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD}}
    h14 = {"model_cfg": _MODEL_CONFIGS["ViT-H-14"], "preprocess_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD}}
    dfn_cfg = json.loads(json.dumps(_MODEL_CONFIGS["ViT-H-14-378"]))
    assert "quick_gelu" not in dfn_cfg
    dfn = {
        "model_cfg": dfn_cfg,
        "preprocess_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD, "interpolation": "bicubic", "resize_mode": "squash"},
    }
    return {
        "laion-CLIP-ViT-B-32-laion2B-s34B-b79K": b32,
        "laion-CLIP-ViT-H-14-laion2B-s32B-b79K": h14,
        "apple-DFN5B-CLIP-ViT-H-14-378": dfn,
    }


def make_configs() -> None:
    from open_clip.factory import get_model_config
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg
    from open_clip.pretrained import get_pretrained_cfg
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    out_dir = OUT / "configs"
    out_dir.mkdir(parents=True, exist_ok=True)
    tags = {
        "laion-CLIP-ViT-B-32-laion2B-s34B-b79K": ("ViT-B-32", "laion2b_s34b_b79k"),
        "laion-CLIP-ViT-H-14-laion2B-s32B-b79K": ("ViT-H-14", "laion2b_s32b_b79k"),
        "apple-DFN5B-CLIP-ViT-H-14-378": ("ViT-H-14-378", "dfn5b"),
    }
    expected = {}
    for name, cfg in published_configs().items():
        d = out_dir / name
        d.mkdir(exist_ok=True)
        (d / "open_clip_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        model_cfg = get_model_config("local-dir:" + str(d))  # what open_clip reads from the file
        v = CLIPVisionCfg(**model_cfg["vision_cfg"])
        t = CLIPTextCfg(**model_cfg["text_cfg"])
        pp = merge_preprocess_dict(asdict(PreprocessCfg()), cfg["preprocess_cfg"])
        tag_cfg = get_pretrained_cfg(*tags[name])
        for k in ("mean", "std", "interpolation", "resize_mode"):
            assert list(pp[k]) == list(tag_cfg[k]) if k in ("mean", "std") else pp[k] == tag_cfg[k], (name, k)
        expected[name] = {
            "embed_dim": model_cfg["embed_dim"],
            "quick_gelu": bool(model_cfg.get("quick_gelu", False)),
            "vision": {
                "width": v.width,
                "layers": v.layers,
                "heads": v.width // v.head_width,
                "intermediate_size": int(v.width * v.mlp_ratio),
                "patch_size": v.patch_size,
                "image_size": v.image_size,
            },
            "text": {
                "width": t.width,
                "layers": t.layers,
                "heads": t.heads,
                "intermediate_size": int(t.width * t.mlp_ratio),
                "context_length": t.context_length,
                "vocab_size": t.vocab_size,
            },
            "preprocess": {
                "mean": list(pp["mean"]),
                "std": list(pp["std"]),
                "interpolation": pp["interpolation"],
                "resize_mode": pp["resize_mode"],
            },
        }
        print(f"configs: {name}: {json.dumps(expected[name])} (tag quick_gelu={tag_cfg.get('quick_gelu', False)})")
    (out_dir / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


# ----------------------------------------------------------------------------------------------

STEPS = {
    "models": make_models,
    "tokenizer": make_tokenizer_ids,
    "preprocess": make_preprocess,
    "wrapped": make_wrapped,
    "configs": make_configs,
}


def written_files() -> list:
    files = sorted(f for f in OUT.rglob("*") if f.is_file())
    if OPEN_CLIP_IDS.exists():
        files.append(OPEN_CLIP_IDS)
    return files


def main(argv) -> None:
    steps = argv or list(STEPS)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        sys.exit(f"unknown step(s) {unknown}; choose from {list(STEPS)}")
    if "wrapped" in steps and "models" not in steps and not (OUT / "oc-gelu-ls").exists():
        steps.insert(0, "models")
    for step in steps:
        STEPS[step]()
    total = 0
    for f in written_files():
        size = f.stat().st_size
        total += size
        print(f"  {size:9d}  {hashlib.sha256(f.read_bytes()).hexdigest()[:16]}  {rel(f)}")
    print(f"openclip fixtures total: {total} bytes")
    if total > SIZE_LIMIT:
        sys.exit(f"openclip fixtures exceed {SIZE_LIMIT} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
