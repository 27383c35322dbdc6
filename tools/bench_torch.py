#!/usr/bin/env python3
"""PyTorch/transformers CPU baseline for the Rust benchmarks: prints one JSON line of median seconds.

    pip install torch transformers tokenizers
    python3 tools/bench_torch.py            # THREADS=2 RUNS=5 by default

Cases (random weights, shapes of OpenAI ViT-B/32):
  image_fwd_bwd_b8_224  vision tower + projection, batch 8 of 224x224 pixels, loss = image_embeds.sum(),
                        backward to the pixels only (weights frozen).
  image_embed_b32_224   the same tower forward only (no_grad), batch 32: embedding images for an index;
                        and image_embed_b32_224_bf16 / _f16 under torch.autocast("cpu", torch.bfloat16 /
                        torch.float16) where the CPU has avx512_bf16 / avx512_fp16 (whichever of the
                        three is fastest is PyTorch's best CPU setting there).
  text_1000_labels      text tower + projection on 1,000 prompts "a photo of a {label}", padded to 77,
                        batches of 100, no_grad; includes tokenisation (also reported alone).
Each case: 1 warm-up run, then RUNS timed runs; the median is reported. Peak RSS is resource maxrss.
On 2 cores one text run takes ~2 minutes (about 5.9 TFLOP), so the default full run takes ~13 minutes;
RUNS=1 gives a quick estimate; CASES=image runs the image case only.
"""

import json
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_JSON = ROOT / "crates" / "clipguide-clip" / "assets" / "tokenizer.json"
THREADS = int(os.environ.get("THREADS", "2"))
RUNS = int(os.environ.get("RUNS", "5"))


def median_seconds(fn, runs: int = RUNS) -> float:
    fn()  # warm-up: allocator, thread pool, kernel selection
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def synthetic_labels(n: int) -> list:
    rng = random.Random(7)
    onsets, vowels, codas = "b c d f g h j k l m n p r s t v w z br ch cl dr gr sh st th tr".split(), "a e i o u ai ea oo".split(), ["", "n", "r", "s", "t", "l", "ng", "ck"]
    labels, seen = [], set()
    while len(labels) < n:
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(1, 3))) + rng.choice(codas)
        if word not in seen:
            seen.add(word)
            labels.append(word)
    return labels


def main() -> int:
    import torch
    from tokenizers import Tokenizer
    from transformers import (
        CLIPTextConfig,
        CLIPTextModelWithProjection,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    results = {"threads": THREADS, "runs": RUNS, "torch": torch.__version__}

    vision = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
            patch_size=32, image_size=224, projection_dim=512, hidden_act="quick_gelu",
        )
    ).eval()
    vision.requires_grad_(False)
    pixels = torch.randn(8, 3, 224, 224)

    def image_step():
        px = pixels.clone().requires_grad_(True)
        vision(pixel_values=px).image_embeds.sum().backward()
        assert px.grad is not None

    results["image_fwd_bwd_b8_224"] = median_seconds(image_step)
    pixels32 = torch.randn(32, 3, 224, 224)

    def embed(dtype):
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            return vision(pixel_values=pixels32).image_embeds.float()

    results["image_embed_b32_224"] = median_seconds(lambda: embed(None))
    flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
    for name, flag, dtype in (("bf16", "avx512_bf16", torch.bfloat16), ("f16", "avx512_fp16", torch.float16)):
        if flag in flags:
            results[f"image_embed_b32_224_{name}"] = median_seconds(lambda: embed(dtype))
            cos = torch.nn.functional.cosine_similarity(embed(None), embed(dtype))
            results[f"{name}_min_cosine"] = round(cos.min().item(), 6)
    del vision
    if os.environ.get("CASES") == "image":
        results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(results))
        return 0

    text = CLIPTextModelWithProjection(
        CLIPTextConfig(
            vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
            num_attention_heads=8, max_position_embeddings=77, projection_dim=512, hidden_act="quick_gelu",
        )
    ).eval()
    tokenizer = Tokenizer.from_file(str(TOKENIZER_JSON))
    tokenizer.enable_truncation(77)
    tokenizer.enable_padding(length=77, pad_id=49407, pad_token="<|endoftext|>")
    # The same 1,000 labels the Rust benchmark reads (written once from synthetic_labels(1000)).
    labels = (ROOT / "tools" / "bench_labels.txt").read_text().split()
    prompts = [f"a photo of a {label}" for label in labels]

    def tokenize():
        return torch.tensor([e.ids for e in tokenizer.encode_batch(prompts)], dtype=torch.int64)

    def text_step():
        ids = tokenize()
        with torch.no_grad():
            embeds = [text(input_ids=ids[i : i + 100]).text_embeds for i in range(0, len(prompts), 100)]
        assert torch.cat(embeds).shape == (1000, 512)

    results["text_1000_labels"] = median_seconds(text_step)
    results["tokenize_1000_labels"] = median_seconds(tokenize)
    # ru_maxrss is KiB on Linux.
    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    results["isa"] = torch.backends.cpu.get_cpu_capability()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
