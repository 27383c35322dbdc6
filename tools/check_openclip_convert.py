#!/usr/bin/env python3
"""Check a checkpoint converted from OpenCLIP to the transformers layout against open_clip itself.

    clipguide convert --from OPENCLIP_DIR --to CONVERTED_DIR
    python3 tools/check_openclip_convert.py CONVERTED_DIR OPENCLIP_DIR [--tol 1e-4]

CONVERTED_DIR is read with `transformers.CLIPModel.from_pretrained` and `CLIPTokenizerFast`;
OPENCLIP_DIR (open_clip_config.json beside the weights) with
`open_clip.create_model_and_transforms("local-dir:OPENCLIP_DIR")` and `open_clip.get_tokenizer`.
Both run in float32 on the CPU. Each side tokenizes the prompts with its own tokenizer (HF pads to 77
with its pad id and passes the attention mask; open_clip pads with 0), and the pooled, projected
features are compared: `get_text_features` vs `encode_text`, `get_image_features` vs `encode_image`
on randn pixels, and exp(logit_scale). Prints the max relative difference (max |a - b| / max |b|) for
each and exits 1 if any is above the tolerance.

For a text tower whose vocabulary is not the CLIP tokenizer's (vocab_size != 49408, e.g.
tests/fixtures/openclip/oc-projbias) both sides get the same hand-made ids instead:
[V-2, random ids, V-1, 0 …] where V is the vocab size, so V-1 is the largest id (open_clip pools at
argmax). The converted config decides how transformers pools them (eos_token_id).
"""

import argparse
import sys

PROMPTS = [
    "a photo of a cat",
    "a diagram",
    "sunflower oil painting, highly detailed",
    "",
    "an astronaut riding a horse on mars, trending on artstation",
    " ".join(["a red fox in the snow"] * 20),  # truncated to 77 tokens on both sides
]


def features(out):
    """transformers 5 may return a model output instead of a tensor from get_*_features."""
    return out.pooler_output if hasattr(out, "pooler_output") else out


def max_rel(a, b) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("converted_dir")
    ap.add_argument("openclip_dir")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()

    import open_clip
    import torch
    from transformers import CLIPModel, CLIPTokenizerFast

    torch.set_num_threads(2)
    torch.manual_seed(0)

    hf = CLIPModel.from_pretrained(args.converted_dir, dtype=torch.float32, attn_implementation="eager").eval()
    oc, _, _ = open_clip.create_model_and_transforms("local-dir:" + args.openclip_dir)
    oc = oc.eval().float()
    failures = []

    vocab = oc.vocab_size
    ctx = oc.context_length
    with torch.no_grad():
        if vocab == 49408:
            hf_tok = CLIPTokenizerFast.from_pretrained(args.converted_dir)
            oc_tok = open_clip.get_tokenizer("local-dir:" + args.openclip_dir)
            oc_ids = oc_tok(PROMPTS)
            enc = hf_tok(PROMPTS, padding="max_length", max_length=ctx, truncation=True, return_tensors="pt")
            hf_ids, mask = enc["input_ids"], enc["attention_mask"]
            # Same tokens up to and including EOS; only the padding differs (open_clip 0, HF its pad id).
            for i, p in enumerate(PROMPTS):
                n = int(mask[i].sum())
                a, b = hf_ids[i, :n].tolist(), oc_ids[i].tolist()
                b = b[: b.index(49407) + 1]
                if a != b:
                    failures.append(f"tokenizers disagree on {p!r}: hf {a} open_clip {b}")
            print(f"tokenizer: HF pad id {hf_tok.pad_token_id}, {len(PROMPTS)} prompts, "
                  f"{'same ids' if not failures else 'DIFFERENT ids'}")
            t_hf = features(hf.get_text_features(input_ids=hf_ids, attention_mask=mask))
        else:
            g = torch.Generator().manual_seed(1)
            oc_ids = torch.zeros(3, ctx, dtype=torch.int64)
            for i, n in enumerate((5, 12, ctx)):
                oc_ids[i, 0] = vocab - 2
                oc_ids[i, 1 : n - 1] = torch.randint(1, vocab - 2, (n - 2,), generator=g)
                oc_ids[i, n - 1] = vocab - 1
            print(f"tokenizer: skipped (vocab {vocab}); same hand-made ids to both, "
                  f"HF text eos_token_id {hf.config.text_config.eos_token_id}")
            t_hf = features(hf.get_text_features(input_ids=oc_ids))
        t_oc = oc.encode_text(oc_ids)

        s = oc.visual.image_size[0]
        pixels = torch.randn(3, 3, s, s, generator=torch.Generator().manual_seed(2))
        i_hf = features(hf.get_image_features(pixel_values=pixels))
        i_oc = oc.encode_image(pixels)
        scale_hf = hf.logit_scale.exp()
        scale_oc = oc.logit_scale.exp()

    if t_hf.shape != t_oc.shape or i_hf.shape != i_oc.shape:
        print(f"shape mismatch: text {tuple(t_hf.shape)} vs {tuple(t_oc.shape)}, "
              f"image {tuple(i_hf.shape)} vs {tuple(i_oc.shape)}")
        return 1
    results = {
        "text": max_rel(t_hf, t_oc),
        "image": max_rel(i_hf, i_oc),
        "logit_scale": max_rel(scale_hf.reshape(1), scale_oc.reshape(1)),
    }
    for k, v in results.items():
        ok = v <= args.tol
        print(f"{k:12s} max rel diff {v:.3e} {'ok' if ok else 'FAIL'}")
        if not ok:
            failures.append(f"{k}: {v:.3e} > {args.tol:g}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
