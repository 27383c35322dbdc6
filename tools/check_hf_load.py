#!/usr/bin/env python3
"""Prove that a checkpoint folder loads and runs in transformers (used on checkpoints clipguide writes).

    python3 tools/check_hf_load.py DIR [--tokenizer PATH/tokenizer.json]

DIR holds config.json + model.safetensors (HF CLIPModel layout). The tokenizer is DIR/tokenizer.json when
present, else --tokenizer, else the repository's crates/clipguide-clip/assets/tokenizer.json. Prints the
embedding shapes and similarity logits; exits 0 on success, 1 with a message otherwise.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOKENIZER = ROOT / "crates" / "clipguide-clip" / "assets" / "tokenizer.json"
CAPTIONS = ["a photo of a cat", "an oil painting of a lighthouse at night"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--tokenizer", type=Path, default=None)
    args = parser.parse_args()

    import torch
    from transformers import CLIPModel, CLIPTokenizerFast

    torch.set_num_threads(2)
    tok_path = args.dir / "tokenizer.json"
    if not tok_path.exists():
        tok_path = args.tokenizer or DEFAULT_TOKENIZER
    if not (args.dir / "config.json").exists():
        print(f"error: {args.dir}/config.json not found; expected an HF CLIPModel folder", file=sys.stderr)
        return 1
    if not tok_path.exists():
        print(f"error: tokenizer {tok_path} not found; pass --tokenizer", file=sys.stderr)
        return 1

    # from_pretrained only warns about missing weights (and fills them randomly): treat that as failure.
    model, info = CLIPModel.from_pretrained(args.dir, dtype=torch.float32, output_loading_info=True)
    model.eval()
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        print(f"error: checkpoint does not match CLIPModel: {problems}", file=sys.stderr)
        return 1
    tokenizer = CLIPTokenizerFast(tokenizer_file=str(tok_path))
    cfg = model.config
    max_len = cfg.text_config.max_position_embeddings
    batch = tokenizer(CAPTIONS, padding="max_length", truncation=True, max_length=max_len, return_tensors="pt")
    ids = batch["input_ids"]
    if ids.max() >= cfg.text_config.vocab_size:
        print(f"error: tokenizer produced id {int(ids.max())} >= text vocab_size {cfg.text_config.vocab_size}",
              file=sys.stderr)
        return 1
    size = cfg.vision_config.image_size
    pixels = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(input_ids=ids, pixel_values=pixels)
    for name in ("text_embeds", "image_embeds", "logits_per_image"):
        t = getattr(out, name)
        if not torch.isfinite(t).all():
            print(f"error: {name} has non-finite values", file=sys.stderr)
            return 1
        print(f"{name}: {list(t.shape)}")
    print(f"logits_per_image: {[round(v, 4) for v in out.logits_per_image[0].tolist()]}")
    print(f"ok: {args.dir} loads in transformers (text {cfg.text_config.hidden_size}x{cfg.text_config.num_hidden_layers}, "
          f"vision {cfg.vision_config.hidden_size}x{cfg.vision_config.num_hidden_layers}, proj {cfg.projection_dim})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
