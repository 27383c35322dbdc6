"""Writes crates/clipguide-zeroshot/data/clip80_templates.txt: the CLIP paper's 80 ImageNet prompt
templates, one per line with `{}` for the class name, from open_clip's copy of OpenAI's list."""
from pathlib import Path

from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

out = Path(__file__).resolve().parent.parent / "crates/clipguide-zeroshot/data/clip80_templates.txt"
lines = [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]
assert len(lines) == 80, len(lines)
out.write_text("\n".join(lines) + "\n")
print(f"wrote {out} ({len(lines)} templates)")
