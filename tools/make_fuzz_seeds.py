"""Writes the fuzz seeds, fuzz/seeds/<target>/: small, valid inputs of each format.

    python3 tools/make_fuzz_seeds.py [--png PATH]

Needs torch, safetensors, sentencepiece, Pillow and open_clip_torch (pip). `--png` adds a PNG
written by `clipguide generate` (its parameters chunk is the png_params target's seed). The
seeds are never minimised; what the libFuzzer runs find goes to fuzz/corpus/<target>/.
"""
import argparse
import io
import json
import pathlib
import shutil
import struct
import tempfile
import zlib

import numpy as np
import torch
from safetensors.numpy import save as st_save
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
FIX = ROOT / "tests" / "fixtures"


def put(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data.encode() if isinstance(data, str) else data)


def prompts():
    for i, s in enumerate([
        "a red circle:1.5:200",
        "0:a red circle|150:a blue square:0.5|150:bokeh\\: soft:-0.3:200",
        "at 3\\:00:0.5",
        "256x256",
        "ひまわりの油絵:2",
        "C\\:/pics/a.png:0.5:10",
        "a:1:2:3",
        "x:y|zz",
    ]):
        put("prompt", f"seed{i}", s)
    for i, s in enumerate([
        "a (red:1.2) [dog] BREAK sky",
        "((x)), [[y]], (z:0.5)",
        "\\(a\\) (b:1e-1) \\\\ c",
        "(a (b:1.2) c) (style: anime:1.1)",
        "([a)] x:1.5) (unclosed",
    ]):
        put("attention", f"seed{i}", s)


def configs():
    for p in sorted((FIX / "configs").glob("*/config.json")):
        put("clip_config", p.parent.name, p.read_bytes())
    put("clip_config", "rinna-tiny-clip", (FIX / "rinna" / "tiny-clip" / "config.json").read_bytes())
    put("clip_config", "rinna-tiny-cloob", (FIX / "rinna" / "tiny-cloob" / "config.json").read_bytes())
    for p in sorted((FIX / "openclip").glob("*/open_clip_config.json")):
        put("open_clip_config", p.parent.name, p.read_bytes())
    import open_clip
    bundled = pathlib.Path(open_clip.__file__).parent / "model_configs"
    for name in ["ViT-B-32", "ViT-H-14-378-quickgelu", "ViT-bigG-14", "coca_ViT-B-32", "RN50", "ViT-B-16-SigLIP"]:
        put("open_clip_config", name, json.dumps({"model_cfg": json.loads((bundled / f"{name}.json").read_text())}))


def weights():
    rng = np.random.default_rng(0)
    put("safetensors", "f32", st_save({"a.weight": rng.standard_normal((2, 3)).astype(np.float32)}))
    put("safetensors", "f16-module", st_save({"module.x": rng.standard_normal((4,)).astype(np.float16)}))
    put("safetensors", "inversion", st_save({"emb_params": rng.standard_normal((2, 8)).astype(np.float32)}))
    put("safetensors", "sdxl-inversion", st_save({
        "clip_l": rng.standard_normal((1, 8)).astype(np.float32),
        "clip_g": rng.standard_normal((1, 12)).astype(np.float32),
    }))
    g = torch.Generator().manual_seed(0)

    def saved(obj):
        buf = io.BytesIO()
        torch.save(obj, buf)
        return buf.getvalue()

    put("torch_pickle", "plain", saved({"a.weight": torch.randn(2, 3, generator=g)}))
    put("torch_pickle", "wrapped", saved({"epoch": 3, "state_dict": {"module.b": torch.randn(3, generator=g).half()}}))
    put("torch_pickle", "bf16-shared", saved({"x": (t := torch.randn(4, generator=g).bfloat16()), "y": t[1:]}))


def sentencepiece_model():
    import sentencepiece as spm
    with tempfile.TemporaryDirectory() as d:
        text = pathlib.Path(d) / "t.txt"
        text.write_text("ひまわりの油絵\n赤い丸と青い四角\na sunflower oil painting\nred circle blue square\n" * 20)
        spm.SentencePieceTrainer.train(
            input=str(text), model_prefix=f"{d}/sp", vocab_size=40, model_type="unigram",
            character_coverage=1.0, user_defined_symbols=["[PAD]", "[CLS]", "[SEP]", "[MASK]"],
            normalization_rule_name="identity", minloglevel=2,
        )
        put("sentencepiece", "tiny-unigram", pathlib.Path(f"{d}/sp.model").read_bytes())


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def images(png_path):
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    for fmt, name in [("PNG", "rgb.png"), ("JPEG", "rgb.jpg"), ("GIF", "p.gif"), ("BMP", "rgb.bmp"), ("WEBP", "rgb.webp")]:
        buf = io.BytesIO()
        rgb.save(buf, fmt)
        put("image", name, buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (4, 4, 4), dtype=np.uint8), "RGBA").save(buf, "PNG")
    put("image", "rgba.png", buf.getvalue())
    # A header that claims 200,000 × 200,000 pixels over a few bytes of data.
    ihdr = struct.pack(">IIBBBBB", 200_000, 200_000, 8, 2, 0, 0, 0)
    huge = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b"")
    put("image", "huge-header.png", huge)
    if png_path:
        put("png_params", "generated.png", pathlib.Path(png_path).read_bytes())
    small = rgb.copy()
    buf = io.BytesIO()
    small.save(buf, "PNG")
    body = buf.getvalue()
    text = png_chunk(b"tEXt", b"clipguide\0" + b'{"version":1,"config":{}}')
    put("png_params", "empty-config.png", body[:33] + text + body[33:])


def schedules():
    put("schedule_toml", "example.toml", (ROOT / "crates/clipguide-guide/schedules/example.toml").read_bytes())
    put("schedule_toml", "tables.toml",
        'steps = 10\n[[prompts]]\ntext = "a: b"\nweight = 2\n[[prompts]]\nstep = 5\ntext = "c"\nstop = 8\n')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--png", help="a PNG written by clipguide generate")
    args = ap.parse_args()
    prompts()
    configs()
    weights()
    sentencepiece_model()
    images(args.png)
    schedules()
    for d in sorted(SEEDS.iterdir()):
        files = list(d.iterdir())
        print(f"{d.name}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
