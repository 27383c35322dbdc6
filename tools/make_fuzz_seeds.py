"""Writes the fuzz seeds, fuzz/seeds/<target>/: small, valid inputs of each format.

    python3 tools/make_fuzz_seeds.py [--png PATH] [--only GROUP ...]

Needs torch, safetensors, sentencepiece, Pillow and open_clip_torch (pip) for the model and image
targets; the text targets (labels_file, wordnet, coco_resume, scenes_jsonl, index_manifest) are cut
from the repository's fixtures with the standard library alone, so `--only` those needs nothing.
`--png` adds a PNG written by `clipguide generate` (its parameters chunk is the png_params
target's seed). The seeds are never minimised; what the libFuzzer runs find goes to
fuzz/corpus/<target>/.
"""
import argparse
import io
import json
import pathlib
import struct
import tempfile
import zlib

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
    import numpy as np
    import torch
    from safetensors.numpy import save as st_save
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
    import numpy as np
    from PIL import Image
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


def labels_files():
    put("labels_file", "klite.tsv", "# shapes\ndisc\ta round flat circle\n\nbox\ta square; four equal sides\n")
    put("labels_file", "japanese-crlf.tsv", "ひまわり\t大きな黄色い花\r\n  sunflower  \t a tall plant \r\n")
    put("labels_file", "templates.txt", "a photo of a {}.\n# a comment\n  a drawing of the {}  \n\nitap of my {}.\n")
    put("labels_file", "clip80.txt", (ROOT / "crates/clipguide-zeroshot/data/clip80_templates.txt").read_bytes())
    put("labels_file", "classnames.txt", "red circle\n# skipped\n\n blue star \ngreen_square\n")
    put("labels_file", "one-template", "a {} on a {}")


def wordnet():
    # The target's input: index.noun, data.noun, index.adj, data.adj joined by NUL bytes.
    d = ROOT / "crates/clipguide-zeroshot/tests/fixtures/wordnet"
    files = [(d / f).read_bytes() for f in ["index.noun", "data.noun", "index.adj", "data.adj"]]
    put("wordnet", "noun-adj", b"\0".join(files))
    put("wordnet", "noun", b"\0".join(files[:2]))
    index = b"disc n 1 0 1 0 00000000  \n"
    data = b'00000000 05 n 01 disc 0 000 | a flat round object; "a disc of wax"  \n'
    put("wordnet", "one-noun", index + b"\0" + data)


def coco():
    fixture = ROOT / "crates/clipguide-zeroshot/tests/fixtures/annotations_v1.json"
    put("coco_resume", "annotations_v1.json", fixture.read_bytes())
    f = json.loads(fixture.read_text())
    f["clipguide"]["skipped"] = [["broken.png", "not an image: bad PNG signature"]]
    f["images"] = f["images"][:1]
    f["annotations"] = [a for a in f["annotations"] if a["image_id"] == 1][:2]
    put("coco_resume", "skipped-compact.json", json.dumps(f, separators=(",", ":")))


def scenes():
    d = ROOT / "tests/fixtures/heldout-drawings"
    for name in ["centred", "placed"]:
        lines = (d / name / "scenes.jsonl").read_text().splitlines(True)
        put("scenes_jsonl", name, "".join(lines[:8]))
    scene = {"background": "white", "pattern": {"kind": "striped", "colour": "black", "direction": "diagonal"},
             "groups": [{"shape": "star", "colour": "red", "size": "small", "count": 3, "placement": "bottom_right", "jitter": [0.02, -0.01]},
                        {"shape": "square", "colour": "blue", "size": "large", "count": 1, "placement": "top_left", "jitter": [0.0, 0.0]}]}
    single = dict(scene, groups=scene["groups"][:1])
    empty = dict(scene, pattern=None, groups=[])
    put("scenes_jsonl", "patterns-crlf", "\r\n".join(json.dumps({"file": f, "scene": s}) for f, s in
                                                     [("a.png", scene), ("b.png", single), ("c.png", empty)]) + "\r\n\n")


def manifests():
    fixture = ROOT / "crates/clipguide-index/tests/fixtures/store-v1/manifest.json"
    put("index_manifest", "store-v1.json", fixture.read_bytes())
    m = json.loads(fixture.read_text())
    m["index"] = {"file": "index.usearch", "xxh3": "0123456789abcdef", "parts_xxh3": "fedcba9876543210"}
    put("index_manifest", "with-index.json", json.dumps(m, indent=2))
    shard = dict(m, vectors="f32", dim=512, parts=[], next_part=0, index=None)
    put("index_manifest", "shard-00001-of-00004.json", json.dumps(shard))
    put("index_manifest", "shard-spec", "2/4")


# Each group writes the seeds of one or more targets (prompts: prompt and attention; configs:
# clip_config and open_clip_config; weights: safetensors and torch_pickle; images: image and
# png_params).
GROUPS = {
    "prompts": lambda a: prompts(), "configs": lambda a: configs(), "weights": lambda a: weights(),
    "sentencepiece": lambda a: sentencepiece_model(), "images": lambda a: images(a.png),
    "schedules": lambda a: schedules(), "labels_file": lambda a: labels_files(),
    "wordnet": lambda a: wordnet(), "coco_resume": lambda a: coco(), "scenes_jsonl": lambda a: scenes(),
    "index_manifest": lambda a: manifests(),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--png", help="a PNG written by clipguide generate")
    ap.add_argument("--only", nargs="+", choices=list(GROUPS), help="write only these groups of seeds")
    args = ap.parse_args()
    for name in args.only or GROUPS:
        GROUPS[name](args)
    for d in sorted(SEEDS.iterdir()):
        files = list(d.iterdir())
        print(f"{d.name}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
